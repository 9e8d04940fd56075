"""Real ``nats-server`` processes for tests, demos and benchmarks: one node or an N-node cluster.

::

    async with NatsCluster(n=3, jetstream=True) as c:
        c.client_urls          # ["nats://127.0.0.1:40123", ...], one per node
        await c.kill(1)        # SIGKILL node 1 (its routes drop, clients see EOF)
        await c.restart(1)     # start it again on the same ports, wait until routed

Every node gets free ports (client, route, HTTP monitor), a generated config file in a private
work directory, and its own log file. Readiness means the monitor answers ``/healthz`` and
``/routez`` lists a route to every other node, so a client that connects afterwards sees a
fully meshed cluster. Optional: JetStream (store dir per node), TLS for clients and routes
(:class:`tickpath.busbench.tls.TlsFiles`), user/password, token or NKey auth for clients (routes always
get their own generated credentials), and per-node listen hosts and command prefixes, which is
how ``busbench local --netns`` runs each server inside its own network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import signal
import socket
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tickpath.errors import ConfigError, ConnectionFailedError, ToolMissingError
from tickpath.logs import log_event

log = logging.getLogger(__name__)

__all__ = ["NatsCluster", "NatsNode", "find_nats_server", "free_port", "render_config"]


def find_nats_server(binary: str | None = None) -> str:
    """Path of the ``nats-server`` binary (PATH, then /usr/sbin), or :class:`ToolMissingError`."""
    candidates = [binary] if binary else ["nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"]
    for c in candidates:
        found = shutil.which(c) if c else None
        if found:
            return found
    raise ToolMissingError("nats-server not found: install it (Debian: apt-get install nats-server) or pass its path")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel just reported free on ``host`` (bind port 0, then release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig SIGTERM`` (util-linux) when available: the server gets SIGTERM when
    the process that started it dies, so a SIGKILLed owner (whose cleanup cannot run) leaves no
    orphaned servers. A wrapper rather than ``preexec_fn``, which is unsafe with threads."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "SIGTERM", "--") if setpriv else ()


def _free_ports(hosts: Sequence[str], per_host: int) -> list[tuple[int, ...]]:
    """``per_host`` distinct free ports per host: all sockets stay bound until every port is
    chosen, so the kernel cannot hand the same port out twice."""
    held: list[socket.socket] = []
    try:
        out = []
        for host in hosts:
            row = []
            for _ in range(per_host):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.bind((host, 0))
                row.append(int(s.getsockname()[1]))
            out.append(tuple(row))
        return out
    finally:
        for s in held:
            s.close()


@dataclass
class NatsNode:
    """One server of the cluster: its ports, files and process."""

    index: int
    host: str
    client_port: int
    route_port: int
    http_port: int
    config: Path
    log: Path
    prefix: tuple[str, ...] = ()
    process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class NatsCluster:
    """Starts, inspects, kills, restarts and tears down real ``nats-server`` processes."""

    def __init__(
        self,
        n: int = 1,
        *,
        jetstream: bool = False,
        tls: Any = None,
        verify_clients: bool = False,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        nkeys: Sequence[str] | None = None,
        hosts: Sequence[str] | None = None,
        prefixes: Sequence[Sequence[str]] | None = None,
        ports: tuple[int, int, int] | None = None,
        workdir: str | Path | None = None,
        binary: str | None = None,
        cluster_name: str = "tickpath",
        ready_timeout: float = 15.0,
        monitor_host: str | None = None,
    ) -> None:
        """Describe the cluster; nothing starts until :meth:`start` (or ``async with``).

        ``tls`` is a :class:`~tickpath.busbench.tls.TlsFiles` with the servers' certificate; it
        secures client connections and routes. ``verify_clients`` makes servers require client
        certificates. ``hosts``/``prefixes`` give each node a listen address and a command prefix
        (e.g. ``["ip", "netns", "exec", "ns0"]``); ``ports`` fixes (client, route, http) ports
        for every node, for hosts where free ports cannot be probed from here.
        """
        if n < 1:
            raise ConfigError(f"a NATS cluster needs at least one node, not {n}")
        if token and user:
            raise ConfigError("use either a token or a user/password, not both")
        if bool(user) != bool(password):
            raise ConfigError("user and password go together")
        self.n = n
        self.jetstream = jetstream
        self.tls = tls
        self.verify_clients = verify_clients
        self.user, self.password, self.token = user, password, token
        self.nkeys = list(nkeys or [])
        if self.nkeys and token:
            raise ConfigError("NKey users and a token cannot be combined")
        self.cluster_name = cluster_name
        self.ready_timeout = ready_timeout
        self._binary = binary
        self._hosts = list(hosts) if hosts else ["127.0.0.1"] * n
        self._prefixes = [tuple(p) for p in prefixes] if prefixes else [()] * n
        if len(self._hosts) != n or len(self._prefixes) != n:
            raise ConfigError("hosts and prefixes need one entry per node")
        self._ports = ports
        self._monitor_host = monitor_host
        self._own_workdir = workdir is None
        self._workdir_arg = Path(workdir) if workdir else None
        self.workdir: Path = Path()
        # Routes authenticate with credentials made for this run only.
        self._route_user = "route"
        self._route_password = secrets.token_urlsafe(18)
        self.nodes: list[NatsNode] = []

    # -- public view -----------------------------------------------------------------------
    @property
    def client_urls(self) -> list[str]:
        """One ``nats://`` (or ``tls://``) URL per node, without credentials."""
        scheme = "tls" if self.tls else "nats"
        return [f"{scheme}://{nd.host}:{nd.client_port}" for nd in self.nodes]

    @property
    def monitor_urls(self) -> list[str]:
        return [f"http://{self._mon_host(nd)}:{nd.http_port}" for nd in self.nodes]

    def _mon_host(self, nd: NatsNode) -> str:
        return self._monitor_host or nd.host

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> NatsCluster:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Write configs, start every node and wait until the full route mesh is up."""
        binary = find_nats_server(self._binary)
        if self.tls is not None:
            self.tls.check()
        if self._workdir_arg is not None:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="tickpath-nats-"))
        self._binary = binary
        self.nodes = []
        ports = [self._ports] * self.n if self._ports else _free_ports(self._hosts, 3)
        for i in range(self.n):
            cp, rp, hp = ports[i]
            self.nodes.append(
                NatsNode(
                    i,
                    self._hosts[i],
                    cp,
                    rp,
                    hp,
                    self.workdir / f"node{i}.conf",
                    self.workdir / f"node{i}.log",
                    self._prefixes[i],
                )
            )
        for nd in self.nodes:
            nd.config.write_text(self._config_text(nd), encoding="utf-8")
            nd.config.chmod(0o600)  # holds route and client credentials
        try:
            for nd in self.nodes:
                await self._spawn(nd)
            await self.wait_ready()
        except BaseException:
            await self.stop()
            raise
        log_event(log, logging.INFO, "nats_cluster_started", nodes=self.n, urls=",".join(self.client_urls))

    async def stop(self, timeout: float = 5.0) -> None:
        """Terminate every node (SIGTERM, then SIGKILL after ``timeout``) and remove the work dir."""
        await asyncio.gather(*(self._terminate(nd, timeout) for nd in self.nodes), return_exceptions=True)
        if self._own_workdir and self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def kill(self, index: int) -> None:
        """SIGKILL node ``index`` with no warning to clients or peers (a crashed server)."""
        nd = self._node(index)
        if nd.process is not None and nd.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                nd.process.send_signal(signal.SIGKILL)
            await nd.process.wait()

    async def restart(self, index: int) -> None:
        """Start node ``index`` again (same ports and config) and wait until it is routed."""
        nd = self._node(index)
        if nd.running:
            await self.kill(index)
        await self._spawn(nd)
        await self.wait_ready()

    async def wait_ready(self) -> None:
        """Wait until every running node is healthy and routed to every other running node."""
        deadline = time.monotonic() + self.ready_timeout
        running = [nd for nd in self.nodes if nd.running]
        while True:
            pending = []
            for nd in running:
                if not nd.running:
                    raise ConnectionFailedError(
                        f"nats-server node {nd.index} exited with {nd.process.returncode if nd.process else '?'}"
                        f": {self.log_tail(nd.index)}"
                    )
                ok = await asyncio.to_thread(self._node_ready, nd, len(running) - 1)
                if not ok:
                    pending.append(nd.index)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ConnectionFailedError(
                    f"nats-server nodes {pending} not ready after {self.ready_timeout:.0f} s: "
                    f"{self.log_tail(pending[0])}"
                )
            await asyncio.sleep(0.05)

    def log_tail(self, index: int, lines: int = 5) -> str:
        """Last lines of a node's log, for error messages."""
        try:
            text = self._node(index).log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    # -- internals -------------------------------------------------------------------------
    def _node(self, index: int) -> NatsNode:
        if not 0 <= index < len(self.nodes):
            raise ConfigError(f"no node {index}: the cluster has {len(self.nodes)} nodes")
        return self.nodes[index]

    def _node_ready(self, nd: NatsNode, peers: int) -> bool:
        base = f"http://{self._mon_host(nd)}:{nd.http_port}"
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1.0) as resp:
                if resp.status != 200:
                    return False
            if peers == 0:
                return True
            with urllib.request.urlopen(f"{base}/routez", timeout=1.0) as resp:
                routez = json.loads(resp.read())
        except (OSError, ValueError):
            return False
        # Each peer may briefly hold two routes (both sides dialled); count distinct peers.
        ids = {r.get("remote_id") for r in routez.get("routes") or []}
        return len(ids) >= peers

    async def _spawn(self, nd: NatsNode) -> None:
        assert self._binary is not None
        logfile = open(nd.log, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            nd.process = await asyncio.create_subprocess_exec(
                *_die_with_parent_prefix(),
                *nd.prefix,
                self._binary,
                "-c",
                str(nd.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the servers
            )
        except OSError as exc:
            raise ToolMissingError(f"cannot start nats-server ({self._binary}): {exc}") from exc
        finally:
            logfile.close()

    async def _terminate(self, nd: NatsNode, timeout: float) -> None:
        p = nd.process
        if p is None or p.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(p.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGKILL)
            await p.wait()

    def _config_text(self, nd: NatsNode) -> str:
        tls_files = (self.tls.cert, self.tls.key, self.tls.ca) if self.tls is not None else None
        return render_config(
            name=f"{self.cluster_name}-n{nd.index}",
            host=nd.host,
            client_port=nd.client_port,
            http_host=nd.host,
            http_port=nd.http_port,
            route_port=nd.route_port,
            routes=[(o.host, o.route_port) for o in self.nodes if o.index != nd.index],
            cluster_name=self.cluster_name,
            tls_files=tls_files,
            verify_clients=self.verify_clients,
            user=self.user,
            password=self.password,
            token=self.token,
            nkeys=self.nkeys,
            route_user=self._route_user,
            route_password=self._route_password,
            jetstream_dir=self.workdir / f"js{nd.index}" if self.jetstream else None,
        )


def render_config(
    *,
    name: str,
    host: str,
    client_port: int,
    route_port: int,
    routes: Sequence[tuple[str, int]],
    http_host: str = "127.0.0.1",
    http_port: int | None = None,
    cluster_name: str = "tickpath",
    tls_files: tuple[str | Path, str | Path, str | Path] | None = None,
    verify_clients: bool = False,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    nkeys: Sequence[str] = (),
    route_user: str = "route",
    route_password: str | None = None,
    jetstream_dir: str | Path | None = None,
) -> str:
    """The text of one server's config file (also used for remote servers by ``busbench remote``).

    ``tls_files`` is (cert, key, ca) as paths on the machine that runs the server; it secures
    client connections and, with mutual verification, routes. ``routes`` lists the other servers'
    (host, route port); route credentials protect the cluster port.
    """

    out = [
        f"server_name: {_q(name)}",
        f"listen: {_q(f'{host}:{client_port}')}",
        "max_payload: 8MB",
        'write_deadline: "10s"',
        'ping_interval: "30s"',
    ]
    if http_port is not None:
        out.append(f"http: {_q(f'{http_host}:{http_port}')}")
    if tls_files is not None:
        out += _tls_block(tls_files, "", verify_clients)
    out += _auth_block(token, nkeys, user, password)
    if routes:
        rp = route_password or ""
        urls = ", ".join(_q(f"nats-route://{route_user}:{rp}@{h}:{p}") for h, p in routes)
        out += [
            "cluster {",
            f"  name: {_q(cluster_name)}",
            f"  listen: {_q(f'{host}:{route_port}')}",
            "  authorization {",
            f"    user: {_q(route_user)}",
            f"    password: {_q(rp)}",
            "  }",
            f"  routes: [{urls}]",
        ]
        if tls_files is not None:
            out += _tls_block(tls_files, "  ", True)
        out.append("}")
    if jetstream_dir is not None:
        out += ["jetstream {", f"  store_dir: {_q(jetstream_dir)}", "  max_mem: 256MB", "  max_file: 2GB", "}"]
    return "\n".join(out) + "\n"


def _q(value: str | Path) -> str:
    return json.dumps(str(value))  # NATS config accepts JSON-style quoted strings


def _tls_block(files: tuple[str | Path, str | Path, str | Path], indent: str, verify: bool) -> list[str]:
    cert, key, ca = files
    lines = [f"cert_file: {_q(cert)}", f"key_file: {_q(key)}", f"ca_file: {_q(ca)}"]
    lines += [f"verify: {str(verify).lower()}", "timeout: 5"]
    return [f"{indent}tls {{", *(f"{indent}  {line}" for line in lines), f"{indent}}}"]


def _auth_block(token: str | None, nkeys: Sequence[str], user: str | None, password: str | None) -> list[str]:
    """A token, or NKey users (public keys) plus the password user if there is one, or that user."""
    if token:
        return ["authorization {", f"  token: {_q(token)}", "}"]
    if nkeys:
        users = [f"    {{ nkey: {_q(k)} }}" for k in nkeys]
        if user:
            users.append(f"    {{ user: {_q(user)}, password: {_q(password or '')} }}")
        return ["authorization {", "  users: [", *users, "  ]", "}"]
    if user:
        return ["authorization {", f"  user: {_q(user)}", f"  password: {_q(password or '')}", "}"]
    return []
