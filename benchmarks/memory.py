"""f) Memory of a large input: `python -m benchmarks.memory [--small] [--leads N]`.

Writes a comment file of N leads (1,000,000 by default, about 100 MB), starts a throwaway
redis-server, and runs `ctq enqueue comment --file F` and `ctq stage comment --file F` (twice:
onto an empty staging list, then appended to it) as child processes. Reports each child's
peak RSS (``wait4``'s ``ru_maxrss``), its wall time, and the longest Redis command it caused
(``SLOWLOG``: the commit, or the move onto the staging list, during which Redis serves
nobody else).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.helpers import ROOT, RedisServer, ctq_env, free_port

FULL_LEADS = 1_000_000
SMALL_LEADS = 20_000


def write_leads(path: Path, count: int) -> int:
    """``count`` distinct leads, one JSON line each; the file's size in bytes."""
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, count, 10_000):
            out.write(
                "".join(
                    json.dumps(
                        {
                            "matching": [
                                {"type": "call", "callParams": {"callId": 10_000_000 + n}}
                            ],
                            "addComment": f"nightly lead {n}: hot, called back",
                        }
                    )
                    + "\n"
                    for n in range(start, min(count, start + 10_000))
                )
            )
    return path.stat().st_size


def run_child(args: list[str], env: dict[str, str], client: redis.Redis) -> dict[str, Any]:
    """Run ``ctq ARGS``; its peak RSS, wall time, output lines and longest Redis command."""
    client.slowlog_reset()
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args], env=env, cwd=ROOT, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        output, errors = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise RuntimeError(f"ctq {' '.join(args)} exited {child.returncode}: {errors[-2000:]}")
    slowest = max((int(e["duration"]) for e in client.slowlog_get(128)), default=0)
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "seconds": round(seconds, 1),
        "redis_longest_command_ms": round(slowest / 1000, 1),
        "output_lines": len(output.splitlines()),
        "last_line": output.strip().splitlines()[-1] if output.strip() else "",
    }


def measure(leads: int) -> dict[str, Any]:
    """Enqueue and stage ``leads`` leads from one file; what each run cost."""
    directory = Path(tempfile.mkdtemp(prefix="ctq-memory-"))
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.config_set("slowlog-log-slower-than", 1000)  # µs: commands of 1 ms or more
        path = directory / "leads.jsonl"
        size = write_leads(path, leads)
        env = ctq_env(REDIS_URL=server.url, CTQ_DATA_DIR=str(directory / "data"))
        enqueued = run_child(["enqueue", "comment", "--file", str(path)], env, client)
        if enqueued["output_lines"] != -(-leads // 100):
            raise RuntimeError(f"expected {-(-leads // 100)} job ids, got {enqueued}")
        first = run_child(["stage", "comment", "--file", str(path)], env, client)
        appended = run_child(["stage", "comment", "--file", str(path)], env, client)
        if not appended["last_line"].startswith(f"{2 * leads} lead(s) staged"):
            raise RuntimeError(f"expected {2 * leads} leads staged, got {appended}")
        return {
            "leads": leads,
            "file_mb": round(size / 2**20, 1),
            "enqueue": enqueued,
            "stage": first,
            "stage_appended": appended,
        }
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def blocked(run: dict[str, Any]) -> str:
    """The longest Redis command, as the table shows it (SLOWLOG keeps those of 1 ms or more)."""
    longest = run["redis_longest_command_ms"]
    return f"{longest:,} ms" if longest else "< 1 ms"


def rows(f: dict[str, Any]) -> list[str]:
    """Table rows for ``benchmarks.run``."""
    e, s, a = f["enqueue"], f["stage"], f["stage_appended"]
    leads = f"{f['leads']:,} leads ({f['file_mb']} MB file)"
    return [
        f"| f) {leads} enqueued, `ctq enqueue comment` | peak RSS {e['peak_rss_mb']} MB, "
        f"{e['seconds']} s; the commit blocks Redis {blocked(e)} | ≤ 300 MB RSS |",
        f"| f) {leads} staged, `ctq stage comment` | peak RSS {s['peak_rss_mb']} MB, "
        f"{s['seconds']} s; the move blocks Redis {blocked(s)} onto an empty list, "
        f"{blocked(a)} appended to {f['leads']:,} staged ({a['peak_rss_mb']} MB, "
        f"{a['seconds']} s) | ≤ 300 MB RSS |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help=f"{SMALL_LEADS:,} leads (CI)")
    parser.add_argument("--leads", type=int, help="how many leads (overrides --small)")
    parser.add_argument("--json", type=Path, help="where to write the results")
    args = parser.parse_args(argv)
    result = measure(args.leads or (SMALL_LEADS if args.small else FULL_LEADS))
    print("\n".join(["| scenario | measured | target |", "|---|---|---|", *rows(result)]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
