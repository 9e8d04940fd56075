"""`tickpath report`: every section from a results directory, PNGs beside the HTML, bad input handled."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.support.browser import chromium_path, file_url, inspect_page, is_blank
from tickpath.cli.main import main
from tickpath.errors import ConfigError
from tickpath.report import build_report


def test_every_section_is_rendered_with_plots(results_dir: Path) -> None:
    """Sweep, probe, feed, dq and busbench each get a section; every plot is embedded and written as PNG."""
    res = build_report(results_dir)
    html = res.html_path.read_text()
    kinds = {a.split("-")[0] for a in res.sections}
    assert kinds >= {"sweep", "probe", "feed", "dq", "busbench"}
    assert res.problems == []
    assert html.count("data:image/png;base64,") == len(res.png_paths) >= 5
    assert all(p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in res.png_paths)
    # the winner's row is highlighted and named; the failed candidate is listed, not ranked
    assert '<tr class="win"><td class="l">1</td><td class="l">frankfurt</td>' in html
    assert "tokyo" in html and "no result within 60 s" in html
    assert "frankfurt (winner)" not in html  # legend text lives in the PNG, not the page
    assert any(p.name.startswith("sweep-") for p in res.png_paths)
    assert "Sequence continuity" in html and "FAIL" in html
    assert "resets/resyncs: 1, of them gaps: 1" in html
    assert "Feed runs" in html and "+37.0 ± 0.8 ms" in html and "duckdb: 600 written, 0 dropped" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "<script" not in html


def test_corrupt_files_are_reported_and_the_rest_rendered(
    results_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupt JSON and a broken DuckDB file are named in Problems; the CLI renders the rest and exits 0."""
    (results_dir / "dq" / "dq.json").write_text('{"schema": "tickpath.dq/1", "checks": [')
    (results_dir / "feed" / "broken.duckdb").write_bytes(b"not a database at all" * 10)
    code = main(["report", str(results_dir), "-o", str(results_dir / "out.html")])
    err = capsys.readouterr().err
    assert code == 0
    assert "dq.json" in err and "corrupt JSON" in err and "broken.duckdb" in err
    html = (results_dir / "out.html").read_text()
    assert 'id="problems"' in html and "Bus latency" in html and 'id="dq-' not in html


def test_missing_or_empty_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing directory, a file, or a directory with nothing tickpath wrote: one line, exit 2."""
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "nothing to report" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not a directory"):
        build_report(tmp_path / "empty" / "notes.txt")


@pytest.mark.integration
def test_report_in_headless_chromium(results_dir: Path) -> None:
    """Opened from disk in Chromium: no console errors, no network requests, all sections and plots, not blank."""
    if chromium_path() is None:
        pytest.skip("chromium is not installed (make test installs it with apt when root)")
    res = build_report(results_dir)
    expr = (
        "({sections: [...document.querySelectorAll('section')].map(s => s.id),"
        " images: [...document.images].map(i => [i.dataset.plot, i.complete && i.naturalWidth > 0])})"
    )
    page = asyncio.run(inspect_page(file_url(res.html_path), expr))
    assert page.console_errors == [] and page.exceptions == []
    assert page.requests == []
    ids = page.evaluated["sections"]
    for kind in ("sweep", "probe", "feed", "dq", "busbench"):
        assert any(i.startswith(kind) for i in ids), (kind, ids)
    assert len(page.evaluated["images"]) == len(res.png_paths)
    assert all(ok for _, ok in page.evaluated["images"])
    assert not is_blank(page.screenshot_png)
    (res.html_path.parent / "screenshot.png").write_bytes(page.screenshot_png)


def test_report_to_an_unwritable_path_is_a_clear_error(results_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """report -o /proc/x.html: one line and exit 2, not a FileNotFoundError traceback."""
    for kind in ("sweep", "probe", "feed", "busbench"):  # the page is rendered first: one section will do
        shutil.rmtree(results_dir / kind)
    assert main(["report", str(results_dir), "-o", "/proc/x/report.html"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the report to /proc/x/report.html" in err and "Traceback" not in err
