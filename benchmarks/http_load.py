"""A closed-loop HTTP load generator light enough to share a machine with the server it loads.

Each client keeps one connection and sends its next request as soon as the last answer has
arrived. One event loop (uvloop) serves every client, writing prepared bytes and reading
just the status line, the headers and ``Content-Length`` bytes: a thread per client and
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


def post(path: str, headers: dict[str, str], body: bytes, host: str = "127.0.0.1") -> bytes:
    """An HTTP/1.1 POST with a body, as bytes."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run(host: str, port: int, clients: int, seconds: float, request: Request, expect: int) -> Load:
    """``clients`` connections sending ``request(n, i)`` back to back for ``seconds``."""
    return uvloop.run(_run(host, port, clients, seconds, request, expect))


async def _run(
    host: str, port: int, clients: int, seconds: float, request: Request, expect: int
) -> Load:
    load = Load()
    connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(
            _client(reader, writer, n, deadline, request, expect, load)
            for n, (reader, writer) in enumerate(connections)
        )
    )
    load.seconds = time.perf_counter() - began
    for _, writer in connections:
        writer.close()
    return load


async def _client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    n: int,
    deadline: float,
    request: Request,
    expect: int,
    load: Load,
) -> None:
    sent = 0
    while (began := time.perf_counter()) < deadline:
        writer.write(request(n, sent))
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(_content_length(head))
        load.latencies.append(time.perf_counter() - began)
        status = int(head[9:12])
        if status != expect:
            load.unexpected.append(status)
        sent += 1


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError(f"an answer without Content-Length: {head[:200]!r}")
