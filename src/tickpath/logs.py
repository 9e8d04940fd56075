"""Key-value event logging on the standard library.

The library never configures logging; only the CLI does (:func:`configure`). Events read like
``book_resynced symbol=BTCUSDT gap=3``. Hot paths must not log per message: count instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_SECRET_KEYS = ("secret", "password", "token", "credential", "key_material", "authorization")


def _fmt_value(key: str, value: Any) -> str:
    if any(s in key.lower() for s in _SECRET_KEYS):
        return "<redacted>"
    text = str(value)
    return repr(text) if (" " in text or not text) else text


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``key=value`` fields; values of secret-looking keys are redacted."""
    if logger.isEnabledFor(level):
        kv = " ".join(f"{k}={_fmt_value(k, v)}" for k, v in fields.items())
        logger.log(level, f"{event} {kv}" if kv else event)


def configure(verbosity: int = 0) -> None:
    """Configure stderr logging for the CLI: 0 = warnings, 1 = info, 2+ = debug."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("tickpath")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
