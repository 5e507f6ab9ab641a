"""Steps the browser journeys share: signing in and out, signing up, filling an address and a
card. Each asserts what the page shows once the step is done."""

import re

from playwright.sync_api import Page, expect

PASSWORD = "Sup3r-secret-pass"
HOME_TAGLINE = "Where fans shape what gets made"
ADDRESS = {
    "full_name": "Lin Chen",
    "line1": "1 Fan Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED_ON_CHARGE = "4000 0000 0000 0341"


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.locator("main form button[type=submit]").click()
    expect(page.locator("header")).to_contain_text("Account menu")


def sign_out(page: Page) -> None:
    page.locator("header details.menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()


def sign_up(page: Page, base: str, email: str, display_name: str = "") -> None:
    """Fill the sign-up form; the verification mail is then on its way."""
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=display_name]", display_name or email.split("@")[0].title())
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page.locator("main")).to_contain_text("Check your email")


def confirm_email(page: Page, base: str, mail_text: str) -> None:
    """Follow the link in the verification mail and confirm; allauth then signs the fan in."""
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", mail_text)
    assert link, mail_text
    page.goto(base + link.group(1))
    page.click("main form button[type=submit]")
    expect(page.locator("main")).to_contain_text(HOME_TAGLINE)


def fill_address(page: Page) -> None:
    for field, value in ADDRESS.items():
        if field == "country":  # a list of countries (django-countries)
            page.select_option(f"select[name=address-{field}]", value)
        else:
            page.fill(f"input[name=address-{field}]", value)


def fill_card(page: Page, card: str) -> None:
    expiry_and_code = {"exp_month": "12", "exp_year": "2031", "cvc": "123"}
    for field, value in {"number": card, **expiry_and_code}.items():
        page.fill(f"input[name={field}]", value)


def check_out(page: Page, *, card: str) -> None:
    """On the checkout page: a new address and a new card, then place the order."""
    fill_address(page)
    fill_card(page, card)
    page.get_by_role("button", name=re.compile("Place order")).click()


def reserve(page: Page, *, units: str, card: str) -> None:
    """On a batch page: open the reserve form (an htmx fragment), then fill it with a new
    address and a new card."""
    opener = page.get_by_role("link", name="Choose and reserve")
    if opener.count():
        page.wait_for_load_state("load")  # htmx (a deferred script) swaps the form in
        opener.click()
    page.fill("input[name=quantity]", units)
    fill_address(page)
    fill_card(page, card)
    page.get_by_role("button", name="Reserve", exact=True).click()


def admin_sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#content")).to_contain_text("Your brands")


def admin_add_product(
    page: Page,
    base: str,
    *,
    brand: str,
    name: str,
    category: str,
    sku: str,
    colour: str,
    price: str,
    stock: str,
    picture: str | None = None,
) -> None:
    """In the admin: an active product with one variant in one colour and an optional
    picture, saved."""
    page.goto(f"{base}/admin/catalog/product/add/")
    page.select_option("#id_brand", label=brand)
    page.locator("#id_name").press_sequentially(name)
    expect(page.locator("#id_slug")).not_to_have_value("")  # filled from the name
    page.select_option("#id_status", "active")
    page.fill("#id_description", "Planar drivers, **tuned by fans**.")
    page.select_option("#id_category", label=category)
    variant = {
        "sku": sku,
        "options_name_0": "colour",  # the option builder: a name and a value per row
        "options_value_0": colour,
        "price": price,
        "stock": stock,
    }
    for field, value in variant.items():
        page.fill(f"#id_variants-0-{field}", value)
    if picture:
        page.set_input_files("#id_images-0-image", picture)
        page.fill("#id_images-0-alt_text", "Front")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
