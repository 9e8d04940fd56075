"""Self-contained HTML: inline CSS, images as data URIs, no scripts or fonts from anywhere."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#0d1117;color:#f0f6fc;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#9da7b3;font-size:13px}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #d0d7de;font-size:14px}
nav a{margin-right:16px;color:#0969da;text-decoration:none}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{margin-top:0;font-size:19px} h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:right}
th{background:#f6f8fa} td.l,th.l{text-align:left} tr.win td{background:#dafbe1;font-weight:600}
.pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600} .warn{color:#9a6700;font-weight:600}
.scroll{overflow-x:auto;max-width:100%}
img{max-width:100%;height:auto;border:1px solid #eaeef2;margin:6px 0}
.note{color:#57606a;font-size:13px} .kv{font-size:14px} code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt_num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        # small figures (e.g. hop RTTs in ms) keep three decimals so they do not print as 0.0
        return f"{value:,.{3 if abs(value) < 10 else digits}f}"
    return esc(value)


@dataclass
class Image:
    name: str  # file name of the PNG written beside the HTML
    alt: str
    png: bytes


@dataclass
class Section:
    anchor: str
    title: str
    body: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)

    def add(self, fragment: str) -> None:
        self.body.append(fragment)

    def add_image(self, image: Image) -> None:
        self.images.append(image)
        data = base64.b64encode(image.png).decode("ascii")
        self.body.append(
            f'<img alt="{esc(image.alt)}" data-plot="{esc(image.name)}" src="data:image/png;base64,{data}">'
        )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, left: int = 1, highlight_rows: set[int] | None = None
) -> str:
    """An HTML table; the first ``left`` columns are left-aligned (names), the rest numbers."""
    hl = highlight_rows or set()
    out = ['<div class="scroll"><table><tr>']
    out += [f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(headers)]
    out.append("</tr>")
    for r, row in enumerate(rows):
        out.append('<tr class="win">' if r in hl else "<tr>")
        for i, cell in enumerate(row):
            cls = ' class="l"' if i < left else ""
            text = cell if isinstance(cell, Raw) else fmt_num(cell)
            out.append(f"<td{cls}>{text}</td>")
        out.append("</tr>")
    out.append("</table></div>")
    return "".join(out)


class Raw(str):
    """Trusted HTML inside a table cell (e.g. a verdict badge)."""


def verdict(ok: bool | None, text: str | None = None) -> Raw:
    if ok is None:
        return Raw(f'<span class="warn">{esc(text or "n/a")}</span>')
    cls = "pass" if ok else "fail"
    return Raw(f'<span class="{cls}">{esc(text or ("PASS" if ok else "FAIL"))}</span>')


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{"".join(s.body)}</section>' for s in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>"
    )
