"""A TCP proxy in front of a redis-server that can lose the reply to one command: Redis runs
it, the client never hears back (a connection lost at the worst moment)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class RedisProxy:
    """Forwards 127.0.0.1:<port> to the Redis at ``upstream_port``; stop with ``close``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        # The reply to the next command whose bytes hold this (a script's SHA) is lost.
        self.lose_reply_to: bytes | None = None
        self.refuse_after_loss = False  # then Redis looks unreachable to every new connection
        self.refusing = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            muted = threading.Event()
            threading.Thread(
                target=self._to_redis, args=(client, upstream, muted), daemon=True
            ).start()
            threading.Thread(
                target=self._to_client, args=(upstream, client, muted), daemon=True
            ).start()

    def _to_redis(
        self, client: socket.socket, upstream: socket.socket, muted: threading.Event
    ) -> None:
        while data := _recv(client):
            if self.lose_reply_to and self.lose_reply_to in data:
                self.lose_reply_to = None
                muted.set()  # the reply to this command never reaches the client
                upstream.sendall(data)
                _forward_for(0.3, client, upstream)  # its tail, if it came in parts; Redis runs it
                self.refusing = self.refuse_after_loss
                _close(client, upstream)
                return
            if not _send(upstream, data):
                break
        _close(client, upstream)

    def _to_client(
        self, upstream: socket.socket, client: socket.socket, muted: threading.Event
    ) -> None:
        while data := _recv(upstream):
            if not muted.is_set() and not _send(client, data):
                break
        _close(client, upstream)

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            _close(sock)


def _forward_for(seconds: float, client: socket.socket, upstream: socket.socket) -> None:
    """Pass on what the client sends for ``seconds``: the rest of a long command."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        client.settimeout(left)
        try:
            data = client.recv(65536)
        except OSError:  # the time is up (a timeout is one), or the client went
            return
        if not data or not _send(upstream, data):
            return


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
