"""The native core built with AddressSanitizer and UBSan survives hostile and mutated frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _runtime(name: str) -> str:
    found = subprocess.run(["g++", f"-print-file-name={name}"], capture_output=True, text=True, check=True)
    path = found.stdout.strip()
    if not os.path.isabs(path):
        pytest.skip(f"{name} not found by g++ (Debian's gcc ships it)")
    return path


def test_sanitized_core_survives_hostile_frames(tmp_path: Path) -> None:
    env = dict(os.environ, TICKPATH_SANITIZE="1")
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
         "--build-temp", str(tmp_path / "tmp")],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    built = list((tmp_path / "lib").rglob("_core*.so"))
    assert len(built) == 1
    captures = str(SHARED_DATA) if (SHARED_DATA / "spot.ws.txt").exists() else "-"
    run_env = dict(
        os.environ,
        LD_PRELOAD=f"{_runtime('libasan.so')} {_runtime('libubsan.so')}",
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",  # CPython itself keeps memory until exit
        # Every object its own malloc block: inside pymalloc's arenas an over-read of a frame's bytes
        # stays in mapped memory ASan calls valid (one went unseen until valgrind found it).
        PYTHONMALLOC="malloc",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYTHONPATH=f"{ROOT}:{ROOT / 'src'}",
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "native" / "sanitized_drive.py"), str(built[0]), captures],
        env=run_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "ERROR: AddressSanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-4000:]
    counts = dict(kv.split("=") for kv in proc.stdout.split())
    assert int(counts["accepted"]) > 1000 and int(counts["rejected"]) > 1000


def test_sanitized_ingest_decoder_survives_hostile_payloads(tmp_path: Path) -> None:
    """ingest's native decoder (tickpath.ingest._decode) under ASan + UBSan, with the flags setup.py
    uses for TICKPATH_SANITIZE=1: truncated, corrupted and 1 MB payloads, cut pull replies."""
    import sysconfig

    import pybind11

    so = tmp_path / "_decode.so"
    subprocess.run(
        ["g++", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-std=c++17", "-shared", "-fPIC", f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
         str(ROOT / "src/tickpath/ingest/native/module.cpp"), "-o", str(so)],
        check=True, capture_output=True,
    )  # fmt: skip
    run_env = dict(
        os.environ,
        LD_PRELOAD=f"{_runtime('libasan.so')} {_runtime('libubsan.so')}",
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        PYTHONMALLOC="malloc",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYTHONPATH=f"{ROOT}:{ROOT / 'src'}",
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ingest" / "sanitized_ingest_drive.py"), str(so)],
        env=run_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "ERROR: AddressSanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-4000:]
    assert "batches=400" in proc.stdout
