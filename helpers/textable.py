"""Text tables, rendered in one place: a markdown pipe table (the report, the benchmark's
README tables) and an aligned plain-text table (the runner's summary on the terminal).

Cells arrive as strings, already formatted and escaped by the caller; `align` holds one
letter per column, 'l' or 'r'.
"""
from __future__ import annotations


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


def plain_table(header, rows, align: str | None = None) -> str:
    """Columns two spaces apart, padded to their widest cell, with a rule under the
    header: for a terminal."""
    header, rows, align = _checked(header, rows, align)
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]
    lines = ["  ".join(_cell(c, w, a) for c, w, a in zip(r, widths, align)).rstrip()
             for r in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
