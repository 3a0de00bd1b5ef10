"""Optional premium data providers, used only when their API keys are set: CoinGlass (derivatives) and Whale Alert
(on-chain transfers). They implement the alert rules' `LiquidationFeed` / `WhaleFeed` (engine/alerts/feeds.py)."""

from tools.market.providers.coinglass import CoinGlassClient
from tools.market.providers.http import ProviderAuthError, ProviderError, ProviderRateLimited
from tools.market.providers.premium import PremiumData, premium_from_settings
from tools.market.providers.whale_alert import WhaleAlertClient, WhaleTransfer
from tools.market.providers.whales import WhaleFlows, flows_of, lean_of, onchain_inputs

__all__ = [
    "CoinGlassClient",
    "PremiumData",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimited",
    "WhaleAlertClient",
    "WhaleFlows",
    "WhaleTransfer",
    "flows_of",
    "lean_of",
    "onchain_inputs",
    "premium_from_settings",
]
