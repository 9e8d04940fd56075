"""Assembling the report: collect artifacts, render each section, write HTML and PNGs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tickpath.errors import ConfigError
from tickpath.report import sections
from tickpath.report.collect import Collection, Problem, collect
from tickpath.report.html import Section, esc, page


@dataclass
class ReportResult:
    html_path: Path
    png_paths: list[Path] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _render_isolated(render: Callable[[Collection], list[Section]], found: Collection) -> list[Section]:
    """Run one renderer over everything; if it fails, again artifact by artifact.

    One malformed document (the right schema, a broken body) must not sink the valid ones beside
    it: the retry renders each artifact alone and lists only the ones that still fail, by path.
    """
    try:
        return render(found)
    except Exception as exc:  # narrowed below, artifact by artifact
        whole = exc
    out: list[Section] = []
    failed = False
    for art in found.artifacts:
        try:
            out.extend(render(Collection(found.root, [art])))
        except Exception as exc:  # one broken artifact must not sink the whole report
            failed = True
            found.problems.append(Problem(art.path, f"skipped, could not render: {type(exc).__name__}: {exc}"))
    if not failed:  # no single artifact fails alone: name the renderer
        found.problems.append(sections.problem_from(render.__name__, whole))
    return out


def build_report(results_dir: str | Path, out: str | Path | None = None) -> ReportResult:
    """Render every recognisable artifact under ``results_dir`` into one HTML file.

    Raises :class:`ConfigError` when the directory is missing or holds nothing tickpath wrote;
    unreadable files are listed in the report's "Problems" section and skipped.
    """
    root = Path(results_dir)
    if not root.exists():
        raise ConfigError(f"results directory {root} does not exist")
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    found = collect(root)
    rendered: list[Section] = []
    for render in sections.RENDERERS:
        rendered.extend(_render_isolated(render, found))
    if found.problems:
        rendered.append(sections.problems_section(found.problems))
    if not any(s.anchor != "problems" for s in rendered):
        hint = "; ".join(f"{p.path}: {p.message}" for p in found.problems[:5])
        raise ConfigError(
            f"nothing to report in {root}: no probe, sweep, feed, dq or busbench results found"
            + (f" ({hint})" if hint else "")
        )
    html_path = Path(out) if out else root / "report.html"
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        html_path.write_text(page("tickpath report", f"{esc(root)} · generated {stamp}", rendered), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {html_path}: {exc.strerror or exc}") from exc
    pngs: list[Path] = []
    for s in rendered:
        for img in s.images:
            p = html_path.parent / img.name
            p.write_bytes(img.png)
            pngs.append(p)
    return ReportResult(
        html_path, pngs, [s.anchor for s in rendered], [f"{p.path}: {p.message}" for p in found.problems]
    )
