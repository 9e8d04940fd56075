"""The report tests' results directory (one artifact of every kind) is reused by the escaping test."""

from tests.report.conftest import results_dir  # noqa: F401
