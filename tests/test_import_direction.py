"""DESIGN §1's import direction, checked on every product module: `bastion → bot → agents → engine → tools →
storage`, `inference` usable by agents and engine (and above), `backtest`/`training` above engine, tools and
inference, and nothing at run time importing them. Type-only imports count too: they are still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each package and the packages it may import (besides itself and third-party code).
ALLOWED: dict[str, set[str]] = {
    "storage": set(),
    "tools": {"storage"},
    "inference": {"storage"},  # storage.retry, the one retry policy
    "engine": {"tools", "storage", "inference"},
    "agents": {"engine", "tools", "storage", "inference"},
    "bot": {"agents", "engine", "tools", "storage", "inference"},
    "bastion": {"bot", "agents", "engine", "tools", "storage", "inference", "backtest", "training"},
    "backtest": {"engine", "tools", "storage", "inference"},
    "training": {"backtest", "engine", "tools", "storage", "inference"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every module `path` imports (absolute imports only: the project uses no relative ones)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def product_modules() -> list[Path]:
    return sorted(p for pkg in ALLOWED for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


def test_every_package_is_checked() -> None:
    assert {p.parts[len(ROOT.parts)] for p in product_modules()} <= set(ALLOWED)
    assert len(product_modules()) > 100


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_imports_a_package_above_it(package: str) -> None:
    wrong = []
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for name in imported_packages(path) & (set(ALLOWED) - {package}):
            if name not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []
