"""The tickpath an AWS sweep installs on its instances: the very tickpath running the sweep, as a wheel.

An instance must run the code that planned it, not whatever version an index serves under the same
name. So the sweep builds a wheel of the source tree it runs from (or takes ``--wheel FILE``, the
only way when it runs from an installed wheel with no source tree), pins every dependency to the
version installed here (a constraints file: the wheel's own ``==`` pins plus their dependencies),
and uploads both to ``artifacts/<sweep-id>/`` of the sweep's bucket. The boot script downloads
exactly those two objects, checks their SHA-256 against the values rendered into it, and installs
exactly that file; any mismatch or failure is the instance's failed result.

The wheel holds the native core compiled for this machine (``cp3XY-linux_<arch>``): the instance
installs the Python of the same minor version, and an instance of another architecture fails its
install, reported as a failed candidate saying so.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import tickpath
from tickpath.errors import ConfigError, InfraError

ARTIFACTS = "artifacts"
EXTRAS = ("aws",)  # instances install tickpath[aws], as they always did
_WHEEL_NAME = re.compile(r"^tickpath-[^-]+-(?P<py>[^-]+)-[^-]+-[^-]+\.whl$")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# The venv's own installer: every new venv brings its pip. (setuptools stays pinned: hdrhistogram
# needs a newer one at run time than a Python 3.11 venv bundles.)
_INSTALLER = {"pip", "wheel"}
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class WheelArtifact:
    """One wheel and its constraints, ready to upload; their digests go into the boot script."""

    path: Path
    sha256: str
    constraints: bytes
    constraints_sha256: str

    @property
    def python(self) -> str:
        """The interpreter the instance installs: ``python3.11`` for a ``cp311`` wheel."""
        m = _WHEEL_NAME.match(self.path.name)
        tag = m["py"] if m else ""
        if re.fullmatch(r"cp3\d+", tag):
            return f"python3.{tag[3:]}"
        return "python3.11"  # a pure wheel: the distribution's default 3.11 is new enough

    def keys(self, sweep_id: str) -> tuple[str, str]:
        """Object keys of the wheel and of its constraints file in the sweep's bucket."""
        return f"{ARTIFACTS}/{sweep_id}/{self.path.name}", f"{ARTIFACTS}/{sweep_id}/constraints.txt"

    def boot_variables(self, sweep_id: str) -> dict[str, str]:
        """The Terraform variables (and boot template values) that name and pin the artifacts."""
        wheel_key, constraints_key = self.keys(sweep_id)
        return {
            "wheel_key": wheel_key,
            "wheel_sha256": self.sha256,
            "constraints_key": constraints_key,
            "constraints_sha256": self.constraints_sha256,
            "python": self.python,
        }


def source_tree() -> Path | None:
    """The source checkout this tickpath runs from, or None when it runs from an installed wheel."""
    package = Path(tickpath.__file__).resolve().parent
    root = package.parent.parent
    pyproject = root / "pyproject.toml"
    if package.parent.name != "src" or not pyproject.is_file():
        return None
    return root if re.search(r'(?m)^name\s*=\s*"tickpath"', pyproject.read_text()) else None


def build_wheel(source: Path, out_dir: Path, *, python: str = sys.executable, timeout_s: float = 1800) -> Path:
    """``pip wheel`` of ``source`` into ``out_dir`` (no build isolation: no index is needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out_dir)]
    try:
        proc = subprocess.run([*argv, str(source)], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot build the tickpath wheel from {source}: {exc}; pass --wheel FILE") from exc
    wheels = sorted(out_dir.glob("tickpath-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(
            f"building the tickpath wheel from {source} failed (pip exit {proc.returncode}: {tail}); "
            "the build needs setuptools and pybind11 installed here, or pass --wheel FILE"
        )
    return wheels[-1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints(root: str = "tickpath", extras: tuple[str, ...] = EXTRAS) -> bytes:
    """``name==version`` for every installed dependency reachable from ``root[extras]``.

    Pins what this machine runs, the wheel's own pins included. A constraint only limits versions,
    so a dependency behind a marker the instance does not match is harmless; dependencies of extras
    not asked for are left out, and so are pip and wheel (:data:`_INSTALLER`).
    """
    pins: dict[str, str] = {}
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. uvloop on macOS: the instance resolves it from its own pins
        for req in dist.requires or []:
            m = _REQ_NAME.match(req)
            extra = _EXTRA.search(req)
            if not m or (extra and extra[1] not in wanted):
                continue
            dep = _canonical(m[1])
            if dep in pins or dep in _INSTALLER or dep == _canonical(root):
                continue
            try:
                pins[dep] = metadata.version(dep)
            except metadata.PackageNotFoundError:
                continue
            todo.append((dep, set()))
    return "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())).encode()


def check_wheel_file(wheel: Path) -> Path:
    """``wheel`` if it is a tickpath wheel file; checked before a sweep records or creates anything."""
    if not wheel.is_file() or not _WHEEL_NAME.match(wheel.name) or not zipfile.is_zipfile(wheel):
        raise ConfigError(f"--wheel {wheel}: not a tickpath wheel file (tickpath-<version>-<tags>.whl)")
    return wheel


def resolve_wheel(wheel: Path | None, build_dir: Path | None = None) -> WheelArtifact:
    """The artifact of ``wheel``, or of a wheel built from the running source tree."""
    if wheel is None:
        source = source_tree()
        if source is None:
            raise ConfigError(
                "this tickpath runs from an installed package with no source tree to build a wheel from: "
                "pass --wheel FILE (the tickpath wheel the instances must install)"
            )
        wheel = build_wheel(source, build_dir or Path(tempfile.mkdtemp(prefix="tickpath-wheel-")))
    wheel = check_wheel_file(Path(wheel))
    pins = constraints()
    return WheelArtifact(wheel, sha256_file(wheel), pins, hashlib.sha256(pins).hexdigest())


def upload(artifact: WheelArtifact, bucket: str, sweep_id: str, client: Any) -> None:
    """Put the wheel and its constraints under ``artifacts/<sweep-id>/`` (instances may only read there)."""
    from botocore.exceptions import BotoCoreError, ClientError

    wheel_key, constraints_key = artifact.keys(sweep_id)
    try:
        client.put_object(Bucket=bucket, Key=wheel_key, Body=artifact.path.read_bytes())
        client.put_object(Bucket=bucket, Key=constraints_key, Body=artifact.constraints, ContentType="text/plain")
    except (ClientError, BotoCoreError, OSError) as exc:
        raise InfraError(f"uploading the tickpath wheel to s3://{bucket}/{wheel_key} failed: {exc}") from exc
