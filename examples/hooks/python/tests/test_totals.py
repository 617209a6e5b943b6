from decimal import Decimal

from app.totals import subtotal, total


def test_subtotal() -> None:
    assert subtotal([(Decimal("2.50"), 2), (Decimal("1.00"), 1)]) == Decimal("6.00")


def test_total_applies_discount_then_tax() -> None:
    assert total([(Decimal("10.00"), 1)], Decimal("2.00"), Decimal("0.25")) == Decimal("10.00")
