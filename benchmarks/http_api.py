"""h) Enqueueing over HTTP: `python -m benchmarks.http_api [--small]`.

Starts a throwaway redis-server and a real `ctq serve` on loopback (no ctq workers: this
measures the enqueue, not the delivery), then:
- single-callback POSTs from 32 concurrent clients (one kept-alive connection each, driven by
  `benchmarks.http_load`) for 20 s, after 2 s of the same load to warm the server up:
  - at a fixed 500 requests/s in all (as wrk2 does), p50 and p99 of the round trips, each
    counted from the moment its request was due: the latency a client sees at that load;
  - flat out (each client sends again as soon as it has its answer): the most requests/s,
    and the round trips of that saturated queue (32 / rate on average, by Little's law);
  with `ctq serve --workers 2` (a process per core) and, flat out, with one process;
- one NDJSON POST of 20,000 leads (the whole request: read, validate, pack, commit);
- beside them, `ctq enqueue` for the same input: the same 20,000-lead file, and a single
  callback (a new process per job, as a shell script would call it).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import http_load
from benchmarks.memory import write_leads
from tests.api_process import ApiProcess, start_api_process
from tests.helpers import ROOT, RedisServer, ctq_env, free_port, stop_process_group

KEY = "bench-key"
WORKERS = (2, 1)  # `ctq serve --workers 2`, a process per core of this machine; then one
FULL = {"clients": 32, "seconds": 20.0, "rate": 500, "leads": 20_000}
SMALL = {"clients": 8, "seconds": 2.0, "rate": 100, "leads": 2_000}
WARM_UP_SECONDS = 2.0  # the first requests make the process's Redis connections and builder
RUNS = itertools.count(1)  # each load run posts phones of its own (``callbacks``)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, kind: str) -> int:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": kind}
    conn.request("POST", path, body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    return answer.status


def callbacks(run: int) -> http_load.Request:
    """Client n's i-th callback of run ``run`` (1-9): a distinct phone each, across runs too,
    so none is answered as a repeat (cheaper: the commit finds the first job's id)."""
    if not 1 <= run <= 9:
        raise ValueError(f"run {run}: the phone numbers have room for runs 1-9")
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def callback(n: int, i: int) -> bytes:
        body = json.dumps({"routeKey": "bench", "phone": f"79{run}{n:02d}{i:06d}"}).encode()
        return http_load.post("/v1/jobs/callback", headers, body)

    return callback


def single_posts(
    api: ApiProcess, clients: int, seconds: float, rate: float | None = None
) -> dict[str, Any]:
    """Distinct callbacks (no idempotent shortcut) from ``clients`` connections for
    ``seconds``: flat out, or ``rate`` per second in all; after a warm-up, flat out."""
    host, port = api.url.removeprefix("http://").split(":")
    warm_up, measured = callbacks(next(RUNS)), callbacks(next(RUNS))
    http_load.run(host, int(port), clients, WARM_UP_SECONDS, warm_up, expect=202)
    load = http_load.run(host, int(port), clients, seconds, measured, expect=202, rate=rate)
    every = sorted(load.latencies)
    return {
        "clients": clients,
        "rate": rate,
        "seconds": round(load.seconds, 1),
        "requests": len(every),
        "requests_per_s": round(len(every) / load.seconds),
        "p50_ms": round(statistics.median(every) * 1000, 1),
        "p99_ms": round(every[min(len(every) - 1, int(len(every) * 0.99))] * 1000, 1),
        "failed": len(load.unexpected),
    }


def ndjson_post(api: ApiProcess, path: Path) -> dict[str, Any]:
    host, port = api.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    body = path.read_bytes()
    began = time.perf_counter()
    status = _post(conn, "/v1/jobs/comment", body, "application/x-ndjson")
    seconds = time.perf_counter() - began
    conn.close()
    if status != 202:
        raise RuntimeError(f"NDJSON POST answered {status}")
    return {"seconds": round(seconds, 2), "mb": round(len(body) / 2**20, 1)}


def cli_seconds(args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return round(time.perf_counter() - began, 2)


def measure(size: dict[str, Any]) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="ctq-http-"))
    server = RedisServer(free_port(), directory)
    server.start()
    env = ctq_env(REDIS_URL=server.url, CTQ_DATA_DIR=str(directory / "data"), CTQ_API_KEYS=KEY)
    try:
        leads = directory / "leads.jsonl"
        write_leads(leads, size["leads"])
        single: dict[int, dict[str, Any]] = {}
        at_rate: dict[str, Any] = {}
        for workers in WORKERS:
            with serving(env, directory / f"api-{workers}.log", workers) as api:
                if workers == WORKERS[0]:
                    at_rate = single_posts(api, size["clients"], size["seconds"], size["rate"])
                single[workers] = single_posts(api, size["clients"], size["seconds"])
            server_flush(server)
        with serving(env, directory / "api.log", 1) as api:
            bulk = ndjson_post(api, leads)
        server_flush(server)
        cli_file = cli_seconds(["enqueue", "comment", "--file", str(leads)], env)
        callback = json.dumps({"routeKey": "bench", "phone": "79990000001"})
        cli_single = cli_seconds(["enqueue", "callback", callback], env)
        return {
            "at_rate": at_rate,
            "single": single[WORKERS[0]],
            "single_one_process": single[1],
            "ndjson": {"leads": size["leads"], **bulk, "cli_seconds": cli_file},
            "cli_single_callback_seconds": cli_single,
        }
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path, workers: int) -> Iterator[ApiProcess]:
    """``ctq serve --workers N``, answering, then stopped by its process group."""
    api = start_api_process(env, log, "--workers", str(workers))
    try:
        api.wait_ready()
        yield api
    finally:
        stop_process_group(api.process)


def server_flush(server: RedisServer) -> None:
    import redis

    with redis.Redis.from_url(server.url) as client:
        client.flushall()


def rows(h: dict[str, Any]) -> list[str]:
    """Table rows for ``benchmarks.run``."""
    s, one, n = h["single"], h["single_one_process"], h["ndjson"]
    r = h["at_rate"]
    return [
        f"| h) single-callback POSTs at {r['rate']:,} req/s from {r['clients']} clients, "
        f"{r['seconds']} s, `ctq serve --workers {WORKERS[0]}` | p50 {r['p50_ms']} ms, p99 "
        f"{r['p99_ms']} ms ({r['requests']:,} requests, {r['failed']} failed) | p99 ≤ 50 ms |",
        f"| h) single-callback POSTs flat out, {s['clients']} clients, {s['seconds']} s, "
        f"`ctq serve --workers {WORKERS[0]}` | {s['requests_per_s']:,} req/s, p50 "
        f"{s['p50_ms']} ms, p99 {s['p99_ms']} ms ({s['requests']:,} requests, {s['failed']} "
        f"failed); one process: {one['requests_per_s']:,} req/s, p50 {one['p50_ms']} ms, p99 "
        f"{one['p99_ms']} ms; `ctq enqueue callback`: {h['cli_single_callback_seconds']} s per "
        "process | ≥ 500 req/s |",
        f"| h) one NDJSON POST of {n['leads']:,} leads ({n['mb']} MB) | {n['seconds']} s; "
        f"`ctq enqueue comment --file` {n['cli_seconds']} s | ≤ 2 s |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="a quick run (CI)")
    args = parser.parse_args(argv)
    result = measure(SMALL if args.small else FULL)
    print("\n".join(["| scenario | measured | target |", "|---|---|---|", *rows(result)]))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
