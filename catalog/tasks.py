from config.celery import house_task


@house_task(acks_late=True)
def product_image_make_thumbnails(image_id: int) -> None:
    from catalog.services import product_image_make_thumbnails as make

    make(image_id=image_id)


@house_task(acks_late=True)
def import_job_process(job_id: int) -> None:
    """Idempotent: the step runs only from the status it expects, under the job's row lock."""
    from catalog.imports import import_job_advance

    import_job_advance(job_id=job_id)


@house_task()
def stock_alerts_sweep() -> None:
    """Beat: tell the fans whose variant is back, a chunk at a time; a full chunk queues
    the next one (each chunk claims its rows with skip_locked, so overlapping runs are safe)."""
    from catalog.stock_alerts import SWEEP_CHUNK, stock_alerts_send_due

    if stock_alerts_send_due(limit=SWEEP_CHUNK) == SWEEP_CHUNK:
        stock_alerts_sweep.delay()


@house_task()
def product_views_flush() -> None:
    """Beat: fold the product page counters from Redis into the database."""
    from catalog.product_views import product_views_flush as flush

    flush()


@house_task(acks_late=True)
def export_job_process(job_id: int) -> None:
    """Idempotent: only a queued job is claimed and run."""
    from catalog.exports import export_job_run

    export_job_run(job_id=job_id)


@house_task()
def jobs_stalled_sweep() -> None:
    """Beat: fail the export and import jobs whose worker stopped (catalog.job_upkeep)."""
    from catalog.job_upkeep import jobs_fail_stalled

    jobs_fail_stalled()


@house_task()
def jobs_expired_delete() -> None:
    """Beat: delete the jobs past their retention, a chunk at a time; a full chunk queues
    the next one."""
    from catalog.job_upkeep import CLEANUP_CHUNK, jobs_delete_expired

    if jobs_delete_expired(limit=CLEANUP_CHUNK) >= CLEANUP_CHUNK:
        jobs_expired_delete.delay()
