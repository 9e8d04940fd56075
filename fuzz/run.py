"""``python -m fuzz.run TARGET [libFuzzer args...]``: one target under atheris (see fuzz/targets.py)."""

from __future__ import annotations

import sys

import atheris

# The pure reference's book and sync rules are imported before instrumenting: under atheris's
# comparison hooks they once decided a crossed snapshot differently than in a plain run of the same
# inputs (replaying the whole history with and without the hooks showed it), which is a false
# disagreement for the differential `frames` target. Coverage comes from the decoders and loaders.
import tickpath.venues.binance.sync  # noqa: F401

_INSTRUMENTED = [
    "tickpath.venues.binance.parse",
    "tickpath.venues.binance.capture",
    "tickpath.sweep.config",
    "tickpath.ingest.columns",
]
with atheris.instrument_imports(include=_INSTRUMENTED):
    from fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.run {{{','.join(TARGETS)}}} [libFuzzer args]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
