"""The server's direct connection to a Ray actor: authenticated TCP, Ray out of the job's path.

The actor listens on its node's address (a free port) and serves only a client that proves,
by the HMAC challenge of ``multiprocessing.connection`` both ways, that it holds the key: 32
random bytes the server made and passed in the actor's constructor arguments (so the key is as
secret as the Ray cluster, whose members can run any code on it anyway). The handshake reads
at most 256 raw bytes a message and unpickles nothing: a stranger who reaches the port never
gets a pickle of theirs loaded; only after it are the messages pickles (the server's own).

Unlike ``multiprocessing.connection.Listener.accept``, which runs the handshake on the
accepting thread with no time limit, each connection shakes hands on a thread of its own
within :data:`HANDSHAKE_S` seconds, and at most :data:`MAX_CONNECTIONS` are open at once: a
client that connects and stays silent holds up nobody. ``TCP_NODELAY`` both ways: a message
over 16 KB goes as a header and a body, which Nagle's algorithm would hold for the peer's
delayed acknowledgement (40 ms).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge

log = logging.getLogger("playground.worker")
HANDSHAKE_S = 10  # a peer that has not proved the key by then is dropped
CONNECT_S = 10
MAX_CONNECTIONS = 8  # the server needs one; the rest is room for a reconnection


def _receive_timeout(conn: Connection, seconds: int) -> None:
    """A blocking read on ``conn`` fails after ``seconds`` (0: waits for ever)."""
    sock = socket.socket(fileno=conn.fileno())
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))
    finally:
        sock.detach()  # the descriptor stays the connection's


def _connection(sock: socket.socket) -> Connection:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Connection(sock.detach())


def dial(address: tuple[str, int], key: bytes) -> Connection:
    """A connection to the actor listening at ``address``, once both sides proved the key
    (``multiprocessing.AuthenticationError`` or ``OSError`` when they did not)."""
    sock = socket.create_connection(address, timeout=CONNECT_S)
    sock.settimeout(None)
    conn = _connection(sock)
    try:
        _receive_timeout(conn, HANDSHAKE_S)
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
        _receive_timeout(conn, 0)
    except BaseException:
        conn.close()
        raise
    return conn


class JobListener:
    """Accepts the server's connections on ``host`` and gives each, once authenticated, to
    ``serve`` (on its own thread, until it returns)."""

    def __init__(self, host: str, key: bytes, serve: Callable[[Connection], None]) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, 0), family=family)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.key = key
        self.serve = serve
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.refused = 0  # connections that did not prove the key
        threading.Thread(target=self._accept_loop, name="job-listener", daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, peer = self.sock.accept()
            except OSError:
                return  # closed
            if not self.slots.acquire(blocking=False):
                log.warning("refused a connection from %s: %d open already", peer, MAX_CONNECTIONS)
                sock.close()
                continue
            threading.Thread(
                target=self._handle, args=(sock, peer), name="job-connection", daemon=True
            ).start()

    def _handle(self, sock: socket.socket, peer: object) -> None:
        try:
            conn = _connection(sock)
            try:
                _receive_timeout(conn, HANDSHAKE_S)
                deliver_challenge(conn, self.key)
                answer_challenge(conn, self.key)
                _receive_timeout(conn, 0)
            except Exception as exc:  # a wrong key, a silent or garbled peer: nothing read
                self.refused += 1
                log.warning("refused a connection from %s: %s", peer, exc or type(exc).__name__)
                conn.close()
                return
            try:
                self.serve(conn)
            finally:
                conn.close()
        finally:
            self.slots.release()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread (close alone won't)
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
