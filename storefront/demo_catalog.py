"""The catalogue part of the demo data: a category tree, about 30 products of the two demo
brands with variants and Pillow-drawn pictures, and some reviews."""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw, ImageFont

from accounts.models import User
from catalog.models import (
    Brand,
    Category,
    Product,
    ProductImage,
    ProductSpecification,
    ProductStatus,
    Variant,
)
from catalog.services import category_save, product_image_add, product_save, variant_save
from reviews.models import Review
from reviews.services import review_save

CATEGORY_TREE = {
    "Phones": ["Flagship", "Everyday"],
    "Wearables": ["Watches", "Bands"],
    "Audio": ["Headphones", "Earbuds", "Speakers"],
    "Accessories": ["Chargers", "Cases"],
}


@dataclass(frozen=True)
class DemoProduct:
    brand_slug: str
    name: str
    category: str  # path
    price: str
    description: str
    options: dict[str, list[str]]
    specs: tuple[tuple[str, str], ...] = ()
    status: str = ProductStatus.ACTIVE


def _phone(name, price, path="phones/flagship", status=ProductStatus.ACTIVE):
    return DemoProduct(
        "nimbus-mobile",
        name,
        path,
        price,
        f"**{name}**: designed with the Nimbus fan community, voted feature by feature.\n\n"
        "- All-day battery\n- 120 Hz display\n- Two-year warranty",
        {"colour": ["Graphite", "Glacier", "Sunset"], "storage": ["128 GB", "256 GB"]},
        (("Display", "6.4 in OLED, 120 Hz"), ("Battery", "5,000 mAh"), ("Weight", "189 g")),
        status,
    )


DEMO_PRODUCTS = [
    _phone("Nimbus X2", "599.00"),
    _phone("Nimbus X2 Pro", "799.00"),
    _phone("Nimbus Lite 5", "299.00", "phones/everyday"),
    _phone("Nimbus Lite 5 Plus", "349.00", "phones/everyday"),
    _phone("Nimbus Fold Concept", "1299.00", status=ProductStatus.DRAFT),
    _phone("Nimbus X1", "449.00", status=ProductStatus.ARCHIVED),
    *[
        DemoProduct(
            "nimbus-mobile",
            name,
            path,
            price,
            f"{name} from Nimbus. Tuned by fan feedback, built to last.",
            options,
            specs,
        )
        for name, path, price, options, specs in [
            (
                "Nimbus Watch S",
                "wearables/watches",
                "199.00",
                {"colour": ["Black", "Silver"], "size": ["41 mm", "45 mm"]},
                (("Battery", "14 days"), ("Water resistance", "5 ATM")),
            ),
            (
                "Nimbus Band 8",
                "wearables/bands",
                "49.00",
                {"colour": ["Black", "Mint", "Coral"]},
                (("Battery", "21 days"),),
            ),
            ("Nimbus Band 8 NFC", "wearables/bands", "59.00", {"colour": ["Black", "Mint"]}, ()),
            (
                "Nimbus 67 W Charger",
                "accessories/chargers",
                "39.00",
                {"plug": ["EU", "US", "UK"]},
                (("Output", "67 W"),),
            ),
            (
                "Nimbus Power Bank 20k",
                "accessories/chargers",
                "45.00",
                {"colour": ["Black", "White"]},
                (("Capacity", "20,000 mAh"),),
            ),
            (
                "Nimbus X2 Silicone Case",
                "accessories/cases",
                "19.00",
                {"colour": ["Graphite", "Glacier", "Sunset", "Lime"]},
                (),
            ),
            ("Nimbus X2 Clear Case", "accessories/cases", "15.00", {}, ()),
            (
                "Nimbus Buds Air",
                "audio/earbuds",
                "59.00",
                {"colour": ["White", "Black"]},
                (("Battery", "6 h + 24 h case"),),
            ),
            (
                "Nimbus Home Speaker",
                "audio/speakers",
                "89.00",
                {"colour": ["Charcoal", "Sand"]},
                (("Output", "20 W"),),
            ),
        ]
    ],
    *[
        DemoProduct(
            "forge-audio",
            name,
            path,
            price,
            f"**{name}**: tuned by a community of listeners and makers at Forge Audio.",
            options,
            specs,
        )
        for name, path, price, options, specs in [
            (
                "Forge Studio Headphones",
                "audio/headphones",
                "199.00",
                {"colour": ["Black", "Walnut"]},
                (("Driver", "50 mm"), ("Impedance", "32 Ω"), ("Weight", "290 g")),
            ),
            (
                "Forge Studio Pro Headphones",
                "audio/headphones",
                "349.00",
                {"colour": ["Black"]},
                (("Driver", "50 mm planar"),),
            ),
            (
                "Forge Trail Headphones",
                "audio/headphones",
                "129.00",
                {"colour": ["Moss", "Slate", "Clay"]},
                (("Battery", "40 h"),),
            ),
            ("Forge Open Headphones", "audio/headphones", "249.00", {}, (("Design", "Open-back"),)),
            (
                "Forge Buds",
                "audio/earbuds",
                "79.00",
                {"colour": ["Black", "Sand"]},
                (("Battery", "8 h + 30 h case"),),
            ),
            ("Forge Buds Sport", "audio/earbuds", "99.00", {"colour": ["Lime", "Black"]}, ()),
            (
                "Forge Buds Pro ANC",
                "audio/earbuds",
                "149.00",
                {"colour": ["Black", "Silver"]},
                (("Noise cancelling", "Hybrid ANC"),),
            ),
            (
                "Forge Cube Speaker",
                "audio/speakers",
                "69.00",
                {"colour": ["Red", "Blue", "Grey"]},
                (("Output", "10 W"),),
            ),
            (
                "Forge Tower Speaker",
                "audio/speakers",
                "299.00",
                {"finish": ["Oak", "Black"]},
                (("Output", "120 W"),),
            ),
            ("Forge Boombox Mini", "audio/speakers", "119.00", {}, (("Battery", "16 h"),)),
            ("Forge Cable Kit", "accessories/chargers", "25.00", {"length": ["1 m", "2 m"]}, ()),
            ("Forge Headphone Case", "accessories/cases", "29.00", {}, ()),
            ("Forge DAC Dongle", "accessories/chargers", "59.00", {}, (("Output", "2 Vrms"),)),
            (
                "Forge Studio Headphones Anniversary",
                "audio/headphones",
                "259.00",
                {},
                (),
            ),
        ]
    ],
]
COLOURS = ["#ff6a00", "#2563eb", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04"]
DEMO_REVIEWS = [
    (5, "Exactly what we voted for", "The community got this one right. Battery is superb."),
    (4, "Great, one small gripe", "Love it. Wish the case came in more colours."),
    (3, "Good value", "Does the job; nothing more, nothing less."),
    (5, "Worth the wait", "Pre-ordered, arrived on time, sounds fantastic."),
]


def _slugify(text: str) -> str:
    from django.utils.text import slugify

    return slugify(text)


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, colour: str) -> None:
    """A simple silhouette per kind of product, so the demo shop is easy to scan."""
    if kind == "phones":
        draw.rounded_rectangle((270, 110, 530, 640), radius=50, fill=colour)
        draw.rounded_rectangle((292, 150, 508, 590), radius=24, fill="#ffffff")
    elif kind == "wearables":
        draw.rounded_rectangle((350, 90, 450, 660), radius=40, fill="#3f3f46")
        draw.ellipse((250, 220, 550, 520), fill=colour)
        draw.ellipse((290, 260, 510, 480), fill="#ffffff")
    elif kind == "audio":
        draw.arc((210, 130, 590, 560), start=180, end=360, fill=colour, width=44)
        draw.rounded_rectangle((190, 330, 300, 560), radius=40, fill=colour)
        draw.rounded_rectangle((500, 330, 610, 560), radius=40, fill=colour)
    else:
        draw.rounded_rectangle((230, 250, 570, 520), radius=36, fill=colour)
        draw.ellipse((360, 330, 440, 410), fill="#ffffff")


def _draw_product(name: str, kind: str, colour: str, variant_label: str) -> SimpleUploadedFile:
    size = 800
    image = Image.new("RGB", (size, size), "#f5f3f0")
    draw = ImageDraw.Draw(image)
    _draw_shape(draw, kind, colour)
    draw.text(
        (size / 2, 715), name, fill="#1f2937", font=ImageFont.load_default(size=38), anchor="mm"
    )
    draw.text(
        (size / 2, 760),
        variant_label,
        fill="#6b7280",
        font=ImageFont.load_default(size=28),
        anchor="mm",
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return SimpleUploadedFile(f"{_slugify(name)}.png", out.getvalue(), "image/png")


def _variants(spec: DemoProduct) -> list[dict[str, str]]:
    combos: list[dict[str, str]] = [{}]
    for option, values in spec.options.items():
        combos = [{**combo, option: value} for combo in combos for value in values]
    return combos


def demo_seed_catalog(*, fans: list[User]) -> dict[str, int]:
    created = {"categories": 0, "products": 0, "variants": 0, "reviews": 0}
    for position, (root_name, children) in enumerate(CATEGORY_TREE.items()):
        root = Category.objects.filter(path=_slugify(root_name)).first()
        if root is None:
            root = category_save(
                category=Category(name=root_name, slug=_slugify(root_name), position=position)
            )
            created["categories"] += 1
        for child_position, child_name in enumerate(children):
            if not Category.objects.filter(path=f"{root.path}/{_slugify(child_name)}").exists():
                category_save(
                    category=Category(
                        name=child_name,
                        slug=_slugify(child_name),
                        parent=root,
                        position=child_position,
                    )
                )
                created["categories"] += 1

    brands = {brand.slug: brand for brand in Brand.objects.all()}
    for index, spec in enumerate(DEMO_PRODUCTS):
        slug = _slugify(spec.name)
        product = Product.objects.filter(slug=slug).first()
        if product is None:
            product = product_save(
                product=Product(
                    brand=brands[spec.brand_slug],
                    category=Category.objects.get(path=spec.category),
                    name=spec.name,
                    slug=slug,
                    description=spec.description,
                    status=spec.status,
                )
            )
            created["products"] += 1
            for position, (name, value) in enumerate(spec.specs):
                ProductSpecification.objects.create(
                    product=product, name=name, value=value, position=position
                )
        for position, options in enumerate(_variants(spec)):
            sku = "-".join([slug.upper()[:24], *(_slugify(v).upper() for v in options.values())])
            if Variant.objects.filter(sku=sku).exists():
                continue
            price = Decimal(spec.price)
            if "256 GB" in options.values():
                price += Decimal("100.00")
            variant_save(
                variant=Variant(
                    product=product,
                    sku=sku,
                    options=options,
                    price=price,
                    position=position,
                    stock=0 if (index + position) % 5 == 4 else 5 + (index * 7 + position * 3) % 40,
                    compare_at_price=price + Decimal("50.00") if index % 6 == 0 else None,
                    weight_grams=150 + (index * 13) % 300,
                )
            )
            created["variants"] += 1
        if not product.images.exists():
            # One picture per colour (at most three), tagged with it, so the product page's
            # picture follows the chosen colour; "standard" for a product without colours.
            colours = spec.options.get("colour", [])[:3] or ["standard"]
            for n, label in enumerate(colours):
                image = product_image_add(
                    product=product,
                    alt_text=f"{spec.name}, {label}",
                    upload=_draw_product(
                        spec.name,
                        spec.category.split("/")[0],
                        COLOURS[(index + n) % len(COLOURS)],
                        label,
                    ),
                )
                if label != "standard":
                    ProductImage.objects.filter(pk=image.pk).update(
                        option_name="colour", option_value=label
                    )
        if spec.status == ProductStatus.ACTIVE and index % 3 != 2:
            for n, fan in enumerate(fans[: 2 + index % 3]):
                if Review.objects.filter(product=product, user=fan).exists():
                    continue
                rating, title, body = DEMO_REVIEWS[(index + n) % len(DEMO_REVIEWS)]
                review_save(product=product, user=fan, rating=rating, title=title, body=body)
                created["reviews"] += 1
    return created
