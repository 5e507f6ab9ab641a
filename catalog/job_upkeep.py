"""Upkeep of the export and import jobs, for beat: fail the jobs whose worker stopped, and
delete the jobs (and the files they hold) older than the retention.

A stalled job is failed, not re-queued. A worker that dies in the middle of a job was most
often killed by that job (memory, a time limit on a huge selection): queued again, it would
kill the next worker the same way, every sweep. What it had written is lost anyway (the file
is stored only when complete; an import's transaction rolled back), so a failure costs the
operator one click to ask again, and tells them at once instead of a "running" forever.

Stalled means: an export running whose heartbeat (set at the claim and at each progress
step) is older than CATALOG_JOB_STALL_MINUTES, or queued that long and never claimed (its
message was lost); an import checking or importing that long whose row is not locked (a
running step holds the lock for its whole transaction, so it is never taken for dead).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import ExportJob, ExportJobStatus, ImportJob, ImportJobStatus

EXPORT_STALLED = "The worker stopped before the file was ready. Export it again."
IMPORT_STALLED = "The worker stopped before the file was processed; nothing was imported. "
IMPORT_STALLED += "Upload it again."
CLEANUP_CHUNK = 500


def jobs_fail_stalled() -> tuple[int, int]:
    """Fail the stalled export and import jobs; (exports failed, imports failed)."""
    now = timezone.now()
    cutoff = now - timedelta(minutes=settings.CATALOG_JOB_STALL_MINUTES)
    exports = ExportJob.objects.filter(
        Q(status=ExportJobStatus.RUNNING, heartbeat_at__lt=cutoff)
        | Q(status=ExportJobStatus.QUEUED, created_at__lt=cutoff)
    ).update(status=ExportJobStatus.FAILED, finished_at=now, failure=EXPORT_STALLED)
    with transaction.atomic():
        stalled = list(
            ImportJob.objects.select_for_update(skip_locked=True).filter(
                status__in=[ImportJobStatus.PREVIEWING, ImportJobStatus.IMPORTING],
                updated_at__lt=cutoff,
            )
        )
        for job in stalled:
            job.status = ImportJobStatus.FAILED
            job.errors = [{"row": 0, "column": "", "message": IMPORT_STALLED}]
            job.error_count = 1
            job.save(update_fields=["status", "errors", "error_count", "updated_at"])
    return exports, len(stalled)


def jobs_delete_expired(*, limit: int = CLEANUP_CHUNK) -> int:
    """Delete up to `limit` export and import jobs older than CATALOG_JOB_RETENTION_DAYS,
    with the files they hold (kept in their rows); how many were deleted."""
    cutoff = timezone.now() - timedelta(days=settings.CATALOG_JOB_RETENTION_DAYS)
    deleted = 0
    for model in (ExportJob, ImportJob):
        ids = list(
            model.objects.filter(created_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[: limit - deleted]
        )
        model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if deleted >= limit:
            break
    return deleted
