"""uvicorn's HTTP/1.1 protocol (h11), with the playground's answers where uvicorn answers
by itself, before the app runs.

- A request uvicorn cannot parse gets the one error body (``bad_request``) and the security
  headers, not uvicorn's plain-text 400 without them.
- A connection must send a request's headers within ``request_timeout`` seconds (uvicorn
  waits forever once a byte has arrived: its keep-alive timer only covers silence), so that
  slow clients cannot hold connections by dribbling headers. The body has the same deadline,
  kept by :class:`server.middleware.BodyGuard`.

uvicorn takes the protocol class as ``Config(http=...)``; this overrides its
``send_400_response`` and adds a timer, nothing else.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.errors import error_body
from server.security import HEADERS

BAD_REQUEST = json.dumps(
    error_body("bad_request", "The request is not valid HTTP/1.1; it was not read.")
).encode()


class PlaygroundH11Protocol(H11Protocol):
    """H11Protocol with JSON 400s and a deadline for each request's headers."""

    request_timeout: float = 60.0  # set per server by :func:`protocol`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._headers_timer is None and (self.cycle is None or self.cycle.response_complete):
            # the first bytes of a request: its headers must be in before the deadline
            waiting_for = self.cycle
            self._headers_timer = self.loop.call_later(
                self.request_timeout, self._headers_late, waiting_for
            )
        super().data_received(data)

    def _headers_late(self, waiting_for: Any) -> None:
        self._headers_timer = None
        if self.cycle is waiting_for and not self.transport.is_closing():
            self.transport.close()  # no request came whole: nothing to answer to

    def connection_lost(self, exc: Exception | None) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        if self._headers_timer is not None:  # the next request gets its own deadline
            self._headers_timer.cancel()
            self._headers_timer = None
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BAD_REQUEST)).encode()),
            (b"connection", b"close"),
            *HEADERS,
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=BAD_REQUEST),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def protocol(request_timeout: float) -> type[PlaygroundH11Protocol]:
    """The protocol class for one server, with its header deadline."""
    return type(
        "PlaygroundH11Protocol", (PlaygroundH11Protocol,), {"request_timeout": request_timeout}
    )
