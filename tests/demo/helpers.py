"""What "nothing left running" means for a demo run, checked from /proc and with sockets."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def children(pid: int | None = None) -> set[int]:
    """Live (non-zombie) processes whose parent is ``pid`` (default: this process)."""
    parent = os.getpid() if pid is None else pid
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == parent:
            out.add(int(entry.name))
    return out


def processes_mentioning(text: str) -> list[str]:
    """Command lines (and working directories) of live processes that mention ``text``."""
    hits = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        if text in cmd or cwd.startswith(text):
            hits.append(f"{entry.name}: {cmd.strip()} (cwd {cwd})")
    return hits


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0
