"""One state-machine helper for every stateful thing that sells: orders and their parts,
pre-order batches and reservations, campaigns and pledges.

A `StateMachine` is declared once per model, next to it: the transition table (from ->
allowed to), the event model its moves are logged in (who, when, from, to, note), and the
operator actions (a button label, the target state, the states it applies to). Then:

- `machine.check(obj, to)` raises TransitionError (a ValidationError, so the admin and the
  views show its message) when the move is not in the table;
- `machine.transition(obj, to=..., actor=..., note=...)` locks the row (unless the caller
  says it holds the lock), re-reads its state, checks, writes the event row and saves;
- `machine.note(obj, ...)` logs an event without a move (a change of quantity, a refund);
- `machine.allowed_actions(obj)` is what the admin's buttons read: the actions whose
  target the table allows from the object's state now, never a second copy of the rules.

The table is the only statement of the rules: services call `transition`, the admin shows
`allowed_actions`, and both agree by construction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import models, transaction


class TransitionError(ValidationError):
    """A move the state machine does not allow; the message says which and why."""


@dataclass(frozen=True)
class Action:
    """An operator's action on an object (an admin button): its name in URLs, its label,
    and the state it moves the object to. `sources` narrows it further (an action whose
    target several states allow, but which the feature offers from fewer)."""

    name: str
    label: str
    to: str | tuple[str, ...]  # several: the first the table allows (cancel: -> cancelled
    sources: frozenset[str] | None = None  # from a draft, -> cancelling from an open one)

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.to,) if isinstance(self.to, str) else tuple(self.to)

    def target(self, machine: StateMachine, status: str) -> str | None:
        if self.sources is not None and status not in self.sources:
            return None
        return next((to for to in self.targets if machine.allows(status, to)), None)

    def applies(self, machine: StateMachine, status: str) -> bool:
        return self.target(machine, status) is not None


def _default_refusal(machine: StateMachine, obj: models.Model, to: str) -> str:
    return (
        f"A {machine.noun} that is {machine.label(machine.status_of(obj)).lower()} cannot "
        f"become {machine.label(to).lower()}."
    )


@dataclass
class StateMachine:
    """The states of one model and how it moves between them (see the module docstring).

    `event_for(obj)` gives the event row's foreign keys for `obj`, e.g. for a reservation
    {"batch_id": r.batch_id, "reservation": r}. `labels` maps states to their display names
    (the field's choices by default)."""

    model: type[models.Model]
    transitions: Mapping[str, Iterable[str]]
    event_model: type[models.Model]
    event_for: Callable[[models.Model], dict]
    noun: str = ""
    actions: tuple[Action, ...] = ()
    status_field: str = "status"
    labels: Mapping[str, str] = field(default_factory=dict)
    refusal: Callable[[StateMachine, models.Model, str], str] = _default_refusal

    def __post_init__(self) -> None:
        self.transitions = {
            str(state): frozenset(str(to) for to in targets)
            for state, targets in self.transitions.items()
        }
        choices = dict(self.model._meta.get_field(self.status_field).choices or ())
        self.labels = {**{str(k): str(v) for k, v in choices.items()}, **self.labels}
        self.noun = self.noun or str(self.model._meta.verbose_name)
        unknown = {
            to for targets in self.transitions.values() for to in targets
        } - self.transitions.keys()
        if unknown:
            raise ValueError(f"{self.noun}: states {sorted(unknown)} have no row in the table")
        for action in self.actions:
            if set(action.targets) - self.transitions.keys():
                raise ValueError(f"{self.noun}: action {action.name!r} targets an unknown state")
        self._fields = {f.name for f in self.model._meta.concrete_fields}

    # --- reading the table

    def label(self, status: str) -> str:
        return self.labels.get(str(status), str(status))

    def status_of(self, obj: models.Model) -> str:
        return getattr(obj, self.status_field)

    def allows(self, status: str, to: str) -> bool:
        return str(to) in self.transitions.get(str(status), ())

    def can(self, obj: models.Model, to: str) -> bool:
        return self.allows(self.status_of(obj), to)

    def check(self, obj: models.Model, to: str) -> None:
        if not self.can(obj, to):
            raise TransitionError(self.refusal(self, obj, to))

    def allowed_actions(self, obj: models.Model) -> list[Action]:
        """The operator actions open from the object's state now (the admin's buttons)."""
        status = self.status_of(obj)
        return [action for action in self.actions if action.applies(self, status)]

    def action(self, name: str) -> Action:
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(name)

    # --- moving

    def event(self, obj: models.Model, *, from_status: str, to: str, actor=None, note: str = ""):
        """An unsaved event row (for bulk_create by the settlement's set-based passes)."""
        return self.event_model(
            **self.event_for(obj),
            actor=actor,
            from_status=from_status,
            to_status=to,
            note=(note or "")[:300],
        )

    def transition(
        self,
        obj: models.Model,
        *,
        to: str,
        actor=None,
        note: str = "",
        locked: bool = True,
        fields: Iterable[str] = (),
    ) -> models.Model:
        """Move `obj` to `to`: checked against the table, logged, saved (with `fields`,
        other columns the caller changed alongside). A caller that does not hold the row
        lock passes locked=False: the row is locked here and its state re-read first."""
        if locked:
            # The caller holds the lock (the usual case): a refused move raises before any
            # query, and the writes join the caller's transaction (no savepoint round trips).
            self.check(obj, to)
            with transaction.atomic(savepoint=False):
                self._write(obj, to=to, actor=actor, note=note, fields=fields)
            return obj
        with transaction.atomic():
            current = (
                self.model.objects.select_for_update()
                .filter(pk=obj.pk)
                .values_list(self.status_field, flat=True)
                .get()
            )
            setattr(obj, self.status_field, current)
            self.check(obj, to)
            self._write(obj, to=to, actor=actor, note=note, fields=fields)
        return obj

    def _write(self, obj, *, to: str, actor, note: str, fields: Iterable[str]) -> None:
        before = self.status_of(obj)
        self.event(obj, from_status=before, to=to, actor=actor, note=note).save()
        setattr(obj, self.status_field, to)
        update = [self.status_field, *fields]
        if "updated_at" in self._fields:
            update.append("updated_at")
        obj.save(update_fields=list(dict.fromkeys(update)))

    def note(self, obj: models.Model, *, note: str, actor=None) -> models.Model:
        """An event row without a move (a changed quantity, a refund): from = to = now."""
        status = self.status_of(obj)
        return self.event_model.objects.create(
            **self.event_for(obj),
            actor=actor,
            from_status=status,
            to_status=status,
            note=note[:300],
        )
