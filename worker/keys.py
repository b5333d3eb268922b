"""Every Redis key ctq writes, in one place.

Celery's own queue lists (``realtime``, ``bulk``, ``maintenance``) and kombu's ``unacked``
hash are named by Celery/kombu; they are listed here so ``ctq status`` reads them by name.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.accounts import DEFAULT as DEFAULT_ACCOUNT

PREFIX = "ctq"

REALTIME = "realtime"
BULK = "bulk"
MAINTENANCE = "maintenance"
LANES = (REALTIME, BULK)
# Queues in the order a worker takes from them: tiny maintenance ticks, then realtime, then bulk.
CONSUME_ORDER = (MAINTENANCE, REALTIME, BULK)


def queue(lane: str, account: str = DEFAULT_ACCOUNT) -> str:
    """The Celery queue of ``account``'s jobs in ``lane``: the lane's own name for the default
    account, ``LANE.ACCOUNT`` for the others (a queue each, so none waits behind another's)."""
    return lane if account == DEFAULT_ACCOUNT else f"{lane}.{account}"


def lane_of(queue_name: str) -> str:
    """The lane a queue of ``queue`` belongs to."""
    return queue_name.split(".", 1)[0]


def queues(lane: str, accounts: Iterable[str]) -> list[str]:
    """Every account's queue in ``lane``."""
    return [queue(lane, account) for account in accounts]


def consume_order(accounts: Iterable[str]) -> list[str]:
    """Every queue a worker takes from, in CONSUME_ORDER's lane order."""
    names = list(accounts)
    return [q for lane in CONSUME_ORDER for q in (queues(lane, names) if lane in LANES else [lane])]


KOMBU_UNACKED = "unacked"  # hash: delivery tag -> [message, exchange, queue] (JSON)
KOMBU_UNACKED_INDEX = "unacked_index"  # zset: delivery tag -> delivery time (worker's clock)

STATS = f"{PREFIX}:stats"  # hash: job state -> number of jobs in it


def account_stats(account: str) -> str:
    """Hash: job state -> number of ``account``'s jobs in it (kept with ``STATS``; the name is
    also built in transition.lua)."""
    return f"{STATS}:{account}"


DELAYED = f"{PREFIX}:delayed"  # zset: job id -> unix time it is due
DLQ = f"{PREFIX}:dlq"  # hash: job id -> dead-letter record (JSON)
DLQ_INDEX = f"{PREFIX}:dlq:index"  # zset: job id -> unix time it was dead-lettered


def replayed(job_id: str) -> str:
    """String: the id of the job dead letter ``job_id`` was replayed as, written with its
    removal and kept CTQ_IDEMPOTENCY_WINDOW, so a replay that finds it gone says which job."""
    return f"{DLQ}:replayed:{job_id}"


WORKERS = f"{PREFIX}:workers"  # hash: host:pid -> {host, pid, jobs, seen} (heartbeats)
LOST_SWEEP = f"{PREFIX}:lost:sweep"  # string: held by the process whose turn it is to sweep
# hash: job state -> "SCORE JOB_ID" of the last job the lost-message sweep looked at in that
# state (its next page starts after it); "" to start from the oldest again
LOST_SWEEP_CURSOR = f"{PREFIX}:lost:sweep:cursor"
BEAT_TICK = f"{PREFIX}:beat:tick"  # string: unix time the delay mover last ran (beat is alive)
STAGED_COMMENTS = f"{PREFIX}:staged:comment"  # list: leads (JSON) waiting for the nightly run


def staged_comments(account: str = DEFAULT_ACCOUNT) -> str:
    """List of ``account``'s leads (JSON) waiting for the nightly run."""
    return STAGED_COMMENTS if account == DEFAULT_ACCOUNT else f"{STAGED_COMMENTS}:{account}"


CAMPAIGNS = f"{PREFIX}:campaigns"  # set: campaign names
LIMITERS = f"{PREFIX}:limiters"  # set: every limiter key a worker has used
BREAKERS = f"{PREFIX}:breakers"  # set: the key of every open breaker (``breaker``)


def limiter(egress_ip: str, host: str) -> str:
    """Base of one limiter's keys: ``:permits`` zset of booked slots (server µs), ``:pause``
    (resume time after a 429), ``:waiting:<lane>`` zset of waiters, ``:stats`` hash (429s),
    ``:rtt`` and ``:margin`` (the learned margin), ``:served:<lane>`` hash of the accounts'
    virtual times and ``:turns:<lane>`` zset of the accounts waiting for a turn (fair share),
    ``:realtime-recent-permits`` zset of the realtime permits of the last seconds (bulk
    leaves room for more),
    ``:giving-way`` zset of bulk jobs stepping aside for waiting callbacks, ``:used:<minute>``
    (``permits_used``)."""
    return f"{PREFIX}:limiter:{egress_ip}:{host}"


def permits_used(limiter_key: str, minute: int) -> str:
    """Hash of the permits of one limiter used in one minute (unix time // 60, server clock):
    second of the minute -> requests sent. Expires once out of the dashboard's 15 minutes."""
    return f"{limiter_key}:used:{minute}"


# Counters for /metrics, kept in Redis so every process and host adds to the same ones.
REQUESTS_SENT = f"{PREFIX}:metrics:requests"  # hash: "provider|kind|outcome" -> requests


def permit_wait(lane: str) -> str:
    """Hash: the histogram of the waits for a permit in ``lane``: ``le`` bucket -> number (not
    cumulative), ``count``, ``sum`` (seconds)."""
    return f"{PREFIX}:metrics:permit_wait:{lane}"


SITES = f"{PREFIX}:sites"  # set: every site id a worker has sent for


def points(site_id: str, day: str) -> str:
    """Hash of one site's points on one day (in CTQ_TIMEZONE): used, exhausted."""
    return f"{PREFIX}:points:{site_id}:{day}"


def points_spent_at(points_key: str) -> str:
    """Hash of the points committed on one site-day, by when: start of a 10-minute bucket
    (unix time) -> points (the dashboard's burn-down). Expires with the day's points."""
    return f"{points_key}:by_time"


def points_reservations(points_key: str) -> str:
    """Zset of the points reserved by permits not settled yet: ``member/cost`` -> the server
    time (µs) the reservation lapses (its permit's request can no longer be in flight)."""
    return f"{points_key}:reserved"


def breaker(site_id: str, lane: str) -> str:
    """Hash of an open breaker (reason, since, probe_at, probe_job); ``:held`` zset of the jobs
    it holds, ``:probe`` the lock of the one probe in flight, ``:unknown`` the number of
    answers with an unknown API code in a row."""
    return f"{PREFIX}:breaker:{site_id}:{lane}"


def idempotency(key: str) -> str:
    """Maps a producer's idempotency key to the job it first enqueued (expires after the window)."""
    return f"{PREFIX}:idem:{key}"


def pozvonim_token(uid: str, egress_ip: str) -> str:
    """The Pozvonim token of ``uid``, valid only from ``egress_ip`` (``:fetching`` is the lock
    of the one worker fetching it)."""
    return f"{PREFIX}:pozvonim:token:{uid}:{egress_ip}"


def campaign(name: str) -> str:
    """Hash of a campaign's settings and counters; ``:rows`` list of rows not released yet
    (JSON), ``:jobs`` list of the job ids released."""
    return f"{PREFIX}:campaign:{name}"


def nightly_run(day: str, account: str = DEFAULT_ACCOUNT) -> str:
    """Set by the one nightly run of ``day`` for ``account``, so a second beat cannot send
    its batch again."""
    suffix = "" if account == DEFAULT_ACCOUNT else f":{account}"
    return f"{PREFIX}:nightly:{day}{suffix}"


def lease(job_id: str) -> str:
    """Held while one worker runs the job (owner token host:pid:job:nonce, renewed by its
    heartbeat), so a redelivered copy does not run beside it."""
    return f"{PREFIX}:lease:{job_id}"


def job(job_id: str) -> str:
    """Hash holding one job: payload, state, attempts, last outcome, results."""
    return f"{PREFIX}:job:{job_id}"


def jobs_in(state: str) -> str:
    """Zset of the jobs in ``state``: job id -> unix time it entered that state (``ctq jobs``).
    Kept by every write of a job's state; finished jobs leave it when their record expires."""
    return f"{PREFIX}:jobs:{state}"


def batch(batch_id: str) -> str:
    """List of the jobs one producer staged (JSON, one a job), seen by no worker until
    ``commit_batch.lua`` makes them visible; ``:payloads`` hash of their bodies and
    ``:messages`` of their queue messages (job id -> text); ``:receipt`` what the commit did
    (set when it ran). Staging keys expire."""
    return f"{PREFIX}:batch:{batch_id}"


def batch_payloads(batch_id: str) -> str:
    return f"{batch(batch_id)}:payloads"


def batch_messages(batch_id: str) -> str:
    return f"{batch(batch_id)}:messages"


def batch_events(batch_id: str) -> str:
    """Hash of the staged jobs' task-sent events (job id -> kombu's message), published by the
    commit for the jobs it queues."""
    return f"{batch(batch_id)}:events"


def batch_receipt(batch_id: str) -> str:
    return f"{batch(batch_id)}:receipt"


def staging_comments(batch_id: str) -> str:
    """List of the leads (JSON) one ``stage_comments`` call has validated so far; moved onto
    ``STAGED_COMMENTS`` in one step when the whole input is valid. Expires."""
    return f"{PREFIX}:staging:comment:{batch_id}"


def staging_receipt(staging_id: str) -> str:
    """String set when the leads of ``staging_comments(staging_id)`` were moved. Expires."""
    return f"{PREFIX}:staged:receipt:{staging_id}"
