"""A process taking reservations from many threads, for the crash tests: killed at a random
instant by the test, it must have lost nothing it acknowledged.

    python -m tests.intake_client <requests.json> <threads>

Each request is [user_id, card_id, variant_id, quantity, key, batch_id]. Prints one line per
answer, flushed as soon as the service returned: "ACK <key> <reservation id>" (the fan is
told "reserved"), "REFUSED <key>", or "ERROR <key> <exception>"; "DONE" at the end."""

import json
import os
import sys
import threading


def main(path: str, threads: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    if os.environ.get("INTAKE_PUBLISH_TASKS"):  # through the broker, not run in place
        from config.celery import app

        app.conf.task_always_eager = False
    from django.core.exceptions import ValidationError
    from django.db import connection

    from accounts.models import User
    from catalog.models import Variant
    from payments.models import SavedCard
    from preorders.models import PreorderBatch
    from preorders.services import reservation_create
    from tests.shop import ADDRESS

    requests = json.loads(open(path).read())  # noqa: SIM115, PTH123 - a test helper
    users = User.objects.in_bulk({r[0] for r in requests})
    cards = SavedCard.objects.in_bulk({r[1] for r in requests})
    variants = Variant.objects.in_bulk({r[2] for r in requests})
    batches = PreorderBatch.objects.in_bulk({r[5] for r in requests})
    connection.close()
    out = threading.Lock()
    start = threading.Barrier(threads)

    def say(line: str) -> None:
        with out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def work(share: list) -> None:
        start.wait()
        try:
            for user_id, card_id, variant_id, quantity, key, batch_id in share:
                try:
                    reservation = reservation_create(
                        batch=batches[batch_id],
                        user=users[user_id],
                        variant=variants[variant_id],
                        quantity=quantity,
                        saved_card=cards[card_id],
                        address=ADDRESS,
                        request_key=key,
                    )
                except ValidationError:
                    say(f"REFUSED {key}")
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    say(f"ERROR {key} {type(exc).__name__}: {exc}".replace("\n", " "))
                else:
                    say(f"ACK {key} {reservation.pk}")
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(requests[i::threads],)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    say("DONE")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
