"""One process of the intake benchmark's clients (bench.preorders): its threads call
`reservation_create` (so they share the process's combiner, as a web server's threads do).

    python -m bench.intake_clients <calls.json> <threads>

calls.json: {"batch": id, "variant": id, "address": {...}, "calls": [[user, card, key], ...]}.
Prints READY once every thread has its connection, starts on a line "GO" on stdin, prints
"DONE <refused> <time.monotonic() at the end>" (the clock is the machine's, as the parent's)."""

import json
import os
import sys
import threading
import time


def main(path: str, threads: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.db import connection

    from accounts.models import User
    from catalog.models import Variant
    from payments.models import SavedCard
    from preorders.models import PreorderBatch
    from preorders.services import reservation_create

    spec = json.loads(open(path).read())  # noqa: SIM115, PTH123 - a bench helper
    calls = spec["calls"]
    users = User.objects.in_bulk({c[0] for c in calls})
    cards = SavedCard.objects.in_bulk({c[1] for c in calls})
    variant = Variant.objects.get(pk=spec["variant"])
    batch = PreorderBatch.objects.get(pk=spec["batch"])
    address = spec["address"]
    connection.close()
    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    refused: list[int] = []

    def work(share: list) -> None:
        connection.ensure_connection()
        ready.wait()
        go.wait()
        count = 0
        try:
            for user_id, card_id, key in share:
                try:
                    reservation_create(
                        batch=batch,
                        user=users[user_id],
                        variant=variant,
                        quantity=1,
                        saved_card=cards[card_id],
                        address=address,
                        request_key=key,
                    )
                except ValidationError:
                    count += 1
        finally:
            refused.append(count)
            connection.close()

    pool = [threading.Thread(target=work, args=(calls[i::threads],)) for i in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    print("READY", flush=True)
    assert sys.stdin.readline().strip() == "GO"
    go.set()
    for thread in pool:
        thread.join()
    print(f"DONE {sum(refused)} {time.monotonic()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
