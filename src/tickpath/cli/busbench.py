"""``tickpath busbench``: end-to-end latency through a NATS cluster (publish on A, receive on B)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tickpath import runtime
from tickpath.cli.paths import ensure_writable_dir
from tickpath.errors import CheckFailedError, ConfigError

DESCRIPTION = """\
Measure what a NATS cluster costs a message: the client publishes on server A and subscribes on
server B (after checking that its interest crossed the route), with one monotonic clock for both
ends. Messages follow an open-loop schedule and carry their intended send time, so latency is
reported twice: from the intended time (free of coordinated omission: a stalled publisher shows
up) and from the actual send time (what naive tools report).

  tickpath busbench local                           # 2-server cluster, 256 B at 1,000/s for 5 s
  tickpath busbench local --tls --auth --out res/   # per-run CA and credentials; .hgrm + JSON
  tickpath busbench local --matrix --out res/       # 256..4096 B x 1k..100k/s + spectrum.png
  tickpath busbench run --pub nats://A:4222 --sub nats://B:4222 --rate 10000 --duration 30

Lost messages (after a bounded wait of --drain-timeout) make the exit status non-zero (9);
every figure is still printed and written first.
"""


def _csv(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(x) for x in text.split(",") if x.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list: {exc}") from exc

    return parse


def _rate(text: str) -> float:
    t = text.strip().lower()
    mult = 1_000 if t.endswith("k") else 1
    return float(t.rstrip("k")) * mult


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("workload")
    g.add_argument(
        "--size",
        type=_csv(int),
        default=(256,),
        metavar="BYTES[,..]",
        help="payload size(s), at least 16 bytes (sequence + intended time); default 256",
    )
    g.add_argument(
        "--rate",
        type=_csv(_rate),
        default=(1_000.0,),
        metavar="MSGS[,..]",
        help="target rate(s) in messages per second, 'k' allowed (10k); default 1000",
    )
    g.add_argument(
        "--matrix", action="store_true", help="run the original grid: 256,512,1024,4096 B x 1k,10k,100k msg/s"
    )
    length = g.add_mutually_exclusive_group()  # both given: one would be silently ignored
    length.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (default 5)")
    length.add_argument("--count", type=int, help="measured messages per run (instead of --duration)")
    g.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up, discarded (default 1)")
    g.add_argument(
        "--drain-timeout",
        type=float,
        default=2.0,
        help="seconds to wait for stragglers after the last send; the rest is lost (default 2)",
    )
    g.add_argument(
        "--interest-timeout",
        type=float,
        default=5.0,
        help="seconds to wait for the subscription to cross the route (default 5)",
    )
    _pacing(g)
    _output(p)


def _pacing(g: Any) -> None:
    """How the publisher keeps its schedule (and the stall that shows coordinated omission)."""
    g.add_argument(
        "--busy-poll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="poll the sockets without ever sleeping between sends: no wake-up on the path of a "
        "message (p50 at 1k msg/s about a third lower on a 2-core VM), but one core runs at 100%% "
        "for the whole run, which the output states. Default: on up to 5,000 msg/s",
    )
    g.add_argument(
        "--spin-us",
        type=float,
        default=0.0,
        help="sleep mode only: busy-poll this many µs after each send while awaiting its echo (default 0)",
    )
    g.add_argument(
        "--lead-us",
        type=float,
        default=60.0,
        help="sleep mode only: wake up to this many µs (at most a quarter of the interval) before "
        "each send and poll until it is due: timer wake-ups run late on VMs (default 60)",
    )
    g.add_argument(
        "--pause-at",
        type=int,
        metavar="N",
        help="stall the publisher before measured message N (shows coordinated omission)",
    )
    g.add_argument("--pause-ms", type=float, default=0.0, help="length of that stall in ms")


def _output(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write <run>.json, .intended.hgrm, .actual.hgrm (and matrix.json, spectrum.png)",
    )
    o.add_argument("--samples", action="store_true", help="also write every raw sample as CSV (needs --out)")
    o.add_argument("--json", action="store_true", help="print JSON on stdout instead of the tables")


def _client_auth(p: argparse.ArgumentParser) -> None:
    a = p.add_argument_group("TLS and credentials")
    a.add_argument("--tls-ca", type=Path, help="CA bundle to trust (tls:// URLs use the system store otherwise)")
    a.add_argument("--tls-cert", type=Path, help="client certificate (PEM)")
    a.add_argument("--tls-key", type=Path, help="client key (PEM)")
    a.add_argument("--no-verify-host", action="store_true", help="do not check the server name")
    a.add_argument("--user", help="user name (or put user:pass in the URL)")
    a.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    a.add_argument("--token-env", metavar="VAR", help="environment variable holding an auth token")
    a.add_argument("--nkey-seed", type=Path, metavar="FILE", help="file holding a user NKey seed (SU...)")
    a.add_argument("--creds", type=Path, metavar="FILE", help="NATS .creds file (user JWT + NKey seed)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "busbench",
        help="end-to-end latency through a NATS cluster",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="busbench_command", metavar="MODE", required=True)
    _add_run(sub)
    _add_local(sub)
    _add_remote(sub)


def _add_run(sub: Any) -> None:
    r = sub.add_parser(
        "run",
        help="measure an existing cluster: publish on --pub, receive on --sub",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--pub", required=True, metavar="URL", help="server A, e.g. nats://10.0.0.1:4222")
    r.add_argument("--sub", required=True, metavar="URL", help="server B, routed to A")
    _common(r)
    _client_auth(r)
    r.set_defaults(func=cmd_run)


def _add_local(sub: Any) -> None:
    loc = sub.add_parser(
        "local",
        help="start a real nats-server cluster here, measure, tear down",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    loc.add_argument("--servers", type=int, default=2, help="cluster size (default 2; A=first, B=second)")
    loc.add_argument("--tls", action="store_true", help="TLS for clients and routes, CA made for this run")
    loc.add_argument("--auth", action="store_true", help="require a user/password made for this run")
    loc.add_argument(
        "--netns",
        action="store_true",
        help="root only: servers and client in their own network namespaces (veth + bridge)",
    )
    loc.add_argument("--nats-server", metavar="PATH", help="nats-server binary (default: from PATH)")
    loc.add_argument(
        "--server-procs",
        type=int,
        metavar="N",
        help="GOMAXPROCS of each server (default: this machine's cores / servers, at least 1, "
        "as a container with that CPU limit gets; 0: Go's default, all cores each)",
    )
    _common(loc)
    loc.set_defaults(func=cmd_local)


def _add_remote(sub: Any) -> None:
    rem = sub.add_parser(
        "remote",
        help="provision server A, server B and a client with Terraform, measure, destroy",
        description=DESCRIPTION
        + """
remote: applies terraform/aws (three instances in one placement group) or terraform/baremetal
(three machines you already have), generates TLS material and credentials for the run, starts
the servers, runs the client there, downloads its results into --out and destroys everything,
also after errors and Ctrl-C. Example:

  tickpath busbench remote --provider aws --var region=eu-west-1 --var availability_zone=eu-west-1a \\
      --var operator_cidr=203.0.113.7/32 --var instance_type_client=c6in.2xlarge --matrix --out res/
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rem.add_argument("--provider", choices=("aws", "baremetal"), required=True, help="which Terraform module")
    rem.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Terraform variable (VALUE may be JSON, e.g. the bare-metal hosts object)",
    )
    rem.add_argument("--vars-file", type=Path, help="JSON file of Terraform variables")
    rem.add_argument("--ssh-key", type=Path, help="private key for the machines (bare metal)")
    rem.add_argument("--terraform", default="terraform", help="terraform binary (default: from PATH)")
    _common(rem)
    rem.set_defaults(func=cmd_remote)


def _bench_config(args: argparse.Namespace, pub: str, sub: str) -> Any:
    from tickpath.busbench.config import (
        DEFAULT_RATES,
        DEFAULT_SIZES,
        BenchConfig,
        MatrixConfig,
        TlsOptions,
    )
    from tickpath.nats.url import Credentials

    if args.samples and not args.out:
        raise ConfigError("--samples needs --out DIR to write the CSV into")
    tls = None
    if getattr(args, "tls_ca", None) or getattr(args, "tls_cert", None):
        tls = TlsOptions(args.tls_ca, args.tls_cert, args.tls_key, not args.no_verify_host)
    seed, creds_file = getattr(args, "nkey_seed", None), getattr(args, "creds", None)
    for f in (seed, creds_file):
        if f is not None and not f.is_file():
            raise ConfigError(f"credentials file not found: {f}")
    creds = Credentials(
        getattr(args, "user", None),
        _env(getattr(args, "password_env", None)),
        _env(getattr(args, "token_env", None)),
        str(seed) if seed else None,
        str(creds_file) if creds_file else None,
    )
    base = BenchConfig(
        pub,
        sub,
        size=args.size[0],
        rate=args.rate[0],
        duration=args.duration,
        count=args.count,
        warmup=args.warmup,
        drain_timeout=args.drain_timeout,
        interest_timeout=args.interest_timeout,
        tls=tls,
        credentials=creds,
        keep_samples=args.samples,
        pause_at=args.pause_at,
        pause_ms=args.pause_ms,
        spin_us=args.spin_us,
        lead_us=args.lead_us,
        busy_poll=args.busy_poll,
    )
    if args.matrix:
        return MatrixConfig(base, DEFAULT_SIZES, DEFAULT_RATES)
    if len(args.size) > 1 or len(args.rate) > 1:
        return MatrixConfig(base, tuple(args.size), tuple(args.rate))
    return base


def _env(var: str | None) -> str | None:
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise ConfigError(f"environment variable {var} is not set")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    from tickpath.busbench.local import expand, run_many

    cfg = _bench_config(args, args.pub, args.sub)
    saver = _Saver(args)
    with _Progress(args.json) as prog:
        results = runtime.run(run_many(expand(cfg), progress=prog.update, on_result=saver))
    return _finish(args, results, saver)


def cmd_local(args: argparse.Namespace) -> int:
    from tickpath.busbench.local import LocalConfig, run_local

    local = LocalConfig(
        servers=args.servers,
        tls=args.tls,
        auth=args.auth,
        netns=args.netns,
        binary=args.nats_server,
        server_procs=args.server_procs,
    )
    cfg = _bench_config(args, "nats://127.0.0.1:4222", "nats://127.0.0.1:4223")  # replaced by the cluster's
    saver = _Saver(args)
    with _Progress(args.json) as prog:
        results = runtime.run(run_local(local, cfg, progress=prog.update, on_result=saver))
    return _finish(args, results, saver)


def cmd_remote(args: argparse.Namespace) -> int:
    from tickpath.busbench.remote import RemoteConfig, Triangle

    if args.json:
        raise ConfigError("remote writes its results into --out; --json is not available here")
    variables: dict[str, Any] = {}
    if args.vars_file:
        try:
            variables.update(json.loads(args.vars_file.read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read --vars-file {args.vars_file}: {exc}") from exc
    for item in args.var:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var expects KEY=VALUE, not {item!r}")
        try:
            variables[key] = json.loads(value)
        except ValueError:
            variables[key] = value
    cfg = RemoteConfig(
        args.provider,
        variables,
        out=args.out or Path("busbench-remote"),
        ssh_key=args.ssh_key,
        terraform=args.terraform,
    )
    bench = _bench_config(args, "nats://server-a:4222", "nats://server-b:4222")
    out = runtime.run(Triangle(cfg, bench).run())
    status = out / "exit-status"
    code = int(status.read_text().strip() or 1) if status.exists() else 1
    print(f"results downloaded to {out} (client exit status {code}); all machines destroyed")
    return code


class _Saver:
    """Writes each run's files as soon as it ends (a later failure or Ctrl-C loses nothing)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.out: Path | None = args.out
        self.samples: bool = args.samples
        self.written: list[str] = []
        if self.out is not None:  # fail before measuring, not after
            ensure_writable_dir(self.out, f"output directory {self.out}")

    def __call__(self, result: Any) -> None:
        from tickpath.busbench import output

        if self.out is not None:
            self.written += [str(p) for p in output.write_run(result, self.out, samples=self.samples).values()]


def _finish(args: argparse.Namespace, results: Sequence[Any], saver: _Saver) -> int:
    from tickpath.busbench import output

    written = saver.written
    if args.out and len(results) > 1:
        (args.out / "matrix.json").write_text(json.dumps(output.matrix_summary(results), indent=2))
        written += [str(args.out / "matrix.json"), str(output.plot_spectrum(results, args.out / "spectrum.png"))]
    if args.json:
        doc: dict[str, Any] = {"runs": [r.to_dict() for r in results], "files": written}
        if len(results) > 1:
            doc["matrix"] = output.matrix_summary(results)
        print(json.dumps(doc, indent=2))
    else:
        for r in results:
            print(output.report_text(r), end="\n\n")
        if len(results) > 1:
            print(output.matrix_text(results))
        if written:
            print(f"wrote {len(written)} files to {args.out}")
    bad = [r for r in results if not r.ok]
    if bad:
        lost = sum(r.lost + r.warmup_lost for r in bad)
        unsent = sum(r.unsent for r in bad)
        errs = "; ".join(e for r in bad for e in r.errors)
        raise CheckFailedError(
            f"{lost} message(s) lost, {unsent} unsent in {len(bad)} run(s)" + (f": {errs}" if errs else "")
        )
    return 0


class _Progress:
    """A rich progress bar on stderr (quiet when stderr is not a terminal or with --json)."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet or not sys.stderr.isatty()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if not self._quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("received {task.fields[received]:,}"),
                console=Console(stderr=True),
                transient=True,
                # each refresh takes the GIL from the measuring thread
                refresh_per_second=2,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, label: str, sent: int, received: int, total: int) -> None:
        if self._bar is None:
            return
        if label not in self._tasks:
            self._tasks[label] = self._bar.add_task(label, total=total, received=0)
        self._bar.update(self._tasks[label], completed=sent, received=received)
