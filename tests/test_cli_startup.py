"""Fast start: `--version` and `--help` import no command module; the root's table says what the modules say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bastion.cli
from bastion.cli import app
from bastion.cli.lazy import COMMANDS, load_module

HEAVY = ("pandas", "ccxt", "langgraph", "openai", "matplotlib", "sqlalchemy", "bastion.app")
PROBE = """
import sys
from bastion.cli import main
sys.argv = ["bastion", *{args!r}]
try:
    main()
except SystemExit:
    pass
print("LOADED", [m for m in {heavy!r} if m in sys.modules])
"""


@pytest.mark.parametrize("args", [["--version"], ["--help"], []])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True, text=True, timeout=60
    ).stdout
    assert "LOADED []" in out, out


CLI_DIR = Path(bastion.cli.__file__).parent


def command_modules() -> set[str]:
    """Every module of bastion/cli that adds commands to the root: each *_cmd.py and any other with a `register`
    function, less those another module registers into its own group (proposals_cmd into `engine`)."""
    texts = {p.stem: p.read_text(encoding="utf-8") for p in CLI_DIR.glob("*.py")}
    found = {m for m, text in texts.items() if m.endswith("_cmd") or "\ndef register(" in text}
    return {m for m in found if not any(f"{m}.register(" in text for other, text in texts.items() if other != m)}


def test_every_command_module_is_in_the_root_table() -> None:
    # A new bastion/cli/x_cmd.py missing from COMMANDS would register nothing the root can find.
    modules = command_modules()
    assert {"keys_cmd", "report_cmd", "market", "analyze"} <= modules
    assert modules == {m for m, _ in COMMANDS.values()}


def test_the_root_table_matches_what_each_module_registers() -> None:
    registered: dict[str, str] = {}
    for module in sorted(command_modules()):
        for name, command in load_module(module).commands.items():
            assert COMMANDS.get(name, ("", ""))[0] == module, f"{name} ({module}) is missing from COMMANDS"
            registered[name] = (command.help or "").strip().splitlines()[0]
    assert {name: help_ for name, (_, help_) in COMMANDS.items()} == registered


def test_a_lazily_loaded_command_runs_and_shows_its_own_help() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["--help"])
    assert listed.exit_code == 0 and all(name in listed.output for name in COMMANDS)
    helped = runner.invoke(app, ["candles", "--help"])
    assert helped.exit_code == 0 and "--tf" in helped.output and "--json" in helped.output
    sub = runner.invoke(app, ["engine", "--help"])
    assert sub.exit_code == 0 and "proposals" in sub.output
    unknown = runner.invoke(app, ["nope"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output
