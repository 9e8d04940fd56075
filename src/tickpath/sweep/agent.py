"""The local probe agent: what a cloud instance's boot script does, as a process on this machine.

Started detached (own session) by the ``local`` provider's Terraform module, it runs the probe
command, writes one result document into the directory store, and exits, like an instance that
uploads its JSON and powers off. A self-destruct timer (the sweep's TTL) ends it and its probe even
if nobody destroys it. Its command line carries ``--sweep-id``, the local equivalent of a tag, so
``tickpath sweep cleanup`` can find it after the orchestrator was killed.

Run as ``python -m tickpath.sweep.agent --sweep-id ID --candidate NAME [--instance N]`` with the
spec (JSON: ``store_dir``, ``ttl_s`` and ``probe_args`` or ``probe_argv``) in
``$TICKPATH_SWEEP_AGENT``; instance ``N`` of a candidate stores its result as
``<candidate>/instance-N``, like the ``N``-th instance of a cloud candidate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from tickpath.errors import InterruptedRunError
from tickpath.sweep.store import DirectoryStore, result_name

SPEC_ENV = "TICKPATH_SWEEP_AGENT"
AGENT_MODULE = "tickpath.sweep.agent"
_ERR_TAIL = 2000


def _run_in_process(args: list[str]) -> tuple[int, str, str]:
    """``tickpath probe ARGS`` in this process: one interpreter start per candidate instead of two."""
    from tickpath.sweep import probe_cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = probe_cli.main(args)
        except SystemExit as exc:  # argparse rejects the arguments
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # a probe bug must still produce a failure result, not silence
            err.write(f"probe crashed: {type(exc).__name__}: {exc}")
            code = 70
    return code, out.getvalue(), err.getvalue()


def _run_subprocess(argv: list[str], ttl_s: float) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=ttl_s, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"probe still running at the TTL ({ttl_s:.0f} s): self-destructed"
    except OSError as exc:
        return 127, "", f"cannot start probe {argv[:3]}: {exc}"
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def run_agent(sweep_id: str, candidate: str, spec: dict[str, Any], instance: int = 0) -> int:
    """Run the probe, store its result (or the reason it failed), return the probe's exit code.

    ``spec["probe_args"]`` runs the real ``tickpath probe`` in this process; ``spec["probe_argv"]``
    runs any other program that prints a probe document.
    """
    store = DirectoryStore(spec["store_dir"])
    ttl_s = float(spec.get("ttl_s", 3600))
    started = time.time()
    envelope: dict[str, Any] = {
        "sweep_id": sweep_id,
        "candidate": candidate,
        "instance": instance,
        "host": socket.gethostname(),
        "started_unix": started,
        "clock": "wall clock of the probe machine (Unix seconds)",
    }
    if "probe_args" in spec:
        code, stdout, stderr = _run_in_process([str(a) for a in spec["probe_args"]])
    else:
        code, stdout, stderr = _run_subprocess([str(a) for a in spec["probe_argv"]], ttl_s)
    if code == InterruptedRunError.exit_code:
        return code  # stopped by a destroy (SIGTERM): the machine is going away, there is no result
    stderr = stderr[-_ERR_TAIL:]
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        # The probe exits non-zero when any method failed but still reports what it measured;
        # the orchestrator decides whether the figures the metric needs are there.
        envelope.update(status="ok", probe=doc, probe_exit_code=code, probe_stderr=stderr.strip() or None)
    else:
        reason = f"probe exited {code}" if code else "probe printed no JSON document"
        envelope.update(status="failed", error=f"{reason}: {stderr.strip() or stdout[-_ERR_TAIL:].strip()}")
        code = code or 1
    envelope["finished_unix"] = time.time()
    store.put(sweep_id, result_name(candidate, instance), json.dumps(envelope).encode())
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tickpath.sweep.agent", description="Local sweep probe agent (started by Terraform)."
    )
    parser.add_argument("--sweep-id", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--instance", type=int, default=0)
    args = parser.parse_args(argv)
    raw = os.environ.get(SPEC_ENV)
    if not raw:
        print(f"agent: ${SPEC_ENV} is not set", file=sys.stderr)
        return 2
    spec = json.loads(raw)
    # Hold nothing of the process that started us (Terraform's pipes and state files).
    os.closerange(3, 1024)
    # Self-destruct even if the probe ignores its own deadline: the TTL is a hard stop.
    signal.signal(signal.SIGALRM, lambda *_: os._exit(124))
    signal.alarm(max(1, int(float(spec.get("ttl_s", 3600))) + 5))
    with contextlib.suppress(KeyboardInterrupt):
        return run_agent(args.sweep_id, args.candidate, spec, args.instance)
    return 130


if __name__ == "__main__":  # pragma: no cover - run by Terraform's local-exec
    sys.exit(main())
