"""Alerts (SPEC §6): position alerts the monitor raises, market alerts, and the users' own structured rules."""

from engine.alerts.models import SEVERITY_RANK, Alert, AlertType, ProposedAction, Severity
from engine.alerts.position import FUNDING_IMPACT_RATE, R_BREACH, STOP_NEAR_PCT, position_alerts

__all__ = [
    "FUNDING_IMPACT_RATE",
    "R_BREACH",
    "SEVERITY_RANK",
    "STOP_NEAR_PCT",
    "Alert",
    "AlertType",
    "ProposedAction",
    "Severity",
    "position_alerts",
]
