"""The commitments engine's contract, on a fake book (tests/commitments_fake): a feature
that supplies only its decisions (threshold, amount, what a charged commitment becomes,
what happens at the finish) and its words gets the whole lifecycle: intake, close, charge,
the fix-payment window with its reminder and release, deposits refunded when the minimum
is missed, and the finish. Plus the registry's refusals."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from notifications.models import Notification
from payments.commitments.book import (
    CommitmentBook,
    commitment_book,
    commitment_book_register,
    commitment_books,
    lock_namespace_for,
)
from payments.commitments.deposits import commitment_deposit_pay
from payments.commitments.lifecycle import (
    commitment_commit,
    commitment_pay_again,
    commitments_grace_sweep,
    parent_cancel,
    parent_close,
)
from payments.commitments.machine import Action, TransitionError
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.services import card_save
from preorders.models import BATCH_MACHINE, BatchStatus
from tests.commitments_fake.models import (
    COMMITMENT_MACHINE,
    DROP_MACHINE,
    FakeCommitment,
    FakeDrop,
    FakeEvent,
)
from tests.factories import UserFactory
from tests.preorders import batch_open
from tests.shop import CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)

CARD_DECLINED_ON_CHARGE = {**CARD_OK, "number": "4000000000000341"}


@pytest.fixture
def book():
    return commitment_book("fake-drop")


def drop(**fields) -> FakeDrop:
    return FakeDrop.objects.create(
        title=f"Drop {uuid.uuid4().hex[:6]}",
        closes_at=timezone.now() + timedelta(days=1),
        **fields,
    )


def commit(book, parent, *, card=CARD_OK, user=None, key=None) -> FakeCommitment:
    user = user or UserFactory()
    commitment = commitment_commit(
        book=book,
        parent=parent,
        user=user,
        saved_card=card_save(user=user, card=card),
        request_key=key or uuid.uuid4().hex,
    )
    if parent.deposit:
        commitment_deposit_pay(book=book, commitment=commitment)
        commitment.refresh_from_db()
    return commitment


def statuses(parent) -> list[str]:
    return list(parent.commitments.order_by("pk").values_list("status", flat=True))


def test_intake_is_once_per_form_and_only_while_open(book):
    parent = drop()
    user = UserFactory()
    card = card_save(user=user, card=CARD_OK)
    first = commitment_commit(
        book=book, parent=parent, user=user, saved_card=card, request_key="form-1"
    )
    again = commitment_commit(
        book=book, parent=parent, user=user, saved_card=card, request_key="form-1"
    )
    assert again.pk == first.pk
    assert FakeCommitment.objects.filter(drop=parent).count() == 1
    event = FakeEvent.objects.get(commitment=first)
    assert (event.from_status, event.to_status, event.actor_id) == ("", "held", user.pk)
    parent.closes_at = timezone.now() - timedelta(seconds=1)
    parent.save()
    with pytest.raises(book.error, match="no longer taken"):
        commit(book, parent)
    assert FakeCommitment.objects.filter(drop=parent).count() == 1


def test_threshold_met_charges_everyone_and_the_declined_get_a_fix_window(book):
    parent = drop(minimum=2, price=Decimal("25.00"))
    paid = commit(book, parent)
    declined = commit(book, parent, card=CARD_DECLINED_ON_CHARGE)
    mail.outbox.clear()

    assert parent_close(book=book, parent=parent, force=True)  # chunks run eagerly

    parent.refresh_from_db()
    paid.refresh_from_db()
    declined.refresh_from_db()
    assert parent.status == "confirmed" and parent.finished_with == "success"
    assert parent.settled_at is not None
    assert (paid.status, paid.amount_charged, paid.became) == (
        "charged",
        Decimal("25.00"),
        f"order for {parent.title}",
    )
    assert Payment.objects.get(reference=f"fake-commit:{paid.pk}").status == "succeeded"
    assert declined.status == "payment_failed" and declined.became == ""
    assert declined.grace_until > timezone.now() + timedelta(days=6)
    assert [m.subject for m in mail.outbox] == [
        f"[Fanhub] Your commitment to {parent.title} needs a payment"
    ]
    assert mail.outbox[0].to == [declined.user.email]
    # The event log: the parent's moves and each commitment's, as the machine wrote them.
    assert list(
        FakeEvent.objects.filter(drop=parent, commitment=None).values_list(
            "from_status", "to_status"
        )
    ) == [("open", "settling"), ("settling", "confirmed")]
    assert list(declined.events.values_list("from_status", "to_status")) == [
        ("", "held"),
        ("held", "payment_failed"),
    ]
    assert (
        Notification.objects.filter(
            recipient_id__in=[paid.user_id, declined.user_id], title=f"{parent.title} is on"
        ).count()
        == 2
    )

    # A second close (a re-delivered task) does nothing and charges nobody twice.
    assert not parent_close(book=book, parent=parent, force=True)
    assert Payment.objects.filter(reference=f"fake-commit:{paid.pk}").count() == 1


def test_the_fix_window_reminds_then_releases(book):
    parent = drop(minimum=1)
    declined = commit(book, parent, card=CARD_DECLINED_ON_CHARGE)
    parent_close(book=book, parent=parent, force=True)
    declined.refresh_from_db()
    assert declined.status == "payment_failed"
    mail.outbox.clear()

    assert commitments_grace_sweep(book=book) == (0, 0)  # too soon for a reminder
    FakeCommitment.objects.filter(pk=declined.pk).update(
        reminded_at=timezone.now() - timedelta(hours=49)
    )
    assert commitments_grace_sweep(book=book) == (1, 0)
    assert [m.subject for m in mail.outbox] == [f"[Fanhub] Reminder: pay for {parent.title}"]
    assert commitments_grace_sweep(book=book) == (0, 0)  # once per period

    FakeCommitment.objects.filter(pk=declined.pk).update(
        grace_until=timezone.now() - timedelta(seconds=1)
    )
    assert commitments_grace_sweep(book=book) == (0, 1)
    declined.refresh_from_db()
    assert declined.status == "released"
    assert Notification.objects.filter(
        recipient_id=declined.user_id, title="Your commitment was released"
    ).exists()
    # Released is final: paying again is refused and charges nothing.
    with pytest.raises(book.error):
        commitment_pay_again(
            book=book,
            commitment=declined,
            user=declined.user,
            saved_card=card_save(user=declined.user, card=CARD_OK),
            card_input=None,
        )
    assert not Payment.objects.filter(
        reference=f"fake-commit:{declined.pk}", status=PaymentStatus.SUCCEEDED
    ).exists()


def test_paying_again_in_the_window_makes_it_what_a_charged_one_becomes(book):
    parent = drop(minimum=1, price=Decimal("12.00"))
    declined = commit(book, parent, card=CARD_DECLINED_ON_CHARGE)
    parent_close(book=book, parent=parent, force=True)
    declined.refresh_from_db()
    other = UserFactory()
    with pytest.raises(PermissionError):  # somebody else's commitment
        commitment_pay_again(
            book=book,
            commitment=declined,
            user=other,
            saved_card=card_save(user=other, card=CARD_OK),
            card_input=None,
        )
    payment = commitment_pay_again(
        book=book, commitment=declined, user=declined.user, saved_card=None, card_input=CARD_OK
    )
    declined.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount == Decimal("12.00")
    assert declined.status == "charged"
    assert declined.became == f"order for {parent.title}"
    assert declined.saved_card_id == payment.saved_card_id  # the typed card is kept
    # A twin submit finds it paid: nothing more is charged.
    with pytest.raises(book.error, match="does not need a payment"):
        commitment_pay_again(
            book=book, commitment=declined, user=declined.user, saved_card=None, card_input=CARD_OK
        )
    assert Payment.objects.filter(reference=f"fake-commit:{declined.pk}").count() == 1


def test_threshold_missed_releases_everyone_and_refunds_deposits(book):
    parent = drop(minimum=3, deposit=Decimal("2.00"))
    first, second = commit(book, parent), commit(book, parent)
    assert (first.deposit_paid, second.deposit_paid) == (Decimal("2.00"), Decimal("2.00"))

    assert parent_close(book=book, parent=parent, force=True)

    parent.refresh_from_db()
    assert parent.status == "cancelled" and parent.finished_with == "failure"
    assert statuses(parent) == ["released", "released"]
    for commitment in (first, second):
        commitment.refresh_from_db()
        assert commitment.deposit_refunded == commitment.deposit_paid == Decimal("2.00")
        refund = Refund.objects.get(payment__reference=f"fake-deposit:{commitment.pk}")
        assert refund.status == RefundStatus.SUCCEEDED and refund.amount == Decimal("2.00")
    # Nobody was charged beyond the deposits.
    assert not Payment.objects.filter(reference__startswith="fake-commit:").exists()


def test_cancelled_by_the_operator_while_open_releases_everyone(book):
    parent = drop(minimum=1)
    commit(book, parent)
    operator = UserFactory()
    parent_cancel(book=book, parent=parent, actor=operator, reason="Supplier gone")
    parent.refresh_from_db()
    assert parent.status == "cancelled"
    assert statuses(parent) == ["released"]
    event = FakeEvent.objects.filter(drop=parent, commitment=None).first()
    assert (event.to_status, event.actor_id, event.note) == (
        "cancelling",
        operator.pk,
        "Supplier gone",
    )
    with pytest.raises(TransitionError):  # cancelled is final
        parent_cancel(book=book, parent=parent, actor=operator)


def test_the_machine_refuses_moves_outside_its_table_and_logs_none():
    parent = drop()
    with pytest.raises(TransitionError, match="A drop that is open cannot become confirmed"):
        DROP_MACHINE.transition(parent, to="confirmed", locked=False)
    assert not FakeEvent.objects.filter(drop=parent).exists()
    assert [a.name for a in DROP_MACHINE.allowed_actions(parent)] == []
    assert COMMITMENT_MACHINE.allows("held", "charging")
    assert not COMMITMENT_MACHINE.allows("released", "charged")


class _Book(CommitmentBook):
    charge_prefix = "x-charge"
    deposit_prefix = "x-deposit"


def test_a_second_book_of_a_kind_is_refused(book):
    twin = _Book()
    twin.kind = book.kind
    with pytest.raises(ValueError, match="registered already"):
        commitment_book_register(twin)
    assert commitment_book("fake-drop") is book


def test_lock_namespaces_are_derived_and_a_collision_is_refused(book):
    assert book.lock_namespace == lock_namespace_for("fake-drop")
    assert commitment_book("preorder").lock_namespace == lock_namespace_for("preorder")
    assert book.lock_namespace != commitment_book("preorder").lock_namespace
    # Find another kind that derives the fake book's namespace: refused, never aliased.
    colliding = next(
        kind
        for kind in (f"kind-{n}" for n in range(1_000_000))
        if lock_namespace_for(kind) == book.lock_namespace
    )
    clash = _Book()
    clash.kind = colliding
    with pytest.raises(ValueError, match="same lock namespace"):
        commitment_book_register(clash)
    shared = _Book()
    shared.kind, shared.charge_prefix = "unique-kind-for-prefix-test", book.charge_prefix
    taken = {other.lock_namespace for other in commitment_books()}
    assert lock_namespace_for(shared.kind) not in taken  # refused for its prefix alone
    with pytest.raises(ValueError, match="share a reference prefix"):
        commitment_book_register(shared)
    assert {other.kind for other in commitment_books()} >= {"preorder", "fake-drop"}
    assert shared.kind not in {other.kind for other in commitment_books()}


# --- the admin's buttons are the machine's allowed actions ---------------------------------


def _buttons(client, batch) -> list[str]:
    page = client.get(f"/admin/preorders/preorderbatch/{batch.pk}/change/").content.decode()
    return re.findall(rf"/admin/preorders/preorderbatch/{batch.pk}/operate/(\w+)/", page)


def test_the_batch_admin_buttons_are_the_machines_allowed_actions(client, monkeypatch):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    batch = batch_open()
    expected = {
        BatchStatus.DRAFT: ["publish", "cancel"],
        BatchStatus.SCHEDULED: ["cancel"],
        BatchStatus.OPEN: ["close", "cancel"],
        BatchStatus.SETTLING: [],
        BatchStatus.CONFIRMED: ["fulfil"],
        BatchStatus.CANCELLED: [],
        BatchStatus.FULFILLED: [],
    }
    for status, names in expected.items():
        type(batch).objects.filter(pk=batch.pk).update(status=status)
        batch.refresh_from_db()
        assert [a.name for a in BATCH_MACHINE.allowed_actions(batch)] == names
        assert _buttons(client, batch) == names, status
    # The page asks the machine, not a list of its own: change the table, the buttons follow.
    monkeypatch.setattr(
        BATCH_MACHINE,
        "transitions",
        {**BATCH_MACHINE.transitions, BatchStatus.FULFILLED: frozenset({BatchStatus.CANCELLED})},
    )
    monkeypatch.setattr(
        BATCH_MACHINE, "actions", (*BATCH_MACHINE.actions, Action("undo", "Undo", to="cancelled"))
    )
    assert _buttons(client, batch) == ["cancel", "undo"]


def test_a_move_costs_its_event_row_and_one_update(django_assert_num_queries):
    parent = drop()
    # In the caller's transaction, no savepoint of the machine's own: the event INSERT and
    # the status UPDATE.
    with transaction.atomic(), django_assert_num_queries(2):
        DROP_MACHINE.transition(parent, to="cancelling", note="caller holds the lock")
    # Without the caller's lock: its own transaction, the row lock re-reading the state, the
    # two writes (BEGIN, SELECT ... FOR UPDATE, INSERT, UPDATE, COMMIT).
    with django_assert_num_queries(5):
        DROP_MACHINE.transition(parent, to="cancelled", locked=False)
    parent.refresh_from_db()
    assert parent.status == "cancelled"
    assert list(parent.events.values_list("from_status", "to_status", "note")) == [
        ("open", "cancelling", "caller holds the lock"),
        ("cancelling", "cancelled", ""),
    ]


def test_a_stale_copy_is_moved_from_the_state_in_the_database():
    parent = drop()
    stale = FakeDrop.objects.get(pk=parent.pk)
    DROP_MACHINE.transition(parent, to="cancelling", locked=False)
    with pytest.raises(TransitionError, match="cancelling cannot become settling"):
        DROP_MACHINE.transition(stale, to="settling", locked=False)  # was open when read
    assert FakeEvent.objects.filter(drop=parent).count() == 1
