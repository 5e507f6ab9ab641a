"""Browser journeys: Playwright driving Debian's Chromium against pytest-django's live server,
with a real Celery worker process on the test database doing what workers do in production
(mail, thumbnails, settlement, fan-out). Chromium is installed by .ci/run; on a laptop without
it these tests are skipped (never in CI)."""

import email
import email.policy
import os
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.db import connection

from config.celery import app
from config.tasks import WORKER_ECHO_PREFIX, worker_echo
from tests.factories import BrandFactory, CategoryFactory, UserFactory
from tests.services import celery_worker_start, process_stop, wait_until

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


# --- the worker -----------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen | None
    media: Path
    mail: Path
    log: Path

    def drain(self, timeout: float = 60) -> None:
        """Block until the worker has run every task queued before this call: an echo task
        joins the back of the queue and the solo worker runs tasks in order."""
        token = uuid.uuid4().hex
        worker_echo.delay(token)
        location = django_settings.CACHES["default"]["LOCATION"]
        with redis.Redis.from_url(location, socket_timeout=timeout + 10) as waiting:
            answer = waiting.blpop(f"{WORKER_ECHO_PREFIX}{token}", timeout=timeout)
        assert answer is not None, f"the worker did not answer:\n{self.log_tail()}"

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, tmp_path_factory):
    """One worker per journey module (pytest-xdist's loadfile keeps a module on one process,
    so it never meets the worker tests' own workers on this process's queue). It shares the
    test database, uploads on disk and mail as files with the live server."""
    folder = tmp_path_factory.mktemp("worker")
    media, mail = folder / "media", folder / "mail"
    media.mkdir()
    mail.mkdir()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        FANHUB_TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        FANHUB_TEST_MEDIA_ROOT=str(media),
        FANHUB_TEST_MAIL_DIR=str(mail),
    )
    worker = Worker(process=None, media=media, mail=mail, log=folder / "worker.log")
    with worker.log.open("w") as log:
        worker.process = celery_worker_start(env=env, log=log)
    try:
        with tasks_to_broker():
            app.control.purge()  # nothing left over from an earlier module
            worker.drain(timeout=60)  # ready: it ran a task
        yield worker
    finally:
        process_stop(worker.process)


@contextmanager
def tasks_to_broker():
    """Tasks go to the broker for the worker instead of running in the test process."""
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def live_worker(celery_worker, settings):
    """Every journey: the live server (a thread of this process) queues tasks for the real
    worker, keeps uploads where the worker finds them, and writes mail as files, as the
    worker does. Waits for the worker to finish before the database is flushed."""
    settings.MEDIA_ROOT = str(celery_worker.media)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(celery_worker.mail)
    for old in celery_worker.mail.iterdir():
        old.unlink()
    with tasks_to_broker():
        yield celery_worker
        celery_worker.drain()


# --- mail the worker delivered ----------------------------------------------------------------

SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what Django's file backend writes after each message


class Mailbox:
    def __init__(self, folder: Path, worker: Worker):
        self.folder = folder
        self.worker = worker

    def messages(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.folder.glob("*.log")):
            *complete, _partial = path.read_bytes().split(SEPARATOR)
            for raw in complete:
                found.append(email.message_from_bytes(raw, policy=email.policy.default))
        return found

    def wait_for(self, *, to: str, subject: str, timeout: float = 30) -> EmailMessage:
        """The newest message to `to` whose subject contains `subject`, once the worker has
        delivered it."""
        matching: list[EmailMessage] = []

        def arrived() -> bool:
            matching[:] = [
                message
                for message in self.messages()
                if to in message["To"] and subject in message["Subject"]
            ]
            return bool(matching)

        wait_until(
            arrived,
            timeout=timeout,
            what=f"a mail to {to} about {subject!r}",
            explain=lambda: (
                "delivered: "
                + repr([(m["To"], m["Subject"]) for m in self.messages()])
                + "\n"
                + self.worker.log_tail()
            ),
        )
        return matching[-1]

    @staticmethod
    def text(message: EmailMessage) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def mailbox(live_worker):
    return Mailbox(live_worker.mail, live_worker)


# --- people ------------------------------------------------------------------------------------


@pytest.fixture
def operator():
    """ops@forge.example, staff, operating the brand Forge Audio (which sells headphones),
    with the permissions of the catalogue, pre-order and order admins."""
    brand = BrandFactory(name="Forge Audio", slug="forge")
    CategoryFactory(name="Headphones", slug="headphones")
    user = UserFactory(email="ops@forge.example", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["catalog", "preorders", "orders"])
    )
    brand.operators.add(user)
    return user
