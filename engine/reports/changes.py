"""What changed since the previous report: bias, confidence, price, levels, the POC and the plans."""

from __future__ import annotations

from engine.reports.body import KeyLevel, ReportBody
from tools.structure.render import fmt_price

SAME_LEVEL_ATR = 0.25  # two levels this close (in ATRs of the newer report) are the same level


def _match(lv: KeyLevel, others: list[KeyLevel], tol: float) -> KeyLevel | None:
    near = [o for o in others if o.role == lv.role and abs(o.price - lv.price) <= tol]
    return min(near, key=lambda o: abs(o.price - lv.price)) if near else None


def changes_since(prev: ReportBody, cur: ReportBody) -> list[str]:
    """Readable lines describing the differences; an unchanged report says so."""
    out: list[str] = []
    if prev.price > 0:
        move = 100 * (cur.price / prev.price - 1)
        out.append(f"Price {fmt_price(prev.price)} -> {fmt_price(cur.price)} ({move:+.2f}%)")
    if prev.bias != cur.bias:
        out.append(f"Bias {prev.bias} -> {cur.bias}")
    else:
        out.append(f"Bias unchanged ({cur.bias})")
    if round(100 * prev.confidence) != round(100 * cur.confidence):
        out.append(f"Confidence {100 * prev.confidence:.0f}% -> {100 * cur.confidence:.0f}%")
    tol = SAME_LEVEL_ATR * cur.atr
    for lv in cur.levels:
        old = _match(lv, prev.levels, tol)
        if old is None:
            out.append(f"New {lv.role} {fmt_price(lv.price)} (grade {lv.grade}, {lv.touches} touches)")
        elif old.grade != lv.grade:
            out.append(f"{lv.role.capitalize()} {fmt_price(lv.price)} grade {old.grade} -> {lv.grade}")
    for old in prev.levels:
        if _match(old, cur.levels, tol) is None:
            out.append(f"{old.role.capitalize()} {fmt_price(old.price)} no longer among the key levels")
    if abs(prev.profile.poc - cur.profile.poc) > tol:
        out.append(f"POC {fmt_price(prev.profile.poc)} -> {fmt_price(cur.profile.poc)}")
    before = {s.side: s.rejected for s in prev.scenarios}
    for s in cur.scenarios:
        if s.side in before and before[s.side] != s.rejected:
            out.append(f"The {s.side} plan is {'now rejected' if s.rejected else 'valid again'}")
    return out
