"""The smallest feature on the commitments engine: a drop that people commit a fixed amount
to, settled at its close when enough committed. Tests only (no migrations: the test
database creates the tables)."""

from decimal import Decimal

from django.db import models

from payments.commitments.machine import StateMachine
from payments.commitments.models import (
    COMMITMENT_TRANSITIONS,
    PARENT_TRANSITIONS,
    CommitmentFields,
    ParentStatus,
    StateEvent,
    commitment_constraints,
)


class FakeDrop(models.Model):
    title = models.CharField(max_length=100)
    status = models.CharField(
        max_length=20, choices=ParentStatus.choices, default=ParentStatus.OPEN
    )
    closes_at = models.DateTimeField()
    minimum = models.PositiveIntegerField(default=2)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("10.00"))
    deposit = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="USD")
    closed_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    finished_with = models.CharField(max_length=20, blank=True)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return f"/fake/{self.pk}/"


class FakeCommitment(CommitmentFields):
    drop = models.ForeignKey(FakeDrop, on_delete=models.CASCADE, related_name="commitments")
    became = models.CharField(max_length=40, blank=True)  # what charging made of it

    class Meta:
        constraints = commitment_constraints("commitments_fake")

    def get_absolute_url(self) -> str:
        return f"/fake/commitments/{self.pk}/"


class FakeEvent(StateEvent):
    drop = models.ForeignKey(FakeDrop, on_delete=models.CASCADE, related_name="events")
    commitment = models.ForeignKey(
        FakeCommitment, on_delete=models.CASCADE, null=True, related_name="events"
    )


DROP_MACHINE = StateMachine(
    model=FakeDrop,
    transitions=PARENT_TRANSITIONS,
    event_model=FakeEvent,
    event_for=lambda drop: {"drop": drop},
    noun="drop",
)
COMMITMENT_MACHINE = StateMachine(
    model=FakeCommitment,
    transitions=COMMITMENT_TRANSITIONS,
    event_model=FakeEvent,
    event_for=lambda c: {"drop_id": c.drop_id, "commitment": c},
    noun="commitment",
)
