"""Symbol normalisation: every common spelling reaches the unified perp symbol; unknowns suggest matches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.market.base import UnknownSymbolError
from tools.market.symbols import close_matches, normalise_symbol, parse_symbol, resolve_symbol

KNOWN = ["BTC/USDT:USDT", "BTC/USDT:USDT-250328", "ETH/USDT:USDT", "SOL/USDT:USDT", "ABC/USDT", "ETH/USDC:USDC"]


@pytest.mark.parametrize(
    ("text", "unified"),
    [
        ("btc", "BTC/USDT:USDT"),
        ("BTC", "BTC/USDT:USDT"),
        ("BTCUSDT", "BTC/USDT:USDT"),
        ("BTC/USDT", "BTC/USDT:USDT"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT"),
        (" btc_usdt ", "BTC/USDT:USDT"),
        ("BTC-USDT-SWAP", "BTC/USDT:USDT"),
        ("BTCUSDT.P", "BTC/USDT:USDT"),
        ("ETHUSDC", "ETH/USDC:USDC"),
        ("1000PEPEUSDT", "1000PEPE/USDT:USDT"),
    ],
)
def test_spellings_normalise(text: str, unified: str) -> None:
    assert normalise_symbol(text) == unified


@pytest.mark.parametrize("text", ["btc", "BTCUSDT", "BTC/USDT", "BTC/USDT:USDT"])
def test_resolve_prefers_the_perp_over_dated_futures(text: str) -> None:
    assert resolve_symbol(text, KNOWN) == "BTC/USDT:USDT"


def test_resolve_falls_back_to_spot_when_no_perp() -> None:
    assert resolve_symbol("abc", KNOWN) == "ABC/USDT"


def test_unknown_symbol_suggests_close_matches() -> None:
    with pytest.raises(UnknownSymbolError) as info:
        resolve_symbol("ETC", KNOWN)
    assert info.value.suggestions[0] == "ETH/USDT:USDT"
    assert "ETH/USDT:USDT" in info.value.user_message and "'ETC'" in info.value.user_message


@pytest.mark.parametrize("text", ["ZZZQQQ", "Q@Q"])
def test_unknown_symbol_without_a_close_match_names_the_available_listing(text: str) -> None:
    with pytest.raises(UnknownSymbolError) as info:
        resolve_symbol(text, KNOWN, available=["BTC", "ETH"])
    assert info.value.suggestions == [] and info.value.user_message.endswith("; available: BTC, ETH.")
    with pytest.raises(UnknownSymbolError, match=r"'ZZZQQQ'\.$"):
        resolve_symbol("ZZZQQQ", KNOWN)


@pytest.mark.parametrize("text", ["", "  ", "B$C", "A/B/C/D"])
def test_malformed_symbols_raise(text: str) -> None:
    with pytest.raises(UnknownSymbolError):
        parse_symbol(text)


def test_close_matches_are_perps_not_futures() -> None:
    assert close_matches("BTCC", KNOWN)[0] == "BTC/USDT:USDT"


_QUOTES = ("USDT", "USDC", "USD", "BUSD", "FDUSD")


@given(st.from_regex(r"[A-Z][A-Z0-9]{1,7}", fullmatch=True).filter(lambda b: not b.endswith(_QUOTES)))
def test_all_spellings_of_any_base_agree(base: str) -> None:
    spellings = [base, base.lower(), f"{base}USDT", f"{base}/USDT", f"{base}/USDT:USDT", f"{base}-USDT-SWAP"]
    assert {normalise_symbol(s) for s in spellings} == {f"{base}/USDT:USDT"}
