"""The statistics core shared by every latency feature (probe, feed, busbench, sweep, dq).

Values are recorded in integer nanoseconds into an HdrHistogram; summaries, ``.hgrm`` files and
lossless encoded histograms (mergeable across machines) all come from it.
"""

from tickpath.stats.recorder import (
    SUMMARY_PERCENTILES,
    LatencyRecorder,
    LatencySummary,
    merge_encoded,
    spectrum,
    spectrum_percentiles,
)

__all__ = [
    "SUMMARY_PERCENTILES",
    "LatencyRecorder",
    "LatencySummary",
    "merge_encoded",
    "spectrum",
    "spectrum_percentiles",
]
