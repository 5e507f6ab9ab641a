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
