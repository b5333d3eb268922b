"""An HTTP load generator light enough to share a machine with the server it loads.

Closed loop (``rate=None``): each client keeps one connection and sends its next request as
soon as the last answer has arrived, so the server runs flat out; the round trips then
measure its queue (32 clients at 1,000 req/s wait 32 ms on average, by Little's law).

Fixed rate (``rate=R``, as wrk2 does): the clients send R requests per second in total on a
schedule fixed in advance, and each round trip counts from the moment its request was due,
not from when a client that fell behind got to send it (no "coordinated omission"): the
latency a client sees at that load.

One event loop (uvloop) serves every client, writing prepared bytes and reading just the
status line, the headers and ``Content-Length`` bytes: a thread per client and
``http.client`` took about as much CPU as the server it measured, on the same two cores.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvloop

# Client n's i-th request, as bytes on the wire.
Request = Callable[[int, int], bytes]


@dataclass
class Load:
    """Every request's round trip in seconds, and the statuses that were not expected."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    reconnects: int = 0  # connections the server closed (Connection: close)


def post(path: str, headers: dict[str, str], body: bytes, host: str = "127.0.0.1") -> bytes:
    """An HTTP/1.1 POST with a body, as bytes."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run(
    host: str,
    port: int,
    clients: int,
    seconds: float,
    request: Request,
    expect: int,
    rate: float | None = None,
) -> Load:
    """``clients`` connections sending ``request(n, i)`` for ``seconds``: back to back, or
    ``rate`` requests per second in all (client n's i-th due at (i * clients + n) / rate)."""

    async def load_them() -> Load:
        load = Load()
        connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
        began = time.perf_counter()
        deadline = began + seconds

        def due(n: int, i: int) -> float | None:
            return None if rate is None else began + (i * clients + n) / rate

        await asyncio.gather(
            *(
                _client(host, port, connection, n, deadline, due, request, expect, load)
                for n, connection in enumerate(connections)
            )
        )
        load.seconds = time.perf_counter() - began
        return load

    return uvloop.run(load_them())


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _client(
    host: str,
    port: int,
    connection: Connection | None,
    n: int,
    deadline: float,
    due: Callable[[int, int], float | None],
    request: Request,
    expect: int,
    load: Load,
) -> None:
    """Requests back to back or when due; an answer with ``Connection: close`` ends the
    connection, and the next request opens a new one (its time counts in that request's)."""
    sent = 0
    while True:
        began = time.perf_counter()
        when = due(n, sent)
        if when is None and began >= deadline:
            break
        if when is not None:
            # Every request due before the deadline is sent and counted, however late the
            # client is by then: the slowest answers are the ones a deadline would cut.
            if when >= deadline:
                break
            if when > began:
                await asyncio.sleep(when - began)
            began = when
        if connection is None:
            connection = await asyncio.open_connection(host, port)
        reader, writer = connection
        writer.write(request(n, sent))
        head = await reader.readuntil(b"\r\n\r\n")
        headers = _headers(head)
        closing = headers.get(b"connection", b"").lower() == b"close"
        if b"content-length" in headers:
            await reader.readexactly(int(headers[b"content-length"]))
        elif closing:
            await reader.read()  # the body runs to the end of the connection
        else:
            raise ValueError(f"an answer without Content-Length: {head[:200]!r}")
        load.latencies.append(time.perf_counter() - began)
        status = int(head[9:12])
        if status != expect:
            load.unexpected.append(status)
        if closing:
            load.reconnects += 1
            writer.close()
            connection = None
        sent += 1
    if connection is not None:
        connection[1].close()


def _headers(head: bytes) -> dict[bytes, bytes]:
    """An answer's headers, names in lower case."""
    found = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        found[name.strip().lower()] = value.strip()
    return found
