from config.celery import house_task


@house_task(acks_late=True)
def product_image_make_thumbnails(image_id: int) -> None:
    from catalog.services import product_image_make_thumbnails as make

    make(image_id=image_id)
