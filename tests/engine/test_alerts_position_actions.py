"""Critical position alerts offer protective actions (shown sizes) that become approvals; the others offer none."""

from __future__ import annotations

from engine.alerts import position_alerts
from engine.risk.evaluate import evaluate
from tests.engine.test_alerts import ctx


def test_critical_position_alerts_carry_their_actions_with_absolute_sizes() -> None:
    breach = ctx(97.0, stop=None, initial_stop=98.5, size=4.0)  # -2R with the stop gone
    (alert,) = [a for a in position_alerts(breach, evaluate(breach), account_id=3) if a.key.endswith("r_breach")]
    assert alert.severity == "critical"
    assert alert.position == {"account_id": 3, "symbol": "BTC/USDT:USDT", "side": "long", "size": "4.0"}
    assert [(a.label, a.action, a.close_pct) for a in alert.actions] == [
        ("Exit 100%", "EXIT_FULL", 100.0),
        ("Reduce 50%", "REDUCE_SIZE", 50.0),
    ]
    assert alert.actions[1].summary == "REDUCE 50%: close 2 of 4 BTC (long)"
    emergency = ctx(98.0)
    (alert,) = [a for a in position_alerts(emergency, evaluate(emergency), 1) if a.key.endswith("emergency")]
    assert [a.action for a in alert.actions] == ["EXIT_FULL"]
    # Warnings and infos carry no buttons: only a critical condition is worth acting on from the alert.
    near = ctx(99.9)
    assert all(not a.actions for a in position_alerts(near, evaluate(near), 1) if a.severity != "critical")
