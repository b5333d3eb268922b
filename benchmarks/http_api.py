"""h) Enqueueing over HTTP: `python -m benchmarks.http_api [--small]`.

Starts a throwaway redis-server and a real `ctq serve` process on loopback (no workers: this
measures the enqueue, not the delivery), then:
- single-callback POSTs from 32 concurrent clients (threads, one kept-alive connection
  each) for 20 s: requests/s, p50, p99 of each request's round trip;
- one NDJSON POST of 20,000 leads (the whole request: read, validate, pack, commit);
- beside them, `ctq enqueue` for the same input: the same 20,000-lead file, and a single
  callback (a new process per job, as a shell script would call it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.memory import write_leads
from tests.api_process import ApiProcess, start_api_process
from tests.helpers import ROOT, RedisServer, ctq_env, free_port, stop_process_group

KEY = "bench-key"
FULL = {"clients": 32, "seconds": 20.0, "leads": 20_000}
SMALL = {"clients": 8, "seconds": 2.0, "leads": 2_000}


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, kind: str) -> int:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": kind}
    conn.request("POST", path, body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    return answer.status


def single_posts(api: ApiProcess, clients: int, seconds: float) -> dict[str, Any]:
    """Distinct callbacks (no idempotent shortcut) from ``clients`` threads for ``seconds``."""
    host, port = api.url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[int] = []
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        start.wait()
        sent = 0
        while time.monotonic() < deadline[0]:
            phone = f"799{n:02d}{sent:06d}"
            body = json.dumps({"routeKey": "bench", "phone": phone}).encode()
            began = time.perf_counter()
            status = _post(conn, "/v1/jobs/callback", body, "application/json")
            latencies[n].append(time.perf_counter() - began)
            if status != 202:
                failures.append(status)
            sent += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    every = sorted(t for per_client in latencies for t in per_client)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "requests_per_s": round(len(every) / elapsed),
        "p50_ms": round(statistics.median(every) * 1000, 1),
        "p99_ms": round(every[min(len(every) - 1, int(len(every) * 0.99))] * 1000, 1),
        "failed": len(failures),
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
    api = start_api_process(env, directory / "api.log")
    try:
        api.wait_ready()
        leads = directory / "leads.jsonl"
        write_leads(leads, size["leads"])
        single = single_posts(api, size["clients"], size["seconds"])
        server_flush(server)
        bulk = ndjson_post(api, leads)
        server_flush(server)
        cli_file = cli_seconds(["enqueue", "comment", "--file", str(leads)], env)
        callback = json.dumps({"routeKey": "bench", "phone": "79990000001"})
        cli_single = cli_seconds(["enqueue", "callback", callback], env)
        return {
            "single": single,
            "ndjson": {"leads": size["leads"], **bulk, "cli_seconds": cli_file},
            "cli_single_callback_seconds": cli_single,
        }
    finally:
        stop_process_group(api.process)
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def server_flush(server: RedisServer) -> None:
    import redis

    with redis.Redis.from_url(server.url) as client:
        client.flushall()


def rows(h: dict[str, Any]) -> list[str]:
    """Table rows for ``benchmarks.run``."""
    s, n = h["single"], h["ndjson"]
    return [
        f"| h) single-callback POSTs, {s['clients']} concurrent clients, {s['seconds']} s | "
        f"{s['requests_per_s']:,} req/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms "
        f"({s['requests']:,} requests, {s['failed']} failed); `ctq enqueue callback`: "
        f"{h['cli_single_callback_seconds']} s per process | ≥ 500 req/s, p99 ≤ 50 ms |",
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
