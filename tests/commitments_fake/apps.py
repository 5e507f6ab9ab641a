from django.apps import AppConfig


class CommitmentsFakeConfig(AppConfig):
    """A tests-only feature on the commitments engine (tests/test_commitments_contract.py)."""

    name = "tests.commitments_fake"
    label = "commitments_fake"

    def ready(self) -> None:
        from payments.commitments.book import commitment_book_register
        from tests.commitments_fake.book import FakeBook

        commitment_book_register(FakeBook())
