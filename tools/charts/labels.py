"""Placing price labels in a column so none overlaps another: pure arithmetic on y positions, no drawing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PriceLabel:
    """A label that belongs at `price`; `priority` decides which labels survive when the column is full."""

    price: float
    text: str
    color: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Placed:
    """A label and the y (in price units) where its text is drawn; `moved` when it left its own price."""

    label: PriceLabel
    y: float

    @property
    def moved(self) -> bool:
        """Whether the text sits away from its price (a leader line then joins them)."""
        return abs(self.y - self.label.price) > 1e-12


def place_labels(labels: list[PriceLabel], lo: float, hi: float, gap: float) -> list[Placed]:
    """Labels within [lo, hi], each at least `gap` apart, as close to their own price as the others allow.

    When more labels want the column than fit (`(hi - lo) / gap`), the lowest-priority ones are left out rather
    than drawn on top of each other. Order along the axis is kept: a label never jumps over another.
    """
    if gap <= 0 or hi <= lo:
        return []
    inside = [lb for lb in labels if lo <= lb.price <= hi]
    room = int((hi - lo) / gap + 1e-9) + 1
    if len(inside) > room:
        keep = sorted(inside, key=lambda lb: (-lb.priority, lb.price))[:room]
        inside = [lb for lb in inside if lb in keep]
    inside.sort(key=lambda lb: lb.price)
    ys = [min(max(lb.price, lo), hi) for lb in inside]
    # Push upwards from the bottom, then downwards from the top: two passes keep the order, keep every label in
    # the column (there is room: the count was cut to fit) and move each only as far as its neighbours demand.
    up = list(ys)
    for i in range(len(up)):
        floor = lo if i == 0 else up[i - 1] + gap
        up[i] = max(up[i], floor)
    down = list(up)
    for i in range(len(down) - 1, -1, -1):
        ceiling = hi if i == len(down) - 1 else down[i + 1] - gap
        down[i] = min(down[i], ceiling)
    # The clamp only absorbs float rounding of the passes (a label at lo - 1e-14).
    return [Placed(lb, min(max(y, lo), hi)) for lb, y in zip(inside, down, strict=True)]
