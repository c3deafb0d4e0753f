"""Text tables, rendered in one place: a markdown pipe table (the report, the benchmark's
README tables) and an aligned plain-text table (the runner's summary on the terminal).

Cells arrive as strings, already formatted and escaped by the caller; `align` holds one
letter per column, 'l' or 'r'.
"""
from __future__ import annotations

import math
import re

# What a line of the PDF holds: nbconvert's LaTeX template sets a 6.5-inch (468 pt) text
# block at 11 pt, where a digit is 5.5 pt wide, and pandoc puts 12 pt between columns.
PDF_LINE_PT, PDF_GAP_PT, PDF_CHAR_PT = 468, 12, 5.5
SHORT_CELL = 7       # a cell this short ("3 seeds") stays on one line


def _checked(header, rows, align) -> tuple[list[str], list[list[str]], str]:
    header = [str(h) for h in header]
    rows = [[str(c) for c in r] for r in rows]
    align = align or "l" * len(header)
    bad = [i for i, r in enumerate(rows) if len(r) != len(header)]
    if bad or len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"table: {len(header)} columns in the header, align={align!r}, "
                         f"rows {bad} of another length")
    return header, rows, align


def _cell(text: str, width: int, align: str) -> str:
    return text.rjust(width) if align == "r" else text.ljust(width)


def pipe_table(header, rows, align: str | None = None, dashes=None) -> str:
    """A markdown pipe table. A right-aligned column's rule ends in ':'. `dashes` sets each
    column's dash count, which pandoc reads as relative column widths when a table is
    wider than the page; by default it is the column's widest cell."""
    header, rows, align = _checked(header, rows, align)
    widest = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]
    dashes = list(dashes) if dashes is not None else widest
    pads = [max(d, len(h)) for d, h in zip(dashes, header)]
    rule = [("-" * d if a == "l" else "-" * (d - 1) + ":").ljust(p)
            for d, a, p in zip(dashes, align, pads)]

    def line(cells):
        return "| " + " | ".join(_cell(c, p, a) for c, p, a in zip(cells, pads, align)) + " |"
    return "\n".join([line(header), "| " + " | ".join(rule) + " |"] + [line(r) for r in rows])


def _unbreakable(text: str, at_hyphens: bool) -> int:
    """The narrowest a wrapped cell can be: the cell if short, else its widest word (words
    break at spaces, and after hyphens if at_hyphens; a `code` word never breaks, and no
    word is ever hyphenated inside)."""
    if len(text) <= SHORT_CELL:
        return len(text)
    pieces = (lambda w: re.findall(r"[^-]*-|[^-]+", w)) if at_hyphens else (lambda w: [w])
    return max([len(w) if w.startswith("`") else max(map(len, pieces(w)))
                for w in text.split()] or [0])


def pdf_dashes(header, rows, cap: int = 30, labels: tuple = (0,)) -> list[int]:
    """Dash counts for pipe_table that make the PDF's columns fit its line. A `labels`
    column (by index; the first by default) gets its longest label, so a row's name is
    never broken; every other column gets its widest word, so no number or word is split
    or runs into the next column, and if that overfills the line, words with hyphens
    break after one. What is left of the line goes to the columns that wrap, towards
    their widest cell (at most `cap`)."""
    header, rows, _ = _checked(header, rows, None)
    cols = [[header[i]] + [r[i] for r in rows] for i in range(len(header))]
    line = (PDF_LINE_PT - PDF_GAP_PT * (len(header) - 1)) / PDF_CHAR_PT
    need = [max([_unbreakable(col[0], False)] + [len(c) for c in col[1:]]) if i in labels
            else max(_unbreakable(c, False) for c in col) for i, col in enumerate(cols)]
    floor = [n if i in labels else max(_unbreakable(c, True) for c in col)
             for i, (n, col) in enumerate(zip(need, cols))]
    over, give = sum(need) - line, sum(need) - sum(floor)
    if over > 0 and give:
        need = [n - min(n - f, math.ceil(over * (n - f) / give)) for n, f in zip(need, floor)]
    want = [max([n] + [min(cap, len(c)) for c in col[1:]]) for n, col in zip(need, cols)]
    slack, extra = line - sum(need), sum(want) - sum(need)
    share = min(1.0, slack / extra) if slack > 0 and extra else 0.0
    return [max(3, n + int(share * (w - n))) for n, w in zip(need, want)]


def plain_table(header, rows, align: str | None = None) -> str:
    """Columns two spaces apart, padded to their widest cell, with a rule under the
    header: for a terminal."""
    header, rows, align = _checked(header, rows, align)
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]
    lines = ["  ".join(_cell(c, w, a) for c, w, a in zip(r, widths, align)).rstrip()
             for r in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
