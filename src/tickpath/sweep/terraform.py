"""The Terraform CLI, one state directory per candidate, errors translated where they enter.

Each candidate is its own root (a copy of the provider's module plus ``terraform.tfvars.json`` and
its own ``terraform.tfstate``), so candidates apply and destroy in parallel and a later
``tickpath sweep cleanup`` can destroy them from disk alone. Providers are installed once per sweep
into a shared ``TF_DATA_DIR``; the CLI config is an empty per-sweep file (no plugin cache, no
credentials helpers, nothing from the user's ``~/.terraformrc``).

Terraform runs in its own session so a terminal's Ctrl-C reaches only the orchestrator, which then
interrupts Terraform (SIGINT: it stops cleanly and saves state) and destroys what exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tickpath.errors import InfraError, ToolMissingError

TERRAFORM_ENV_DROP = (
    "TF_PLUGIN_CACHE_DIR",
    "TF_WORKSPACE",
    "TF_CLI_ARGS",
    "TF_CLI_ARGS_apply",
    "TF_CLI_ARGS_destroy",
    "TF_CLI_ARGS_init",
)
_TAIL_LINES = 12


def find_terraform(explicit: str | None = None) -> str:
    """Path of the ``terraform`` binary, or a clear :class:`ToolMissingError`."""
    if explicit is not None:
        if not os.path.isfile(explicit) or not os.access(explicit, os.X_OK):
            why = "does not exist" if not os.path.exists(explicit) else "is not an executable file"
            raise ToolMissingError(
                f"--terraform {explicit} {why}; give the path of the terraform binary, "
                "or leave --terraform out to use the one on PATH"
            )
        return explicit
    path = shutil.which("terraform")
    if not path or not os.access(path, os.X_OK):
        raise ToolMissingError(
            "terraform is not installed or not on PATH; install Terraform >= 1.4 "
            "(https://developer.hashicorp.com/terraform/install) or pass --terraform PATH"
        )
    return path


def terraform_env(sweep_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for every Terraform call of one sweep."""
    env = {k: v for k, v in os.environ.items() if k not in TERRAFORM_ENV_DROP}
    rc = sweep_dir / "terraformrc"
    if not rc.exists():
        rc.parent.mkdir(parents=True, exist_ok=True)
        rc.write_text("# empty on purpose: no plugin cache, no credential helpers\n")
    env.update(
        {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_DATA_DIR": str(sweep_dir / ".terraform"),
            "CHECKPOINT_DISABLE": "1",  # no version check phoning home
        }
    )
    env.update(extra or {})
    return env


def _tail(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-_TAIL_LINES:])


class Terraform:
    """Runs Terraform in one working directory; logs every call to ``terraform.log`` there."""

    def __init__(
        self, workdir: Path, env: Mapping[str, str], *, binary: str = "terraform", interrupt_grace_s: float = 120.0
    ) -> None:
        self.workdir = Path(workdir)
        self.env = dict(env)
        self.binary = binary
        self.interrupt_grace_s = interrupt_grace_s

    async def _run(self, *args: str) -> str:
        cmd = [self.binary, *args, "-no-color"]
        log = self.workdir / "terraform.log"
        with log.open("ab") as fh:
            fh.write(f"$ {' '.join(cmd)}\n".encode())
            start = fh.tell()
            # Output goes to a file and we wait for the process, not for EOF on a pipe: processes a
            # provisioner leaves running (the local agents) must not hold Terraform's call open.
            try:
                proc = await asyncio.create_subprocess_exec(
                    *cmd,
                    cwd=self.workdir,
                    env=self.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=fh,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise ToolMissingError(f"terraform binary {self.binary!r} not found") from exc
        try:
            await proc.wait()
        except asyncio.CancelledError:
            # Let Terraform stop gracefully so its state records what it created, then go on
            # cancelling: the caller destroys whatever the state now holds.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                await asyncio.shield(asyncio.wait_for(proc.wait(), self.interrupt_grace_s))
            except (TimeoutError, asyncio.CancelledError):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            raise
        with log.open("rb") as fh:
            fh.seek(start)
            out = fh.read().decode("utf-8", "replace")
        with log.open("a", encoding="utf-8") as fa:
            fa.write(f"[exit {proc.returncode}]\n")
        if proc.returncode != 0:
            raise InfraError(f"terraform {args[0]} failed in {self.workdir}:\n{_tail(out)}")
        return out

    async def init(self) -> None:
        await self._run("init", "-input=false", "-backend=true", "-get=true")

    async def apply(self) -> None:
        await self._run("apply", "-auto-approve", "-input=false", "-lock-timeout=60s")

    async def destroy(self, targets: Sequence[str] = ()) -> None:
        """Destroy everything in the state, or only the resources at ``targets`` (addresses)."""
        await self._run(
            "destroy", "-auto-approve", "-input=false", "-lock-timeout=60s", *(f"-target={t}" for t in targets)
        )

    async def output(self) -> dict[str, Any]:
        out = await self._run("output", "-json")
        try:
            raw = json.loads(out or "{}")
        except json.JSONDecodeError as exc:
            raise InfraError(f"terraform output was not JSON in {self.workdir}") from exc
        return {k: v.get("value") for k, v in raw.items()}

    async def version(self) -> str:
        out = await self._run("version", "-json")
        try:
            return str(json.loads(out)["terraform_version"])
        except (json.JSONDecodeError, KeyError) as exc:
            raise InfraError(f"unexpected `terraform version -json` output: {out[:200]}") from exc


def state_resources(workdir: Path) -> list[str]:
    """Addresses of the resources a local state file still holds (empty when destroyed)."""
    path = Path(workdir) / "terraform.tfstate"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as exc:
        raise InfraError(f"cannot read Terraform state {path}: {exc}") from exc
    out = []
    for res in state.get("resources", []):
        if res.get("instances"):
            prefix = f"{res['module']}." if res.get("module") else ""
            mode = "data." if res.get("mode") == "data" else ""
            out.append(f"{prefix}{mode}{res['type']}.{res['name']}")
    return [a for a in out if ".data." not in a and not a.startswith("data.")]


def prepare_root(workdir: Path, module_dir: Path, variables: Mapping[str, Any]) -> None:
    """Copy a module's ``*.tf``/``*.sh`` into ``workdir`` and write its variables."""
    workdir.mkdir(parents=True, exist_ok=True)
    for src in sorted(module_dir.iterdir()):
        if src.suffix in (".tf", ".sh"):
            shutil.copy2(src, workdir / src.name)
    (workdir / "terraform.tfvars.json").write_text(json.dumps(dict(variables), indent=2, sort_keys=True))
