from config.celery import house_task


@house_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def email_deliver(outbox_id: int) -> None:
    """Send one outbox email (skipped if already sent). Not acks_late: a lost task is sent by
    the outbox sweep instead, and a re-delivery could send it twice."""
    from notifications.services import email_outbox_deliver

    email_outbox_deliver(outbox_id=outbox_id)


@house_task()
def emails_outbox_flush_task() -> None:
    from notifications.services import emails_outbox_flush

    emails_outbox_flush()


@house_task()
def notifications_deliver_chunk(
    recipient_ids: list[int], kind: str, title: str, body: str, url: str
) -> None:
    """One chunk of a fan-out. Not acks_late: a re-run would notify the chunk twice."""
    from notifications.services import notifications_deliver

    notifications_deliver(recipient_ids=recipient_ids, kind=kind, title=title, body=body, url=url)
