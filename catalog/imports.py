"""CSV imports in a worker, with progress, whatever the size of the file.

The admin validates the upload in the request (size, type, header: catalog.admin), stores it
as an ImportJob and a task checks it (a dry run); the operator sees progress, then the result
(rows to create, update, leave unchanged; the problems by line) and a confirm button;
confirming has the task import it, all or nothing, and the import is audited (who, when,
which file, the counts per brand). The task is thin and idempotent: each step runs under the
job's row lock and only from the status it expects, in the same transaction that records its
outcome, so a second delivery (or a worker killed mid-import, whose transaction rolls back)
changes nothing twice. Progress is kept in the cache, since the job's row is locked by the
running transaction. Scoping: the rows a job may read or write are its operator's brands'
(catalog.admin_resources), checked again when the worker runs it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from import_export.formats.base_formats import CSV
from import_export.instance_loaders import CachedInstanceLoader

from audit.services import audit_record
from catalog.admin_resources import ProductResource, VariantResource, import_file_problem
from catalog.models import ImportJob, ImportJobStatus
from catalog.tasks import import_job_process

logger = logging.getLogger(__name__)

IMPORT_ERRORS_KEPT = 500
PROGRESS_EVERY = 25


# What each outcome of import-export's totals is called on the job's page and in the audit.
OUTCOMES = {"new": "created", "update": "updated", "skip": "unchanged", "invalid": "invalid"}


def import_max_bytes() -> int:
    """The largest upload accepted (the file is kept in the job's row until it is done)."""
    return settings.CATALOG_IMPORT_MAX_BYTES


def import_job_summary(*, job: ImportJob) -> list[tuple[str, int]]:
    """The last run's counts, by outcome, in the order the operator reads them."""
    return [(label, job.totals[kind]) for kind, label in OUTCOMES.items() if job.totals.get(kind)]


def _progress_key(job_id: int) -> str:
    return f"catalog:import-job:{job_id}:progress"


def import_job_progress(*, job: ImportJob) -> int:
    """Rows processed by the running step (0 when unknown: the cache is down or it ended)."""
    if not job.is_running:
        return job.total_rows
    try:
        return int(cache.get(_progress_key(job.pk)) or 0)
    except Exception:  # noqa: BLE001 - progress is cosmetic; never fail the page over it
        return 0


def _set_progress(job_id: int, rows: int) -> None:
    try:
        cache.set(_progress_key(job_id), rows, timeout=6 * 3600)
    except Exception:  # noqa: BLE001 - progress is cosmetic
        logger.warning("import job %s: progress not stored", job_id)


def _resource_class(name: str):
    return {"product": BackgroundProductResource, "variant": BackgroundVariantResource}[name]


class _Background:
    """No HTML diff for a worker run (nobody reads a 2,000-row diff), progress reports."""

    job_id: int | None = None

    def after_import_row(self, row, row_result, **kwargs):
        super().after_import_row(row, row_result, **kwargs)
        self._rows = getattr(self, "_rows", 0) + 1
        if self.job_id and self._rows % PROGRESS_EVERY == 0:
            _set_progress(self.job_id, self._rows)


class BackgroundProductResource(_Background, ProductResource):
    class Meta(ProductResource.Meta):
        skip_html_diff = True
        # One query for every row's existing object (scoped by get_queryset), not one a row.
        instance_loader_class = CachedInstanceLoader


class BackgroundVariantResource(_Background, VariantResource):
    class Meta(VariantResource.Meta):
        skip_html_diff = True
        instance_loader_class = CachedInstanceLoader


def count_rows(data: str) -> int:
    return len(CSV().create_dataset(data))


def import_job_create(*, user, resource: str, data: str, file_name: str) -> ImportJob:
    """Store a large upload and have a worker check it. `data` is the CSV text."""
    required = _resource_class(resource).required_columns
    if problem := import_file_problem(data, required):
        raise ValidationError(problem)
    job = ImportJob(
        user=user,
        resource=resource,
        data=data,
        file_name=file_name[:255],
        total_rows=count_rows(data),
    )
    job.full_clean()
    with transaction.atomic():
        job.save()
        import_job_process.delay_on_commit(job.pk)
    return job


def import_job_confirm(*, job: ImportJob, user) -> bool:
    """Import a checked file without errors. Safe to submit twice: only the first moves it."""
    with transaction.atomic():
        moved = ImportJob.objects.filter(
            pk=job.pk, user=user, status=ImportJobStatus.PREVIEWED, error_count=0
        ).update(status=ImportJobStatus.IMPORTING, updated_at=timezone.now())
        if moved:
            import_job_process.delay_on_commit(job.pk)
    return bool(moved)


def _errors(result) -> list[dict[str, object]]:
    errors: list[dict[str, object]] = []
    for row in result.invalid_rows:
        for column, messages in row.field_specific_errors.items():
            errors.extend(
                {"row": row.number, "column": column, "message": str(m)} for m in messages
            )
        errors.extend(
            {"row": row.number, "column": "", "message": str(m)}
            for m in row.non_field_specific_errors
        )
    for number, row_errors in result.row_errors():
        errors.extend(
            {"row": number, "column": "", "message": "This row could not be saved."}
            for _ in row_errors
        )
    for _ in result.base_errors:
        errors.append({"row": 0, "column": "", "message": "The file could not be imported."})
    return errors


def import_job_advance(*, job_id: int) -> None:
    """Run the step the job waits for (check, or import), or nothing if none is due."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("user").filter(pk=job_id).first()
        if job is None or not job.is_running:
            return
        dry_run = job.status == ImportJobStatus.PREVIEWING
        resource = _resource_class(job.resource)()
        resource.job_id = job.pk
        _set_progress(job.pk, 0)
        result = resource.import_data(
            CSV().create_dataset(job.data),
            dry_run=dry_run,
            raise_errors=False,
            use_transactions=True,
            rollback_on_validation_errors=True,
            user=job.user,
            file_name=job.file_name,
        )
        errors = _errors(result)
        job.totals = {kind: count for kind, count in result.totals.items() if count}
        job.error_count = len(errors)
        job.errors = errors[:IMPORT_ERRORS_KEPT]
        if dry_run:
            job.status = ImportJobStatus.PREVIEWED
        else:
            job.status = ImportJobStatus.FAILED if errors else ImportJobStatus.DONE
        job.save(update_fields=["totals", "error_count", "errors", "status", "updated_at"])
        if job.status == ImportJobStatus.DONE:
            _import_audit(job=job, result=result)


def _import_audit(*, job: ImportJob, result) -> None:
    """One audit entry per brand whose rows the import created or updated (with that
    brand's counts), in the import's transaction; one without a brand if it changed none."""
    model = _resource_class(job.resource)._meta.model
    changed = {
        str(row.object_id): row.import_type
        for row in result.rows
        if row.import_type in ("new", "update") and row.object_id is not None
    }
    brand_of = dict(
        model.objects.filter(pk__in=changed).values_list("pk", f"{model.brand_lookup}_id")
    )
    counts: dict[int | None, dict[str, int]] = {}
    for pk, brand_id in brand_of.items():
        kind = OUTCOMES[changed[str(pk)]]
        counts.setdefault(brand_id, {}).setdefault(kind, 0)
        counts[brand_id][kind] += 1
    unchanged = job.totals.get("skip", 0)
    for brand_id, brand_counts in counts.items() or [(None, {})]:
        audit_record(
            actor=job.user,
            action=f"{job.resource}.import",
            obj=job,
            brand_id=brand_id,
            after={**brand_counts, "unchanged_in_file": unchanged, "rows_in_file": job.total_rows},
            note=f"CSV import of {job.file_name or job.resource}"[:300],
        )
