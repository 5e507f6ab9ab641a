"""Browser journeys: Playwright driving Debian's Chromium against pytest-django's live server.
Chromium is installed by .ci/run; on a laptop without it these tests are skipped (never in CI)."""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def browser(_orm_beside_playwright):
    """Per module, not per session: while Playwright's loop runs, Django treats this thread as
    async and would refuse the ORM in the ordinary tests that follow on the same worker."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}; .ci/run should install it")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def _orm_beside_playwright():
    """Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    (factories, assertions, the database flush) are still synchronous and safe. Set for as
    long as the browser runs, and only then."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser):
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.viewport_name = request.param
    yield page
    context.close()


@pytest.fixture
def desktop_page(browser):
    """Operators work in the admin at desktop width."""
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
