from decimal import Decimal

import factory
from allauth.account.models import EmailAddress

from accounts.models import User
from catalog.models import Brand, Category, Product, ProductStatus, Variant
from catalog.services import category_save, product_save, variant_save
from reviews.models import Review
from reviews.services import review_save

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"fan{n}@example.com")
    display_name = factory.Sequence(lambda n: f"Fan {n}")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def verified(user, create, extracted, **kwargs):
        """Verified unless `verified=False`: allauth refuses unverified logins."""
        if create and extracted is not False:
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")


class CategoryFactory(factory.django.DjangoModelFactory):
    """Built through catalog.services.category_save, so path and full name are right."""

    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    parent = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return category_save(category=model_class(*args, **kwargs))


class ProductFactory(factory.django.DjangoModelFactory):
    """Active by default, saved through catalog.services.product_save (search vector and
    summary kept)."""

    class Meta:
        model = Product

    brand = factory.SubFactory(BrandFactory)
    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    description = "A fine product."
    status = ProductStatus.ACTIVE

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return product_save(product=model_class(*args, **kwargs))


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    options = factory.LazyFunction(dict)
    price = Decimal("99.00")
    stock = 10

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        variant = variant_save(variant=model_class(*args, **kwargs))
        variant.product.refresh_from_db()
        return variant


class ReviewFactory(factory.django.DjangoModelFactory):
    """Saved through reviews.services.review_save (keeps the product's rating)."""

    class Meta:
        model = Review

    product = factory.SubFactory(ProductFactory)
    user = factory.SubFactory(UserFactory)
    rating = 4
    title = "Good"
    body = "Does what it says."

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return review_save(**kwargs)
