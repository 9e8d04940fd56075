"""Three network namespaces on one bridge, so servers and client talk like three hosts.

``busbench local --netns`` (root only) creates namespaces for server A, server B and the client,
each with a veth pair whose outer end is enslaved to a bridge in the root namespace. Packets
then cross real interfaces and the kernel's bridge, not loopback. The bridge also gets an
address, so this process can reach the servers' monitoring ports for readiness checks.

The client's sockets are created by a thread that first joins the client namespace with
``setns(2)`` (:func:`in_namespace`); a socket stays in the namespace it was created in, so the
publisher and subscriber threads can use it from anywhere. Everything is removed on exit,
including after errors and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from tickpath.errors import ConfigError, InfraError, ToolMissingError
from tickpath.logs import log_event

log = logging.getLogger(__name__)
T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def available() -> str | None:
    """None when namespaces can be used here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the 'ip' program (iproute2) is not installed"
    return None


async def _ip(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise InfraError(f"ip {' '.join(args)} failed: {err.decode(errors='replace').strip()}")


@dataclass
class Triangle:
    """Namespaces ``<prefix>-a``, ``-b`` and ``-c`` (client) on bridge ``tpb<id>``."""

    subnet_octet: int = field(default_factory=lambda: 100 + secrets.randbelow(100))
    run_id: str = field(default_factory=lambda: secrets.token_hex(2))
    created: list[str] = field(default_factory=list)
    bridge_up: bool = False

    @property
    def names(self) -> dict[str, str]:
        return {role: f"tp{self.run_id}-{role}" for role in ("a", "b", "c")}

    def address(self, role: str) -> str:
        return f"10.213.{self.subnet_octet}.{ {'a': 1, 'b': 2, 'c': 3}[role] }"

    @property
    def bridge(self) -> str:
        return f"tpb{self.run_id}"

    @property
    def bridge_address(self) -> str:
        return f"10.213.{self.subnet_octet}.254"

    def prefix(self, role: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[role]]

    async def __aenter__(self) -> Triangle:
        reason = available()
        if reason:
            raise ToolMissingError(f"cannot use network namespaces: {reason}")
        try:
            await _ip("link", "add", self.bridge, "type", "bridge")
            self.bridge_up = True
            await _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
            await _ip("link", "set", self.bridge, "up")
            for role, ns in self.names.items():
                await _ip("netns", "add", ns)
                self.created.append(ns)
                outer = f"tpv{self.run_id}{role}"
                await _ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
                await _ip("link", "set", outer, "master", self.bridge, "up")
                await _ip("-n", ns, "addr", "add", f"{self.address(role)}/24", "dev", "eth0")
                await _ip("-n", ns, "link", "set", "eth0", "up")
                await _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            await self.close()
            raise
        log_event(log, logging.INFO, "netns_created", namespaces=",".join(self.created), bridge=self.bridge)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Delete namespaces (their veth pairs go with them) and the bridge; never raises."""
        for ns in reversed(self.created):
            with contextlib.suppress(InfraError):
                await _ip("netns", "del", ns)
        self.created.clear()
        if self.bridge_up:
            with contextlib.suppress(InfraError):
                await _ip("link", "del", self.bridge)
            self.bridge_up = False


def _setns(name: str) -> None:
    path = f"/run/netns/{name}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"network namespace {name} not found ({path}): {exc}") from exc
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise InfraError(f"setns({name}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


async def in_namespace(name: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread that first joins network namespace ``name`` (None: stay).

    A fresh thread, not the executor's: a pooled thread would stay in the namespace afterwards.
    """
    if name is None:
        return await asyncio.to_thread(fn)
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)  # type: ignore[arg-type]

    def target() -> None:
        try:
            _setns(name)
            value = fn()
        except BaseException as exc:  # handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=target, name=f"netns-{name}", daemon=True).start()
    return await fut
