"""g) Fair share between accounts: one account's large batch queued, then two small ones."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.scenarios import COMMENT_PATH, RATE, RETRY_ENV, wait_finished
from benchmarks.stack import Stack
from config import Settings
from tasks.producer import Producer
from tests.helpers import TEST_TOKEN

FULL = {"big": 10_000, "small": 500}
SMALL = {"big": 1_000, "small": 100}
SITES = {"big": "2001", "small-1": "2002", "small-2": "2003"}
LEAD = {"matching": [{"type": "call", "callParams": {"callId": 1}}], "addComment": "bench"}


def accounts_file(directory: Path) -> Path:
    """Three accounts; the sandbox takes its own token for any site it has no account for."""
    path = directory / "accounts.toml"
    path.write_text(
        "".join(
            f'[accounts.{name}]\nsite_id = "{site}"\ntoken = "{TEST_TOKEN}"\n'
            for name, site in SITES.items()
        ),
        encoding="utf-8",
    )
    return path


def fair_share(stack: Stack, size: dict[str, int]) -> dict[str, Any]:
    """When are the two small accounts done, and how long do all the leads take?"""
    stack.reset()
    path = accounts_file(stack.directory)
    settings = Settings(
        _env_file=None,
        REDIS_URL=stack.redis_server.url,
        CTQ_DATA_DIR=str(stack.directory / "data"),
        CTQ_ACCOUNTS_FILE=str(path),
    )
    requests_ = (size["big"] + 2 * size["small"]) // 100
    with stack.running_workers({**RETRY_ENV, "CTQ_ACCOUNTS_FILE": str(path)}):
        with Producer(settings) as producer:
            started = time.time()
            producer.comments([LEAD] * size["big"], account="big")
            smalls_at = time.time()
            for name in ("small-1", "small-2"):
                producer.comments([LEAD] * size["small"], account=name)
        wait_finished(stack, requests_, timeout=requests_ / RATE * 4 + 60)
    received = stack.received()
    sent = [r for r in received if r["path"] == COMMENT_PATH and r["status"] == 200]
    last = {site: max(r["time"] for r in sent if r["site_id"] == site) for site in SITES.values()}
    small_done = max(last[SITES["small-1"]], last[SITES["small-2"]]) - smalls_at
    total = max(last.values()) - started
    ideal = requests_ / RATE
    return {
        "big_leads": size["big"],
        "small_leads": size["small"],
        "requests": requests_,
        "small_done_after_s": round(small_done, 2),
        # Each small account's requests at a third of the rate, as three accounts share it.
        "small_fair_s": round(size["small"] / 100 / (RATE / 3), 1),
        "total_s": round(total, 2),
        "ideal_s": round(ideal, 1),
        "total_vs_ideal": round(total / ideal, 3),
        "http_429": sum(r["status"] == 429 for r in received),
    }


def rows(g: dict[str, Any]) -> list[str]:
    return [
        f"| g) 2 accounts × {g['small_leads']:,} leads queued behind one account's "
        f"{g['big_leads']:,} | small ones done {g['small_done_after_s']} s after they were "
        f"enqueued (a fair third of the rate: {g['small_fair_s']} s); all {g['requests']} "
        f"requests in {g['total_s']} s = {g['total_vs_ideal']} × ideal ({g['ideal_s']} s); "
        f"{g['http_429']} × 429 | ≤ 8 s; ≤ 1.05 × ideal; 0 × 429 |"
    ]
