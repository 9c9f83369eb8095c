"""Connections to the web viewer before their request has arrived: bounded in time, per address and in all.

A client that opens a socket and trickles its request a byte at a time would hold a connection (and a
thread) for as long as it likes, and a few dozen such sockets used to lock the token holder out (503).
Before a request is complete nothing is known about the client, not even whether it has the token, so:

* every request (line, headers and body) must arrive within ``REQUEST_DEADLINE_S`` of the connection,
  however slowly its bytes come (:class:`DeadlineReader`); past it the connection is closed;
* at most ``MAX_PENDING_PER_IP`` connections from one address and ``MAX_PENDING`` in all may be waiting
  for their request; a new connection over either cap closes the *oldest* waiting one (of that address
  for the per-address cap), so a flood of slow sockets cannot keep a new, quick client out: its request
  arrives in milliseconds and leaves the waiting set before the flood gets round to it;
* only a connection whose request arrived takes one of the server's fixed number of slots (streams and
  answers), released when the answer is done.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections import OrderedDict

REQUEST_DEADLINE_S = 5.0
MAX_PENDING = 32
MAX_PENDING_PER_IP = 8


class PendingConnections:
    """The connections still waiting for their request, oldest first; ``admit`` evicts past the caps."""

    def __init__(self, max_pending: int = MAX_PENDING, per_ip: int = MAX_PENDING_PER_IP):
        self.max_pending, self.per_ip = max_pending, per_ip
        self._lock = threading.Lock()
        self._waiting: OrderedDict[socket.socket, str] = OrderedDict()
        self.evicted = 0

    def admit(self, sock: socket.socket, ip: str) -> None:
        with self._lock:
            victims = []
            same = [s for s, a in self._waiting.items() if a == ip]
            if len(same) >= self.per_ip:
                victims.append(same[0])
            elif len(self._waiting) >= self.max_pending:
                victims.append(next(iter(self._waiting)))
            for v in victims:
                del self._waiting[v]
            self._waiting[sock] = ip
            self.evicted += len(victims)
        for v in victims:
            close_now(v)

    def arrived(self, sock: socket.socket) -> None:
        """The request is in: no longer waiting (idempotent)."""
        with self._lock:
            self._waiting.pop(sock, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)


def close_now(sock: socket.socket) -> None:
    """Wake the thread blocked reading ``sock`` (it sees the end of the stream) and close it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class DeadlineReader(io.RawIOBase):
    """A socket's read side that raises ``TimeoutError`` once ``deadline`` (``time.monotonic()``) passes,
    however the bytes are spaced: each receive waits at most for what is left of the deadline. The
    socket's own timeout (for sends) is put back after each receive."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        saved = self.sock.gettimeout()
        self.sock.settimeout(left if saved is None else min(left, saved))
        try:
            return self.sock.recv_into(b)
        finally:
            self.sock.settimeout(saved)
