"""The daily elite scan (SPEC section 7): setups over a watchlist, qualified, ranked, the top 5 kept."""

from engine.scan.qualify import QualifyRules, Setup
from engine.scan.scan import ScanResult, run_scan

__all__ = ["QualifyRules", "ScanResult", "Setup", "run_scan"]
