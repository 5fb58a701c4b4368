"""The report as blocks (headings, tables, plots) written out as HTML, Markdown and CSV.

The HTML is one self-contained file: plotly's JS is embedded once, nothing loads from a CDN.
Every name and value is the user's (or a program's) text, so each output escapes it for its
own format and drops control characters: a value never becomes markup, a link or a formula.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.output import one_line, write_csv


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Table:
    title: str
    shown: pd.DataFrame
    """Formatted cells (strings), what HTML and Markdown show."""
    data: pd.DataFrame
    """The numbers, written to `csv`."""
    csv: str
    best: set[tuple[int, str]] = field(default_factory=set)
    """(row position, column) cells marked best."""
    marked_rows: set[int] = field(default_factory=set)
    """Rows to flag (runs that failed or are still running)."""
    note: str = ""


@dataclass
class Plot:
    title: str
    png: str
    save: Callable[[Path], None]
    """Draws the static PNG at the given path."""
    figure: Any = None
    """A plotly figure for the HTML (the PNG stands in where there is none)."""
    note: str = ""


Block = Heading | Text | Table | Plot

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
.scroll{overflow-x:auto;max-width:100%;margin:.5em 0 1.5em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;max-width:28em;
overflow-wrap:break-word}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
td.best{font-weight:bold;background:#e3f4e1}tr.marked td{background:#fbe9e7;color:#8a2a1a}
.note{color:#666;font-size:.85em}img{max-width:100%}
"""


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that start
# markup inline (emphasis, code, links, raw HTML, entities, GFM table cells, strikethrough,
# math on GitHub, headings). https://spec.commonmark.org/0.31.2/#backslash-escapes
_MARKDOWN = re.compile(r"([\\`*_\[\]<>&|#~$])")


def md_text(text: str) -> str:
    """Text that Markdown shows as it is: on one line, every markup character escaped."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def html_text(text: str) -> str:
    """Text that HTML shows as it is (quotes escaped too: it may land in an attribute)."""
    return html.escape(one_line(text))


def plot_text(text: str) -> str:
    """Text for a plotly title, legend, tick or hover label.

    plotly.js renders a subset of HTML there (`<a href>`, `<b>`, `<br>`, `<span style>`) and
    decodes `&lt;`, `&gt;` and `&amp;` back to text (not `&quot;`), so those three are escaped.
    https://plotly.com/chart-studio-help/adding-HTML-and-links-to-charts/
    """
    return html.escape(one_line(text), quote=False)


def png_text(text: str) -> str:
    """Text for a matplotlib label: one line, and `$` literal (not the start of mathtext)."""
    return one_line(text).replace("$", r"\$")


def write_files(blocks: list[Block], folder: Path) -> None:
    """The PNGs and CSVs the pages link to."""
    for block in blocks:
        if isinstance(block, Table):
            write_csv(block.data, folder / block.csv)
        elif isinstance(block, Plot):
            block.save(folder / block.png)


def markdown(title: str, blocks: list[Block]) -> str:
    """The report as one Markdown page: tables inline (each linking its CSV), plots as images
    of their PNGs."""
    lines = [f"# {md_text(title)}", ""]
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * (block.level) + f" {md_text(block.text)}", ""]
        elif isinstance(block, Text):
            lines += [md_text(block.text), ""]
        elif isinstance(block, Plot):
            lines += [f"![{md_text(block.title)}]({block.png})", ""]
            lines += [f"_{md_text(block.note)}_", ""] if block.note else []
        else:
            lines += [f"**{md_text(block.title)}** ([csv]({block.csv}))", ""]
            lines += _markdown_table(block)
            lines += [f"_{md_text(block.note)}_", ""] if block.note else []
    return "\n".join(lines)


def _markdown_table(table: Table) -> list[str]:
    def cell(row: int, column: str, value: str) -> str:
        text = md_text(value)
        return f"**{text}**" if (row, column) in table.best and text else text

    columns = list(table.shown.columns)
    header = [md_text(str(c)) for c in columns]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    for i, row in enumerate(table.shown.itertuples(index=False)):
        cells = [cell(i, c, str(v)) for c, v in zip(columns, row, strict=True)]
        if i in table.marked_rows:
            cells[0] = f"⚠ {cells[0]}"
        out.append("| " + " | ".join(cells) + " |")
    return [*out, ""]


# LaTeX's ten special characters, as the LaTeX Project's "usrguide" names them, and what
# pdflatex's default fonts lack; every other character is typeset as it is.
_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "…": r"\dots{}",
    "⚠": "!",
}


def latex_text(text: str) -> str:
    """Text that LaTeX typesets as it is: one line, no character read as a command."""
    return "".join(_LATEX.get(c, c) for c in one_line(text))


def latex(title: str, blocks: list[Block]) -> str:
    """Every table of the report as a LaTeX document (booktabs; best cells in bold), to
    \\input or compile as it is; figures are the PNGs beside it."""
    parts = [
        r"\documentclass{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{booktabs}",
        r"\begin{document}",
        rf"\section*{{{latex_text(title)}}}",
    ]
    for block in blocks:
        if isinstance(block, Table):
            parts.append(_latex_table(block))
    parts.append(r"\end{document}")
    return "\n".join(parts) + "\n"


def _latex_table(table: Table) -> str:
    columns = list(table.shown.columns)
    header = " & ".join(latex_text(str(c)) for c in columns) + r" \\"
    rows = []
    for i, row in enumerate(table.shown.itertuples(index=False)):
        cells = [
            rf"\textbf{{{latex_text(str(v))}}}" if (i, c) in table.best else latex_text(str(v))
            for c, v in zip(columns, row, strict=True)
        ]
        rows.append(" & ".join(cells) + r" \\")
    note = [rf"\par\small {latex_text(table.note)}"] if table.note else []
    return "\n".join(
        [
            r"\begin{table}[htbp]\centering\footnotesize",
            rf"\textbf{{{latex_text(table.title)}}}\par\smallskip",
            r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}",
            r"\toprule",
            header,
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            *note,
            r"\end{table}",
        ]
    )


def html_page(title: str, subtitle: str, blocks: list[Block]) -> str:
    """The report as one self-contained HTML page: plotly.js embedded once (with the first
    figure), so it opens offline; every user text is escaped."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html_text(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html_text(title)}</h1><p class='note'>{html_text(subtitle)}</p>",
    ]
    plotly_js = True  # embedded with the first figure, reused by the rest
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html_text(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{html_text(block.text)}</p>")
        elif isinstance(block, Plot):
            if block.figure is None:
                parts.append(f"<img src='{block.png}' alt='{html_text(block.title)}'>")
                continue
            parts.append(
                block.figure.to_html(
                    full_html=False, include_plotlyjs=plotly_js, config={"responsive": True}
                )
            )
            note = f"{html_text(block.note)} " if block.note else ""
            parts.append(f"<p class='note'>{note}static: <a href='{block.png}'>{block.png}</a></p>")
            plotly_js = False
        else:
            parts.append(_html_table(block))
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html_text(str(c))}</th>" for c in table.shown.columns)
    rows = []
    for i, row in enumerate(table.shown.itertuples(index=False)):
        cells = "".join(
            f"<td class='best'>{html_text(str(v))}</td>"
            if (i, c) in table.best
            else f"<td>{html_text(str(v))}</td>"
            for c, v in zip(table.shown.columns, row, strict=True)
        )
        marked = " class='marked'" if i in table.marked_rows else ""
        rows.append(f"<tr{marked}>{cells}</tr>")
    note = f"<p class='note'>{html_text(table.note)}</p>" if table.note else ""
    link = f" <a class='note' href='{table.csv}'>csv</a>"
    return (
        f"<h4>{html_text(table.title)}{link}</h4>"
        f"<div class='scroll'><table><tr>{head}</tr>{''.join(rows)}</table></div>{note}"
    )
