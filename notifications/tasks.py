from config.celery import house_task
from notifications.emails import email_deserialize


@house_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def email_deliver(payload: dict) -> None:
    """Send one email. Not acks_late: a re-delivery after a crash could send it twice, and a
    lost confirmation mail can be re-requested from the page."""
    email_deserialize(payload).send(fail_silently=False)


@house_task()
def notifications_deliver_chunk(
    recipient_ids: list[int], kind: str, title: str, body: str, url: str
) -> None:
    """One chunk of a fan-out. Not acks_late: a re-run would notify the chunk twice."""
    from notifications.services import notifications_deliver

    notifications_deliver(recipient_ids=recipient_ids, kind=kind, title=title, body=body, url=url)
