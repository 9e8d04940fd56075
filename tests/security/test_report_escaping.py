"""docs/security.md, results files are untrusted: every value the report shows is HTML-escaped.

A results directory whose every string (names, hosts, errors, CSV cells, symbols in the DuckDB store,
even a file name) carries markup must render as text: the page holds no script, no event-handler
attribute, no link or image that leaves the page, and the markup is visible as text.
"""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb

from tickpath.report import build_report

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'><svg onload=alert(3)>"
KEEP = {"schema", "histogram", "unit"}  # structure the report needs to recognise a file


def _taint(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: (v if k in KEEP else _taint(v, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_taint(v, key) for v in node]
    if isinstance(node, str):
        return PAYLOAD + node
    return node


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _poison(root: Path) -> None:
    for path in root.rglob("*.json"):
        path.write_text(json.dumps(_taint(json.loads(path.read_text()))))
    for path in root.rglob("*.csv"):
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        head = rows[0]
        text_cols = {i for i, h in enumerate(head) if h in {"candidate", "az_id", "status", "error"}}
        body = [[PAYLOAD + c if i in text_cols else c for i, c in enumerate(r)] for r in rows[1:]]
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([head, *body])
    for path in root.rglob("*.duckdb"):
        con = duckdb.connect(str(path))
        for table in ("trades", "l2"):
            con.execute(f"UPDATE {table} SET symbol = ? || symbol", [PAYLOAD])
        con.close()
    (root / f"{PAYLOAD.replace('/', '_')}.json").write_text("{not json")  # listed under Problems


def test_hostile_results_render_as_text(results_dir: Path) -> None:
    """No <script>, no on* attribute, nothing off-page; the payload shows as text in every section."""
    _poison(results_dir)
    res = build_report(results_dir)
    html = res.html_path.read_text()
    parsed = _Tags()
    parsed.feed(html)
    names = {t for t, _ in parsed.tags}
    assert not names & {"script", "svg", "iframe", "object", "embed", "form", "link", "base"}
    for tag, attrs in parsed.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            if name == "src":
                assert value is not None and value.startswith("data:image/png;base64,"), (tag, value)
            if name == "href":
                assert value is not None and value.startswith("#"), (tag, value)
    metas = [a for t, a in parsed.tags if t == "meta"]
    assert metas == [[("charset", "utf-8")]]
    shown = "".join(parsed.text).count(PAYLOAD)
    kinds = {s.split("-")[0] for s in res.sections}
    assert kinds >= {"sweep", "probe", "feed", "dq", "busbench", "problems"}
    # the markup reached the page in many places (names, hosts, errors, symbols, the bad file)
    assert shown >= 10, shown
    assert len(res.problems) == 1  # only the corrupt file: every poisoned artifact still rendered
    assert "Problems" in html and PAYLOAD.replace("/", "_")[:20] in "".join(parsed.text)
