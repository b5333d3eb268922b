"""``ctq campaign load|list|status|pause|resume|cancel``: autodial campaigns."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import add_account_option, print_json, redis_client
from config import Settings
from scheduler import campaigns
from scheduler.campaigns import Campaign
from scheduler.windows import CallWindow
from tasks.campaign_rows import read_rows, write_rejects
from tasks.producer import Producer
from worker.errors import INVALID_INPUT, InvalidInput

LOAD_HELP = """Validate every row of FILE (.csv or .jsonl) as a callback and load the campaign.
Nothing loads if any row is bad, unless --skip-invalid: then the valid rows load and the
refused ones are written, with their reasons, to --rejects. Callbacks are released only inside
the call window (in the campaign's timezone; a window may cross midnight, e.g. 21:00-02:00),
at --per-minute, and no faster per phone than CTQ_CAMPAIGN_PHONE_INTERVAL seconds."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("campaign", help="autodial campaigns")
    actions = parser.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="load a campaign from a file", description=LOAD_HELP)
    load.add_argument("name")
    load.add_argument("file", type=Path)
    load.add_argument("--route-key", required=True, help="the auto-dial widget's routeKey")
    load.add_argument("--window", default="09:00-20:00", help="call window, HH:MM-HH:MM")
    load.add_argument("--days", default="mon-fri", help="e.g. mon-fri, sat,sun or daily")
    load.add_argument("--timezone", help="the campaign's timezone (default CTQ_TIMEZONE)")
    load.add_argument("--per-minute", type=int, default=10, help="callbacks released a minute")
    load.add_argument("--skip-invalid", action="store_true", help="load the valid rows only")
    load.add_argument("--rejects", type=Path, help="where refused rows go (FILE.rejects.jsonl)")
    add_account_option(load)
    load.set_defaults(run=run_load)
    listing = actions.add_parser("list", help="every campaign")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    for action, helptext in (
        ("status", "loaded, released, done, failed, left, ETA"),
        ("pause", "stop releasing"),
        ("resume", "release again"),
        ("cancel", "stop for good; rows not released are dropped"),
        ("delete", "forget a finished or cancelled campaign (its name can be loaded again)"),
    ):
        sub = actions.add_parser(action, help=helptext)
        sub.add_argument("name")
        if action == "status":
            sub.add_argument("--json", action="store_true")
        runs = {"status": run_status, "delete": run_delete}
        sub.set_defaults(run=runs.get(action, run_state))


def _progress(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return  # a bar redrawn with \r is for people, not for logs
    filled = int(30 * done / max(1, total))
    end = "\n" if done == total else ""
    print(
        f"\rvalidating [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def run_load(args: argparse.Namespace, settings: Settings) -> int:
    if args.per_minute < 1:
        raise InvalidInput("--per-minute must be at least 1")
    timezone = args.timezone or settings.timezone
    try:
        CallWindow.parse(args.window, args.days, timezone)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if not args.file.is_file():
        raise InvalidInput(f"no file {args.file}")
    rows = read_rows(args.file, args.route_key, _progress)
    if rows.refused and not args.skip_invalid:
        for _, _, problems in rows.refused:
            for problem in problems:
                print(problem, file=sys.stderr)
        print(
            f"refused: {len(rows.refused)} bad row(s); nothing was loaded "
            "(--skip-invalid loads the valid ones)",
            file=sys.stderr,
        )
        return INVALID_INPUT
    if rows.refused:
        rejects = args.rejects or args.file.with_name(args.file.name + ".rejects.jsonl")
        try:
            write_rejects(rejects, rows)
        except OSError as exc:
            raise InvalidInput(
                f"cannot write the refused rows to {rejects}: {exc.strerror}; nothing was loaded"
            ) from None
        print(f"{len(rows.refused)} row(s) refused, written to {rejects}", file=sys.stderr)
    campaign = Campaign(
        args.name,
        args.route_key,
        args.window,
        args.days,
        timezone,
        args.per_minute,
        campaigns.Lifecycle.ACTIVE,
        settings.account(args.account).name,
    )
    with Producer(settings) as producer:
        loaded = campaigns.load(producer, campaign, rows.valid)
    print(
        f"campaign {args.name}: {loaded} callback(s) loaded; window {args.window} "
        f"{args.days} {timezone}, {args.per_minute} a minute"
    )
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    client = redis_client(settings)
    now = campaigns.utcnow()
    shown = [campaigns.status(client, name, now) for name in campaigns.names(client)]
    if args.json:
        print_json(shown)
        return 0
    if not shown:
        print("no campaigns")
    for s in shown:
        print(
            f"{s['name']:<20} {s['state']:<9} loaded {s['loaded']}  left {s['left']}  {s['window']}"
        )
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    shown = campaigns.status(redis_client(settings), args.name, campaigns.utcnow())
    if args.json:
        print_json(shown)
        return 0
    print(
        f"campaign  {shown['name']} ({shown['state']}), window {shown['window']}, "
        f"{shown['per_minute']} a minute"
    )
    print(
        f"loaded {shown['loaded']}  released {shown['released']}  done {shown['done']}  "
        f"failed {shown['failed']}  left {shown['left']}  ETA {shown['eta'] or '-'}"
    )
    return 0


def run_state(args: argparse.Namespace, settings: Settings) -> int:
    state = {
        "pause": campaigns.Lifecycle.PAUSED,
        "resume": campaigns.Lifecycle.ACTIVE,
        "cancel": campaigns.Lifecycle.CANCELLED,
    }[args.action]
    campaigns.set_state(redis_client(settings), args.name, state)
    print(f"campaign {args.name}: {state}")
    return 0


def run_delete(args: argparse.Namespace, settings: Settings) -> int:
    campaigns.delete(redis_client(settings), args.name)
    print(f"campaign {args.name}: deleted")
    return 0
