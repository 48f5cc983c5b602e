"""Documents of lines and tables: plain columns in logs, rich's framing on a terminal, same cells."""

from __future__ import annotations

import io

import pytest

from hepbench.core.terminal import Styled, Table, emit, plain_text, table_lines


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_columns_are_padded_aligned_and_two_spaces_apart():
    t = Table(("name", "n", "rate"), [("a", "1", "0.25"), ("longer", "100", "12.5")], left=1, indent=2)
    assert table_lines(t) == ["  name      n  rate", "  a         1  0.25", "  longer  100  12.5"]


def test_a_grid_without_header_and_a_one_space_gap():
    t = Table(("", ""), [("data set", "/x"), ("element types", "tower 3  track 4")], left=2, header=False, gap=1)
    assert table_lines(t) == ["data set      /x", "element types tower 3  track 4"]


def test_cells_are_text_not_markup_and_long_rows_are_never_wrapped():
    cell = "[rank 1] [bold]not bold[/bold] " + "x" * 300
    lines = table_lines(Table(("log",), [(cell,)], left=1))
    assert lines == ["log", cell]


def test_each_column_may_be_justified():
    t = Table(
        ("ranks", "rate", "status"), [("1", "2.5", "ok"), ("16", "40.25", "FAILED")], justify=("right", "right", "left")
    )
    assert table_lines(t) == ["ranks   rate  status", "    1    2.5  ok", "   16  40.25  FAILED"]
    with pytest.raises(ValueError, match="justify must name 'left' or 'right' for each of 3 columns"):
        Table(("a", "b", "c"), [], justify=("left", "middle", "left"))


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        Table(("a", "b"), [("1", "2"), ("3",)])


def test_emit_writes_plain_text_when_not_on_a_terminal():
    doc = ["title", Table(("a", "b"), [("1", "2")]), "end"]
    out = io.StringIO()
    emit(doc, out)
    assert out.getvalue() == plain_text(doc) + "\n" == "title\na  b\n1  2\nend\n"


def test_emit_frames_the_table_on_a_terminal_with_the_same_cells():
    out = FakeTerminal()
    emit(["title", Table(("name", "rate"), [("copy 0", "0.2601")], indent=2)], out)
    text = out.getvalue()
    assert "\x1b[" in text  # styled (the bold header)
    assert "─" in text  # the rule under the header
    for cell in ("title", "name", "rate", "copy 0", "0.2601"):
        assert cell in text


def test_a_styled_line_is_coloured_on_a_terminal_and_plain_elsewhere():
    doc = [Styled("NOT LIKE FOR LIKE: x", "bold red")]
    assert plain_text(doc) == "NOT LIKE FOR LIKE: x"
    out = FakeTerminal()
    emit(doc, out)
    assert "NOT LIKE FOR LIKE: x" in out.getvalue() and "\x1b[1;31m" in out.getvalue()
