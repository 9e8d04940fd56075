"""``python -m bench.one bench_NAME OUT.json``: one benchmark in this interpreter, its figures to OUT."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    name, out = argv
    figures = importlib.import_module(f"bench.{name}").main()
    Path(out).write_text(json.dumps(figures, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
