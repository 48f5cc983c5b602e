"""Text documents (lines and tables) through rich: framed and styled on a terminal, plain in logs.

A command builds a document, a list of plain lines (str, or `Styled` for a line in colour) and
`Table`s, and hands it to `emit`. On a terminal rich draws the tables with a rule under the header
and a bold header row, sized to the window; anywhere else (a log, a pipe, a file, `--quiet` runs)
`plain_text` writes the same cells in columns padded to width and separated by spaces (two unless
the table says otherwise), with no framing, no colour and no wrapping, so the text is stable to
read and to grep. The plain form is what tests compare.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.padding import Padding
from rich.table import Table as RichTable
from rich.text import Text


@dataclass
class Table:
    """Rows of cells under a header; the first `left` columns are left-aligned, the rest (numbers)
    right-aligned, unless `justify` gives every column's ("left" or "right"). `indent` spaces go
    before every line."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    left: int = 1
    indent: int = 0
    header: bool = True  # False: a grid of label/value rows without a header line
    gap: int = 2  # spaces between columns in plain text
    styles: dict[int, str] = field(default_factory=dict)  # column -> rich style, on a terminal only
    justify: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.headers):
                raise ValueError(f"table row {i} has {len(row)} cells, the header {len(self.headers)}")
        if self.justify is not None and (
            len(self.justify) != len(self.headers) or not set(self.justify) <= {"left", "right"}
        ):
            raise ValueError(
                f"table justify must name 'left' or 'right' for each of {len(self.headers)} columns, "
                f"not {list(self.justify)}"
            )

    def column_justify(self, i: int) -> str:
        return self.justify[i] if self.justify is not None else ("left" if i < self.left else "right")


@dataclass
class Styled:
    """A line drawn in a rich style on a terminal (e.g. "bold red" for a warning), plain elsewhere."""

    text: str
    style: str


Document = Sequence[str | Styled | Table]


def _rich_table(t: Table, terminal: bool) -> RichTable:
    # Cells are Text, never markup: report values may hold brackets ("[rank 1] ...").
    table = RichTable(
        box=box.SIMPLE_HEAD if terminal and t.header else None,
        show_header=t.header,
        header_style="bold" if terminal else "",
        show_edge=False,
        pad_edge=False,
        padding=(0, t.gap, 0, 0),
        expand=False,
    )
    for i, head in enumerate(t.headers):
        table.add_column(
            Text(head),
            justify=t.column_justify(i),  # type: ignore[arg-type]
            style=t.styles.get(i, "") if terminal else "",
            no_wrap=not terminal,
        )
    for row in t.rows:
        table.add_row(*(Text(str(c)) for c in row))
    return table


def _natural_width(t: Table) -> int:
    columns = [[h] + [str(r[i]) for r in t.rows] for i, h in enumerate(t.headers)] if t.headers else []
    return t.indent + sum(max(cell_len(c) for c in col) for col in columns) + t.gap * max(len(columns) - 1, 0)


def table_lines(t: Table) -> list[str]:
    """The table as plain lines: columns padded to width, `gap` spaces apart, no trailing spaces."""
    buffer = io.StringIO()
    # Wide enough that rich never wraps or shrinks a column (logs are read whole, not in a window).
    console = Console(
        file=buffer,
        width=_natural_width(t) + 8,
        color_system=None,
        force_terminal=False,
        no_color=True,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    console.print(Padding(_rich_table(t, terminal=False), (0, 0, 0, t.indent), expand=False))
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def plain_text(doc: Document) -> str:
    """The document as plain text (no final newline)."""
    lines: list[str] = []
    for part in doc:
        lines.extend(
            table_lines(part) if isinstance(part, Table) else [part.text if isinstance(part, Styled) else part]
        )
    return "\n".join(lines)


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def emit(doc: Document, stream: TextIO | None = None) -> None:
    """Write the document to `stream` (default stdout): through rich on a terminal, else plain_text."""
    stream = stream or sys.stdout
    if not is_terminal(stream):
        stream.write(plain_text(doc) + "\n")
        stream.flush()
        return
    console = Console(file=stream, force_terminal=True, highlight=False, emoji=False)
    for part in doc:
        if isinstance(part, Table):
            console.print(Padding(_rich_table(part, terminal=True), (0, 0, 0, part.indent), expand=False))
        else:
            # soft_wrap: the terminal folds a long line; rich inserts no newlines into it.
            text = Text(part.text, style=part.style) if isinstance(part, Styled) else Text(part)
            console.print(text, soft_wrap=True)
