"""CSV exports of any size in a worker, with progress, offered to the operator who asked.

A feature app registers an exporter for a kind in its AppConfig.ready() (like
payments.listeners): `export_register(kind, exporter)`, where `exporter(*, brand, params)`
returns `(total_rows, rows)`: the number of data rows and an iterator of CSV rows (the
header first), already formula-safe and scoped to `brand`. The admin action calls
`export_job_create` and redirects to the job's page; the task runs `export_job_run`.
An explicit registry, called explicitly; not Django signals.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Brand, ExportJob, ExportJobStatus
from catalog.tasks import export_job_process

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 500
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Exporter = Callable[..., tuple[int, Iterator[list]]]
_exporters: dict[str, Exporter] = {}


def export_register(kind: str, exporter: Exporter) -> None:
    _exporters[kind] = exporter


def csv_safe(row: list) -> list:
    """Text that a spreadsheet would run as a formula (=, +, -, @, tab or CR first) gets a
    leading apostrophe; numbers stay numbers."""
    return [
        f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
        for value in row
    ]


def export_job_create(*, user, brand: Brand, kind: str, params: dict, file_name: str) -> ExportJob:
    if kind not in _exporters:
        raise ValueError(f"No exporter for {kind!r}")
    job = ExportJob(user=user, brand=brand, kind=kind, params=params, file_name=file_name[:255])
    job.full_clean()
    with transaction.atomic():
        job.save()
        export_job_process.delay_on_commit(job.pk)
    return job


def export_job_run(*, job_id: int) -> None:
    """Claim a queued job (a second delivery finds it claimed and does nothing), write its
    rows, recording progress every PROGRESS_EVERY rows, then store the file."""
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJobStatus.QUEUED).update(
        status=ExportJobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    if not claimed:
        return
    job = ExportJob.objects.select_related("brand").get(pk=job_id)
    try:
        total, rows = _exporters[job.kind](brand=job.brand, params=job.params)
        ExportJob.objects.filter(pk=job_id).update(rows_total=total)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        done = -1  # the header is not a data row
        for row in rows:
            writer.writerow(row)
            done += 1
            if done and done % PROGRESS_EVERY == 0:
                ExportJob.objects.filter(pk=job_id, status=ExportJobStatus.RUNNING).update(
                    rows_done=done, heartbeat_at=timezone.now()
                )
        # Only a job still running: one the upkeep sweep failed meanwhile stays failed.
        ExportJob.objects.filter(pk=job_id, status=ExportJobStatus.RUNNING).update(
            status=ExportJobStatus.DONE,
            content=buffer.getvalue(),
            rows_done=max(done, 0),
            rows_total=F("rows_total") if total else max(done, 0),
            finished_at=timezone.now(),
        )
    except Exception:
        logger.exception("export job %s failed", job_id)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJobStatus.FAILED,
            finished_at=timezone.now(),
            failure="The export could not be written.",
        )
