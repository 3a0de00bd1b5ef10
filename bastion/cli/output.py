"""Printing read commands' results: tables that never cut a number, or JSON with `--json`.

Rich shrinks a table that does not fit the console and ends cells with "…", which turns "129,065.40" into
"129,065.…". Piped output has no width to respect, so it gets the table's natural width; on a narrow terminal
optional columns are dropped (and named in the caption) before any cell would be cut.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

# The `--json` switch of every read command: one JSON document on stdout instead of the table or text.
JSON_OPTION: Any = typer.Option(False, "--json", help="Print JSON instead of a table.")


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header, right-aligned (numbers) or not, and whether it may be dropped to fit."""

    header: str
    numeric: bool = True
    optional: bool = False


def build_table(
    title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]], caption: str | None
) -> Table:
    """A Rich table whose cells never wrap."""
    table = Table(title=title, caption=caption)
    for c in columns:
        table.add_column(c.header, justify="right" if c.numeric else "left", no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*row)
    return table


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Print rows whole: at natural width when piped; dropping optional columns on a terminal too narrow."""
    keep = list(range(len(columns)))
    table = build_table(title, columns, rows, caption)
    if not console.is_terminal:
        # Nobody reads a pipe's width: render as wide as the table needs, cut nothing.
        wide = Console(file=console.file, width=natural_width(table), soft_wrap=False, force_terminal=False,
                       color_system=None, highlight=False)  # fmt: skip
        wide.print(table)
        return
    dropped: list[str] = []
    for index in reversed(range(len(columns))):
        if natural_width(table) <= console.width:
            break
        if columns[index].optional:
            keep.remove(index)
            dropped.append(columns[index].header)
            note = f"not shown at this width: {', '.join(reversed(dropped))}"
            table = build_table(
                title,
                [columns[i] for i in keep],
                [[row[i] for i in keep] for row in rows],
                f"{caption} · {note}" if caption else note,
            )
    console.print(table)


def natural_width(table: Table) -> int:
    """The width the table takes when nothing limits it (a console's own measure stops at its width)."""
    return max(Console(width=100_000).measure(table).maximum, 20)


def print_json(console: Console, value: Any) -> None:
    """JSON on stdout (no colours when piped), numbers as numbers."""
    text = json.dumps(value, default=str, ensure_ascii=False, indent=2)
    if console.is_terminal:
        console.print_json(text)
    else:
        console.file.write(text + "\n")


def print_markdown(console: Console, text: str) -> None:
    """Markdown rendered on a terminal; the Markdown itself when piped (Rich crops list items at its width, which
    would cut "T2 137,214 (7.0R)" to "T2 137,214 (7")."""
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        console.file.write(text.rstrip("\n") + "\n")
