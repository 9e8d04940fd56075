"""Output paths of the CLI, checked before the work that fills them: a measurement that ends in a
write error is a measurement lost."""

from __future__ import annotations

import os
from pathlib import Path

from tickpath.errors import ConfigError


def ensure_writable_dir(directory: Path, what: str) -> None:
    """Create ``directory`` if needed and make sure this process can write into it; otherwise a
    ConfigError naming ``what`` (the option's path, as the user gave it)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write {what}: {exc.strerror or exc}") from exc
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"cannot write {what}: {directory} is not writable")
