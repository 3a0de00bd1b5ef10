"""Market-structure reports for subscribers (SPEC section 7): a deterministic body from data, an optional
grounded narrative, the chart, the changes since the previous report, and their delivery schedules."""

from engine.reports.body import ReportBody
from engine.reports.build import BuiltReport, ReportBuilder
from engine.reports.schedule import Schedule, ScheduleError

__all__ = ["BuiltReport", "ReportBody", "ReportBuilder", "Schedule", "ScheduleError"]
