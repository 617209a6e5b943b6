"""Order totals: the line items, then the discount, then tax."""

from decimal import Decimal


def subtotal(items: list[tuple[Decimal, int]]) -> Decimal:
    return sum((price * quantity for price, quantity in items), Decimal(0))


def total(items: list[tuple[Decimal, int]], discount: Decimal, tax_rate: Decimal) -> Decimal:
    discounted = subtotal(items) - discount
    return (discounted * (1 + tax_rate)).quantize(Decimal("0.01"))
