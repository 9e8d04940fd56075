"""``python -m fuzz.run TARGET [libFuzzer args...]``: one target under atheris (see fuzz/targets.py)."""

from __future__ import annotations

import sys

import atheris

# Coverage comes from the decoders and loaders. The book and sync modules stay uninstrumented: under
# atheris's comparison hooks the pure reference's decisions once differed from a plain run of the
# same inputs (a replay of the whole history agreed), which would be a false disagreement.
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
