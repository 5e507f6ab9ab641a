"""Exports in a worker (catalog.exports): the job runs in chunks with progress, the file is
the exporter's CSV, and only the operator who asked sees the job and downloads its file; the
upkeep sweeps fail the jobs whose worker stopped and delete those past their retention."""

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog import exports, job_upkeep, tasks
from catalog.exports import export_job_create, export_job_run, export_register
from catalog.job_upkeep import jobs_delete_expired, jobs_fail_stalled
from catalog.models import ExportJob, ImportJob
from config.celery import app
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db

PROGRESS: list[int] = []


def _numbers(*, brand, params):
    n = params["n"]

    def rows():
        yield ["n", "brand", "note"]
        for i in range(n):
            if i and i % 2 == 0:  # the progress the job recorded so far, seen mid-run
                PROGRESS.append(ExportJob.objects.get(kind="test.numbers").rows_done)
            yield [i, brand.slug, "=SUM(A1)" if i == 0 else ""]

    return n, rows()


export_register("test.numbers", _numbers)


def _operator(brand):
    user = UserFactory(is_staff=True)
    brand.operators.add(user, through_defaults={"role": "owner"})
    return user


def test_the_job_writes_the_file_in_chunks_and_progress_reaches_the_total(monkeypatch):
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 2)
    PROGRESS.clear()
    brand = BrandFactory()
    job = export_job_create(
        user=_operator(brand), brand=brand, kind="test.numbers", params={"n": 7}, file_name="n.csv"
    )
    assert (job.status, job.rows_done) == ("queued", 0)
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 7, 7)
    assert job.finished_at is not None and job.heartbeat_at is not None
    assert PROGRESS == [2, 4, 6]  # recorded every 2 rows while it ran
    rows = list(csv.reader(io.StringIO(job.content)))
    assert rows[0] == ["n", "brand", "note"] and len(rows) == 8
    assert rows[1] == ["0", brand.slug, "=SUM(A1)"]  # the exporter's own rows, unchanged

    export_job_run(job_id=job.pk)  # a second delivery changes nothing
    job.refresh_from_db()
    assert (job.status, job.rows_done) == ("done", 7)


def test_a_failing_exporter_marks_the_job_failed():
    def broken(*, brand, params):
        raise RuntimeError("boom")

    export_register("test.broken", broken)
    brand = BrandFactory()
    job = export_job_create(
        user=_operator(brand), brand=brand, kind="test.broken", params={}, file_name="x.csv"
    )
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.content) == ("failed", "")


def test_an_unknown_kind_is_refused():
    brand = BrandFactory()
    with pytest.raises(ValueError):
        export_job_create(user=_operator(brand), brand=brand, kind="nope", params={}, file_name="x")
    assert not ExportJob.objects.exists()


def test_only_the_operator_who_asked_sees_the_job_and_downloads_it(client):
    brand = BrandFactory()
    owner, colleague = _operator(brand), _operator(brand)
    job = export_job_create(
        user=owner, brand=brand, kind="test.numbers", params={"n": 1}, file_name="n.csv"
    )
    export_job_run(job_id=job.pk)
    changelist = reverse("admin:catalog_exportjob_changelist")
    download = reverse("admin:catalog_exportjob_download", args=[job.pk])
    change = reverse("admin:catalog_exportjob_change", args=[job.pk])

    client.force_login(colleague)  # same brand, not their job
    assert client.get(changelist).context["cl"].result_count == 0
    assert client.get(download).status_code == 404
    assert client.get(change).status_code == 302  # the admin's "doesn't exist"

    client.force_login(owner)
    page = client.get(changelist)
    assert page.context["cl"].result_count == 1
    assert download in page.content.decode() and "1 / 1 rows" in page.content.decode()
    response = client.get(download)
    assert response.status_code == 200
    assert response.content.decode().splitlines()[0] == "n,brand,note"
    assert client.get(change).status_code == 200


def test_the_list_refreshes_while_a_job_runs_and_offers_no_file_yet(client):
    brand = BrandFactory()
    owner = _operator(brand)
    job = export_job_create(
        user=owner, brand=brand, kind="test.numbers", params={"n": 1}, file_name="n.csv"
    )
    client.force_login(owner)
    html = client.get(reverse("admin:catalog_exportjob_changelist")).content.decode()
    assert 'http-equiv="refresh"' in html
    download = reverse("admin:catalog_exportjob_download", args=[job.pk])
    assert download not in html
    assert client.get(download).status_code == 404
    export_job_run(job_id=job.pk)
    html = client.get(reverse("admin:catalog_exportjob_changelist")).content.decode()
    assert 'http-equiv="refresh"' not in html and download in html


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_exports_page_is_a_fixed_number_of_queries_whatever_the_jobs(client):
    brand = BrandFactory()
    owner = _operator(brand)
    client.force_login(owner)
    url = reverse("admin:catalog_exportjob_changelist")

    def job():
        made = export_job_create(
            user=owner, brand=brand, kind="test.numbers", params={"n": 1}, file_name="n.csv"
        )
        export_job_run(job_id=made.pk)

    job()
    _count(client, url)  # warm-up: the first page fills per-process caches
    one = _count(client, url)
    for _ in range(5):
        job()
    assert _count(client, url) == one


# --- upkeep: a stalled job fails, old jobs go (catalog.job_upkeep, both on beat) ----------


def _at(moment):
    return time_machine.travel(moment, tick=False)


def test_a_job_whose_worker_stopped_is_failed_after_the_stall_and_not_before(settings, monkeypatch):
    settings.CATALOG_JOB_STALL_MINUTES = 15
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 2)
    brand = BrandFactory()
    owner = _operator(brand)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with _at(start):
        dead = export_job_create(
            user=owner, brand=brand, kind="test.numbers", params={"n": 3}, file_name="d.csv"
        )
        alive = export_job_create(
            user=owner, brand=brand, kind="test.numbers", params={"n": 3}, file_name="a.csv"
        )
        lost = export_job_create(  # its message never reached a worker
            user=owner, brand=brand, kind="test.numbers", params={"n": 3}, file_name="l.csv"
        )
        # The worker claims both, then dies on one: its status stays "running".
        ExportJob.objects.filter(pk__in=[dead.pk, alive.pk]).update(
            status="running", heartbeat_at=start
        )
    with _at(start + timedelta(minutes=10)):
        ExportJob.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now())  # progress
    with _at(start + timedelta(minutes=14)):
        assert jobs_fail_stalled() == (0, 0)  # within the stall: nobody is failed
    with _at(start + timedelta(minutes=16)):
        assert jobs_fail_stalled() == (2, 0)
    states = dict(ExportJob.objects.values_list("pk", "status"))
    assert (states[dead.pk], states[lost.pk], states[alive.pk]) == ("failed", "failed", "running")
    dead.refresh_from_db()
    assert dead.failure.startswith("The worker stopped") and dead.finished_at is not None
    # A late delivery of the lost job's message changes nothing: it is not queued any more.
    export_job_run(job_id=lost.pk)
    lost.refresh_from_db()
    assert (lost.status, lost.content) == ("failed", "")


def test_the_beat_schedule_runs_both_upkeep_tasks():
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"catalog.tasks.jobs_stalled_sweep", "catalog.tasks.jobs_expired_delete"} <= scheduled


@pytest.mark.django_db(transaction=True)
def test_a_stalled_import_is_failed_but_one_a_worker_holds_is_not(settings):
    """A running step holds the job's row lock for its whole transaction: the sweep skips
    it, however long it takes; an unlocked job that stopped long ago is failed."""
    settings.CATALOG_JOB_STALL_MINUTES = 15
    user = UserFactory(is_staff=True)
    header = "sku,product,price\n"
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with _at(start):
        held = ImportJob.objects.create(user=user, resource="variant", data=header)
        stopped = ImportJob.objects.create(user=user, resource="variant", data=header)
    locked, release = threading.Event(), threading.Event()

    def worker():
        try:
            with transaction.atomic():
                ImportJob.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(10)
        with _at(start + timedelta(minutes=30)):
            assert jobs_fail_stalled() == (0, 1)
    finally:
        release.set()
        thread.join()
    states = dict(ImportJob.objects.values_list("pk", "status"))
    assert (states[held.pk], states[stopped.pk]) == ("previewing", "failed")
    stopped.refresh_from_db()
    assert stopped.error_count == 1 and "nothing was imported" in stopped.errors[0]["message"]


def test_jobs_past_the_retention_are_deleted_with_their_files_in_chunks(settings):
    settings.CATALOG_JOB_RETENTION_DAYS = 7
    brand = BrandFactory()
    owner = _operator(brand)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with _at(start):
        old = [
            ExportJob.objects.create(
                user=owner, brand=brand, kind="k", file_name="o.csv", content="a,b\n"
            )
            for _ in range(3)
        ]
        old_import = ImportJob.objects.create(user=owner, resource="variant", data="sku\n")
    with _at(start + timedelta(days=6)):
        recent = ExportJob.objects.create(user=owner, brand=brand, kind="k", file_name="r.csv")
    with _at(start + timedelta(days=7, minutes=-1)):
        assert jobs_delete_expired() == 0  # not yet a week old
    with _at(start + timedelta(days=7, minutes=1)):
        assert jobs_delete_expired(limit=2) == 2  # a chunk at a time
        assert jobs_delete_expired(limit=2) == 2
        assert jobs_delete_expired(limit=2) == 0
    assert list(ExportJob.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not ImportJob.objects.filter(pk=old_import.pk).exists()
    assert not ExportJob.objects.filter(pk__in=[job.pk for job in old]).exists()


def test_the_cleanup_task_queues_the_next_chunk_when_one_is_full(settings, monkeypatch):
    settings.CATALOG_JOB_RETENTION_DAYS = 7
    monkeypatch.setattr(job_upkeep, "CLEANUP_CHUNK", 2)
    brand = BrandFactory()
    owner = _operator(brand)
    with _at(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)):
        for _ in range(5):
            ExportJob.objects.create(user=owner, brand=brand, kind="k", file_name="o.csv")
    with _at(datetime(2026, 3, 20, 9, 0, tzinfo=UTC)):
        tasks.jobs_expired_delete.delay()  # eager in tests: each full chunk queues the next
    assert not ExportJob.objects.exists()
