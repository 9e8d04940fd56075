"""``tickpath gcp setup|clear``: Pub/Sub topics, BigQuery tables and the subscriptions between them."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from tickpath.errors import ConfigError, InfraError
from tickpath.gcp.apply import Backend, StepResult, apply_plan, clear_tables, raise_on_failure
from tickpath.gcp.plan import TICKPATH_TABLES, GcpConfig, setup_plan

EPILOG = """\
setup creates, in order (each only if missing; anything existing but different is an error):
  Pub/Sub topics crypto.binance.<channel>, crypto.binance.session (the feed's session rows)
    and crypto.binance.dead-letter
  BigQuery dataset PROJECT.DATASET and tables trades, tickers, l2, feed_sessions,
    partitioned by DAY(event_date), clustered by symbol, venue (feed_sessions by venue)
  IAM: roles/bigquery.dataEditor on the dataset for the Pub/Sub service agent
    (service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com), publisher on the
    dead-letter topic and subscriber on each subscription so dead-lettering works
  BigQuery subscriptions crypto.binance.<channel>.bigquery writing into the tables, and
    crypto.binance.session.bigquery into feed_sessions

Credentials: Application Default Credentials (gcloud auth application-default login).
exit codes: 0 done; 2 bad arguments; 8 no credentials, or a step failed (a Google API error, or an
  existing resource that differs from the plan).

examples:
  tickpath gcp setup --project my-proj --dry-run     print the plan, touch nothing
  tickpath gcp setup --project my-proj               apply it (safe to re-run)
  tickpath gcp clear --project my-proj --yes         empty tickpath's tables
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gcp",
        help="set up or clear Pub/Sub + BigQuery for the feed",
        description="Google Cloud resources for tickpath's feed and dq.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="gcp_action", metavar="ACTION", required=True)
    for name, helptext in (
        ("setup", "create topics, dataset, tables, grants and subscriptions"),
        ("clear", "truncate tickpath's tables (after confirmation)"),
    ):
        a = actions.add_parser(name, help=helptext, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("--project", required=True, help="GCP project id")
        a.add_argument("--dataset", default="tickpath", help="BigQuery dataset (default %(default)s)")
        a.add_argument("--location", default="US", help="BigQuery location (default %(default)s)")
        a.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "setup":
            a.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
            a.add_argument("--project-number", help="skip looking the project number up")
            a.add_argument("--channels", default="trades,ticker,l2", help="channels (default %(default)s)")
            a.add_argument(
                "--max-delivery-attempts",
                type=int,
                default=5,
                help="attempts before a message is dead-lettered (default %(default)s)",
            )
            a.set_defaults(func=setup)
        else:
            a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            a.set_defaults(func=clear)


def _config(args: argparse.Namespace) -> GcpConfig:
    kw = {}
    if hasattr(args, "channels"):
        kw = {
            "channels": tuple(c.strip() for c in args.channels.split(",") if c.strip()),
            "max_delivery_attempts": args.max_delivery_attempts,
            "project_number": args.project_number,
        }
    return GcpConfig(project=args.project, dataset=args.dataset, location=args.location, **kw)  # type: ignore[arg-type]


def _backend(cfg: GcpConfig) -> Backend:
    from tickpath.gcp.apply import GoogleBackend

    return GoogleBackend(cfg)


def setup(args: argparse.Namespace, backend: Backend | None = None) -> int:
    cfg = _config(args)
    console = Console(stderr=args.json)
    if args.dry_run:
        steps = setup_plan(cfg, cfg.project_number or "PROJECT_NUMBER")
        if args.json:
            sys.stdout.write(json.dumps([s.to_dict() for s in steps], indent=2) + "\n")
        else:
            console.print(f"[bold]plan[/] for project {cfg.project} ({len(steps)} steps, nothing applied):")
            for i, s in enumerate(steps, 1):
                console.print(f"  {i:2}. {s.describe()}")
        return 0
    backend = backend or _backend(cfg)
    number = cfg.project_number or backend.project_number(cfg.project)
    steps = setup_plan(cfg, number)

    def show(r: StepResult) -> None:
        colour = {"created": "green", "updated": "green", "exists": "dim", "failed": "red", "skipped": "yellow"}[
            r.status
        ]
        console.print(f"  [{colour}]{r.status:8}[/] {r.step.describe()}" + (f"  {r.message}" if r.message else ""))

    results = apply_plan(steps, backend, None if args.json else show)
    if args.json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    raise_on_failure(results)
    return 0


def clear(args: argparse.Namespace, backend: Backend | None = None, ask: object = input) -> int:
    cfg = _config(args)
    if not args.yes:
        if not sys.stdin.isatty() and ask is input:
            raise ConfigError("refusing to truncate without confirmation: pass --yes")
        answer = ask(
            f"Truncate {', '.join(TICKPATH_TABLES)} in {cfg.project}.{cfg.dataset}? "  # type: ignore[operator]
            f"Type the dataset name to confirm: "
        )
        if str(answer).strip() != cfg.dataset:
            print("not confirmed; nothing truncated", file=sys.stderr)
            return 1
    backend = backend or _backend(cfg)
    results = clear_tables(cfg, backend)
    if args.json:
        sys.stdout.write(json.dumps([{"table": t, "status": s, "message": m} for t, s, m in results]) + "\n")
    else:
        for t, s, m in results:
            print(f"  {s:8} {t}" + (f"  {m}" if m else ""))
    failed = [f"{t}: {m}" for t, s, m in results if s == "failed"]
    if failed:
        raise InfraError("; ".join(failed))
    return 0
