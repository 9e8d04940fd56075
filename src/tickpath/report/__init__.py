"""``tickpath report``: one self-contained HTML file (and PNG plots beside it) from any results
directory that probe, sweep, feed/dq or busbench wrote. Unreadable files are reported in the page
and skipped; everything readable is rendered."""

from tickpath.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
