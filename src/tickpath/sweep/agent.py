"""The local probe agent: what a cloud instance's boot script does, as a process on this machine.

Started detached (own session) by the ``local`` provider's Terraform module, it runs the probe
command, writes one result document into the directory store, and exits, like an instance that
uploads its JSON and powers off. A self-destruct timer (the sweep's TTL) ends it and its probe even
if nobody destroys it. Its command line carries ``--sweep-id``, the local equivalent of a tag, so
``tickpath sweep cleanup`` can find it after the orchestrator was killed.

Run as ``python -m tickpath.sweep.agent --sweep-id ID --candidate NAME`` with the spec (JSON:
``store_dir``, ``probe_argv``, ``ttl_s``) in ``$TICKPATH_SWEEP_AGENT``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from tickpath.sweep.store import DirectoryStore

SPEC_ENV = "TICKPATH_SWEEP_AGENT"
AGENT_MODULE = "tickpath.sweep.agent"
_ERR_TAIL = 2000


def run_agent(sweep_id: str, candidate: str, spec: dict[str, Any]) -> int:
    """Run the probe, store its result (or the reason it failed), return the probe's exit code."""
    store = DirectoryStore(spec["store_dir"])
    argv = [str(a) for a in spec["probe_argv"]]
    ttl_s = float(spec.get("ttl_s", 3600))
    started = time.time()
    envelope: dict[str, Any] = {
        "sweep_id": sweep_id, "candidate": candidate, "host": socket.gethostname(),
        "started_unix": started, "clock": "wall clock of the probe machine (Unix seconds)",
    }
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=ttl_s, check=False)
    except subprocess.TimeoutExpired:
        envelope.update(status="failed", error=f"probe still running at the TTL ({ttl_s:.0f} s): self-destructed")
        code = 124
    except OSError as exc:
        envelope.update(status="failed", error=f"cannot start probe {argv[:3]}: {exc}")
        code = 127
    else:
        code = proc.returncode
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")[-_ERR_TAIL:]
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
    store.put(sweep_id, candidate, json.dumps(envelope).encode())
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tickpath.sweep.agent",
                                     description="Local sweep probe agent (started by Terraform).")
    parser.add_argument("--sweep-id", required=True)
    parser.add_argument("--candidate", required=True)
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
        return run_agent(args.sweep_id, args.candidate, spec)
    return 130


if __name__ == "__main__":  # pragma: no cover - run by Terraform's local-exec
    sys.exit(main())
