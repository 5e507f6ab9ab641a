"""Exports in a worker (catalog.exports): the job runs in chunks with progress, the file is
the exporter's CSV, and only the operator who asked sees the job and downloads its file."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog import exports
from catalog.exports import export_job_create, export_job_run, export_register
from catalog.models import ExportJob
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
    assert job.finished_at is not None
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
