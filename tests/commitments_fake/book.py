"""The fake drop's book: only its decisions and words; the engine does the rest."""

from django.db.models import F, Value

from notifications.models import NotificationKind
from payments.commitments.book import CommitmentBook
from tests.commitments_fake.models import (
    COMMITMENT_MACHINE,
    DROP_MACHINE,
    FakeCommitment,
    FakeDrop,
)


class FakeBook(CommitmentBook):
    kind = "fake-drop"
    model = FakeCommitment
    parent_model = FakeDrop
    parent_field = "drop_id"
    commitments_name = "commitments"
    machine = COMMITMENT_MACHINE
    parent_machine = DROP_MACHINE
    charge_prefix = "fake-commit"
    deposit_prefix = "fake-deposit"
    email_templates = "commitments_fake"
    notification_kind = NotificationKind.PREORDER
    related_for_lock = ("drop",)
    related_for_pay = ("drop", "saved_card", "user")
    texts = {
        **CommitmentBook.texts,
        "payment_failed_subject": "Your commitment to {parent.title} needs a payment",
        "reminder_subject": "Reminder: pay for {parent.title}",
    }

    def threshold_met(self, parent) -> bool:
        return parent.commitments.filter(status="held").count() >= parent.minimum

    def amount_expression(self, parent):
        return Value(parent.price) - (F("deposit_paid") - F("deposit_refunded"))

    def deposit_required(self, commitment):
        return commitment.drop.deposit

    def charged_become(self, parent, commitments) -> None:
        FakeCommitment.objects.filter(pk__in=[c.pk for c in commitments]).update(
            became=f"order for {parent.title}"
        )

    def on_finish(self, parent, *, succeeded: bool) -> tuple[str, str]:
        FakeDrop.objects.filter(pk=parent.pk).update(
            finished_with="success" if succeeded else "failure"
        )
        return f"{parent.title} is {'on' if succeeded else 'off'}", ""
