"""gzip for JSON answers above a size, and for nothing else.

Only ``application/json`` bodies sent in one piece (every route's JSONResponse) are
compressed: Server-Sent Events (training metrics) stream through untouched, never held back
to fill a buffer, and static files keep their ETag / 304 handling as StaticFiles sends them
(their ``Content-Encoding``, were they compressed here, would change their bytes under the
same ETag). Level 1, from ``bench/bench_gzip.py`` (2 cores, loaded machine): LeNet-5's run
as the page asks it (u8) 32.0 KB -> 18.8 KB in 0.38 ms; level 6 gives 18.1 KB for 0.74 ms,
so its extra 0.7 KB costs more CPU time than it saves on a 100 Mbit/s link (0.06 ms), and
level 9 gives nothing more. A body under one TCP segment (~1.4 KB) is sent as it is: it
takes one packet either way. No brotli: the standard library has none.
"""

from __future__ import annotations

import zlib

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIN_BYTES = 1400  # about one TCP segment's payload: smaller bodies take one packet anyway
LEVEL = 1  # the fastest: bench_gzip.py shows 6 and 9 save little more, for 2× and 7× the CPU
IN_THREAD_BYTES = 256 * 1024  # a bigger body (~2 ms and up) is compressed off the event loop


def gzip_bytes(body: bytes, level: int = LEVEL) -> bytes:
    """``body`` as a gzip member (what ``Content-Encoding: gzip`` means), mtime 0."""
    c = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    return c.compress(body) + c.flush()


def _accepts_gzip(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"accept-encoding":
            return b"gzip" in value.lower()
    return False


class GzipJson:
    """Compress JSON responses of at least ``minimum_size`` bytes for clients that accept
    gzip; everything else passes through as it is, message by message."""

    def __init__(self, app: ASGIApp, minimum_size: int = MIN_BYTES, level: int = LEVEL) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # a JSON answer's start, until its body is seen

        async def send_maybe_compressed(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                json = headers.get("content-type", "").startswith("application/json")
                if json and "content-encoding" not in headers:
                    held = message
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            start, held = held, None
            body = message.get("body", b"")
            if message.get("more_body", False) or len(body) < self.minimum_size:
                await send(start)  # streamed or small: as it is
                await send(message)
                return
            if len(body) >= IN_THREAD_BYTES:
                packed = await run_in_threadpool(gzip_bytes, body, self.level)
            else:
                packed = gzip_bytes(body, self.level)
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["content-encoding"] = "gzip"
            headers["content-length"] = str(len(packed))
            headers.add_vary_header("Accept-Encoding")
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": packed})

        await self.app(scope, receive, send_maybe_compressed)
