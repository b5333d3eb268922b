"""``ctq status [JOB_ID] [--json] [--watch [--interval S]]``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import redis

from cli import watch
from cli.common import print_json, redis_client, when
from config import Settings
from worker.errors import NotFound
from worker.status import job_detail, overview


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="queues and job counts, or one job",
        description="Queue depths and job counts (queued, running, retrying, delayed, done, "
        "dead); with JOB_ID, that job's state, attempts, last outcome and, for comments, "
        "the result of every lead.",
    )
    parser.add_argument("job_id", nargs="?", metavar="JOB_ID")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="show it again every --interval seconds until Ctrl-C (redrawn in place on a "
        "terminal; with --json one JSON object a line); Redis going away is shown, not fatal",
    )
    parser.add_argument(
        "--interval", type=positive_seconds, default=2.0, metavar="S", help="default 2"
    )
    parser.set_defaults(run=run)


def positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"seconds above 0, e.g. 0.5: {text!r}")
    return seconds


def run(args: argparse.Namespace, settings: Settings) -> int:
    read: Callable[[redis.Redis], dict[str, Any]]
    render: Callable[[dict[str, Any]], str]
    if args.job_id is None:
        read, render = partial(read_overview, settings=settings), format_overview
    else:
        read, render = partial(read_job, job_id=args.job_id), format_job
    if args.watch:
        return watch.run(watch.Snapshots(settings, read, render, args.json), args.interval)
    data = read(redis_client(settings))
    print_json(data) if args.json else print(render(data))
    return 0


def read_overview(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    return overview(client, settings).model_dump(mode="json")


def read_job(client: redis.Redis, job_id: str) -> dict[str, Any]:
    detail = job_detail(client, job_id)
    if detail is None:
        raise NotFound(f"no job {job_id} (unknown, or expired after the retention period)")
    return detail.shown()


def format_overview(data: dict[str, Any]) -> str:
    queues = "  ".join(f"{name} {depth}" for name, depth in data["queues"].items())
    jobs = "  ".join(f"{state} {n}" for state, n in data["jobs"].items())
    lines = [
        f"queues        {queues}  (in flight {data['in_flight']})",
        f"jobs          {jobs}",
        f"dead letters  {data['dead_letters']}",
        f"staged leads  {data['staged_leads']} (for the nightly run)",
        format_beat(data["beat_last_tick"]),
        *format_workers(data["workers"]),
        format_redis(data["redis"]),
    ]
    for name, lim in data["limiters"].items():
        paused = f"  paused {lim['paused_for_s']:.1f}s" if lim["paused_for_s"] else ""
        lines.append(
            f"limiter       {name}: {lim['permits_in_window']}/{lim['limit']} permits in the "
            f"last {lim['window_s']:g}s, {lim['booked_ahead']} booked ahead, waiting realtime "
            f"{lim['waiting_realtime']} bulk {lim['waiting_bulk']}, 429s {lim['http_429']}, "
            f"margin {lim['margin_ms']:g} ms (spread {lim['spread_ms']:g} ms), "
            f"pace {lim['effective_per_s']:g}/s{paused}"
        )
    for pause in data["paused"]:
        code = (
            f" (code {pause['code']})"
            if pause["code"]
            else (f" (HTTP {pause['http_status']})" if pause["http_status"] else "")
        )
        lines.append(
            f"PAUSED        site {pause['site']} {pause['lane']} lane: {pause['reason']}{code} "
            f"since {when(pause['since'])}; next probe {when(pause['probe_at'])}; "
            f"{pause['held']} job(s) held; `ctq resume` lifts it"
        )
    for site, points in data["points_today"].items():
        budget = points["budget"]
        left = "no budget set" if budget is None else f"left {points['left']} of {budget}"
        spent = "  (spent: waiting for the reset)" if points["exhausted"] else ""
        lines.append(
            f"points today  site {site}: used {points['used']}  reserved {points['reserved']}  "
            f"{left}{spent}"
        )
    if len(data["accounts"]) > 1:
        lines += format_accounts(data["accounts"])
    return "\n".join(lines)


def format_accounts(accounts: dict[str, dict[str, Any]]) -> list[str]:
    """One line an account: its messages waiting, jobs sent and dead, points, pauses."""
    lines = []
    for name, shown in accounts.items():
        points = shown["points_today"]
        budget = "" if points["budget"] is None else f"/{points['budget']}"
        paused = f"  PAUSED {','.join(shown['paused_lanes'])}" if shown["paused_lanes"] else ""
        lines.append(
            f"account       {name} (site {shown['site']}, weight {shown['weight']}): queued "
            f"realtime {shown['queues']['realtime']} bulk {shown['queues']['bulk']}, done "
            f"{shown['jobs']['done']}, dead {shown['jobs']['dead']}, points "
            f"{points['used']}{budget}, staged {shown['staged_leads']}{paused}"
        )
    return lines


# Beat sends the delay mover every second; this much silence means it is not running.
BEAT_SILENT_AFTER = 10.0


def format_beat(last_tick: float | None) -> str:
    if last_tick is None:
        return "beat          never seen: start `ctq beat` (delayed jobs and campaigns wait for it)"
    age = max(0.0, time.time() - last_tick)
    if age > BEAT_SILENT_AFTER:
        return (
            f"BEAT SILENT   last tick {age:.0f} s ago ({when(last_tick)}): is `ctq beat` "
            "running? delayed jobs and campaigns wait for it"
        )
    return f"beat          last tick {age:.1f} s ago"


def format_workers(workers: list[dict[str, Any]]) -> list[str]:
    if not workers:
        return ["workers       none seen in the last 15 s: start `ctq worker`"]
    return [
        f"worker        {w['host']} pid {w['pid']}: {len(w['jobs'])} job(s) in flight, "
        f"seen {max(0.0, time.time() - w['seen']):.1f} s ago"
        for w in workers
    ]


def format_redis(mem: dict[str, Any]) -> str:
    used = f"used {mem['used_bytes'] / 2**20:.1f} MiB"
    if not mem["max_bytes"]:
        return f"redis         {used}, no maxmemory, policy {mem['policy']}"
    limit = f"of maxmemory {mem['max_bytes'] / 2**20:.1f} MiB"
    if mem["full"]:
        return (
            f"REDIS FULL    {used} {limit}: writes are refused; producers exit 3, "
            "workers wait until there is room"
        )
    return f"redis         {used} {limit}, policy {mem['policy']}"


def format_job(detail: dict[str, Any]) -> str:
    lines = [
        f"job       {detail['id']}  {detail['kind']} ({detail['lane']} lane)",
        f"state     {detail['state']}  after {detail['attempts']} attempt(s)",
        f"created   {when(detail['created_at'])}   updated {when(detail['updated_at'])}",
    ]
    last = detail.get("last")
    if last:
        code = f" code {last['code']}" if last.get("code") is not None else ""
        http = f" HTTP {last['http_status']}" if last.get("http_status") else ""
        lines.append(
            f"last      {last['outcome']} ({last['reason']}){http}{code} {last['message']}".rstrip()
        )
    for index, lead in enumerate(detail.get("lead_results") or []):
        matched = (
            (lead.get("callId") and f"call {lead['callId']}")
            or (lead.get("requestId") and f"request {lead['requestId']}")
            or ""
        )
        outcome = (
            f"commented {matched}".rstrip() if lead["commented"] else f"error: {lead['error']}"
        )
        lines.append(f"lead {index:<4} {outcome}")
    return "\n".join(lines)
