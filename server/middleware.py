"""ASGI middleware: request bodies bounded in size, time and nesting, JSON-only (415), and
big JSON bodies parsed off the event loop, all before any route runs."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_body

RAW_BODY_PATHS = ("/weights",)  # the safetensors upload takes application/octet-stream
# A JSON body longer than this is checked and parsed in a thread: an 8 MiB tensor given as
# nested lists takes seconds to parse, and on the event loop that would delay every request.
PARSE_IN_THREAD_BYTES = 64 * 1024
# Where BodyGuard leaves a body it parsed in a thread, for server.routing.JsonRoute.
PARSED_JSON = "playground.parsed_json"

_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and the byte it escapes
_STRING = re.compile(rb'"[^"]*"')  # with the escapes gone, a string ends at the next quote
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPENS = np.zeros(256, np.int8)
_OPENS[[ord("["), ord("{")]] = 1
_OPENS[[ord("]"), ord("}")]] = -1


def _is_upload(path: str) -> bool:
    return path.endswith(RAW_BODY_PATHS)


def json_depth(body: bytes) -> int:
    """How deeply ``[`` and ``{`` nest in a JSON text, without parsing it (1 for ``[1, 2]``).

    Linear in the length, in C: escapes go, then strings, then everything but brackets; the
    depth is the running sum's peak. Only a bound for text that is not JSON (brackets in an
    unclosed string count), which the parser refuses anyway.
    """
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", body)).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    steps = _OPENS[np.frombuffer(brackets, np.uint8)].astype(np.int64)
    return int(np.cumsum(steps).max())


class BodyGuard:
    """Refuse bodies over the cap (413), non-JSON bodies on JSON routes (415), bodies not sent
    within ``timeout`` seconds (408) and JSON nested deeper than ``max_depth`` (400).

    A JSON body sent as text/plain is a "simple" cross-site request that browsers
    send without asking: refusing it keeps other sites from posting into a workspace.
    A JSON body is read whole here (it is at most ``max_json`` bytes), its nesting checked
    before anything parses it (the parsers and ``json.dumps`` recurse, and a deep body ran
    out of stack), and a long one is parsed in a thread; uploads stream on to their route.
    A client that sends a body slowly holds a connection: past the deadline it gets a 408 and
    the connection is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_json: int,
        max_upload: int,
        max_depth: int = 64,
        timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.max_json = max_json
        self.max_upload = max_upload
        self.max_depth = max_depth
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        upload = _is_upload(path)
        cap = self.max_upload if upload else self.max_json
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        length = headers.get("content-length")
        has_body = length not in (None, "0") or "transfer-encoding" in headers  # or chunked
        if path.startswith("/api/") and has_body:
            wanted = "application/octet-stream" if upload else "application/json"
            if ctype != wanted:
                await send_error(
                    send,
                    415,
                    "unsupported_media_type",
                    f"Send this body as Content-Type: {wanted} (got '{ctype or 'none'}').",
                )
                return
        if length is not None and length.isdigit() and int(length) > cap:
            await send_error(
                send,
                413,
                "body_too_large",
                f"The body has {int(length):,} bytes; at most {cap:,} are accepted here.",
            )
            return
        guarded = _Guarded(receive, cap, self.timeout)
        try:
            if has_body and ctype == "application/json":
                body = await guarded.read_all()
                if body is None:  # the client went away
                    return
                if not await self._check_json(scope, body, send):
                    return
                await self.app(scope, _replay(body, receive), send)
            else:
                await self.app(scope, guarded, send)
        except (BodyTooLarge, BodyTimeout) as exc:
            extra = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
            await send_error(send, exc.status_code, exc.code, exc.detail, headers=extra)

    async def _check_json(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Refuse a body nested too deeply (False); parse a long one in a thread."""
        if len(body) > PARSE_IN_THREAD_BYTES:
            depth, parsed = await run_in_threadpool(_depth_and_parse, body, self.max_depth)
        else:
            depth, parsed = json_depth(body), _UNPARSED
        if depth > self.max_depth:
            await send_error(
                send,
                400,
                "too_deeply_nested",
                f"The JSON body nests [ and {{ {depth} deep; at most {self.max_depth} are "
                f"accepted (PLAYGROUND_MAX_JSON_DEPTH).",
                detail={"depth": depth, "limit": self.max_depth},
            )
            return False
        if parsed is not _UNPARSED:
            scope[PARSED_JSON] = parsed
        return True


_UNPARSED = object()


def _depth_and_parse(body: bytes, max_depth: int) -> tuple[int, Any]:
    """In a thread: the depth, and the parsed body when it is shallow enough and valid JSON
    (else the route's own parsing gives its usual answer)."""
    depth = json_depth(body)
    if depth > max_depth:
        return depth, _UNPARSED
    try:
        return depth, json.loads(body)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError: the route says what is wrong
        return depth, _UNPARSED


class _Guarded:
    """A ``receive`` that counts the body against its cap and its deadline; once the body has
    ended it waits as long as the app likes (a stream waits for the disconnect)."""

    def __init__(self, receive: Receive, cap: int, timeout: float) -> None:
        self.receive = receive
        self.cap = cap
        self.timeout = timeout
        self.deadline = asyncio.get_running_loop().time() + timeout
        self.seen = 0
        self.ended = False

    async def __call__(self) -> Message:
        if self.ended:
            return await self.receive()
        left = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self.receive(), max(left, 0.0))
        except TimeoutError:
            raise BodyTimeout(self.timeout) from None
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.cap:
                raise BodyTooLarge(self.cap)
            self.ended = not message.get("more_body", False)
        else:
            self.ended = True
        return message

    async def read_all(self) -> bytes | None:
        """The whole body, or None when the client disconnected before sending it."""
        chunks = []
        while not self.ended:
            message = await self()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the client sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class BodyTooLarge(HTTPException):
    """Raised while a body without Content-Length streams in; an HTTPException so that
    FastAPI's body parsing re-raises it (it turns other exceptions into a 400)."""

    code = "body_too_large"

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"The body is over {cap:,} bytes, the most accepted here.")
        self.cap = cap


class BodyTimeout(HTTPException):
    """Raised when a body has not arrived whole by its deadline (a slow or stalled client)."""

    code = "body_timeout"

    def __init__(self, timeout: float) -> None:
        super().__init__(
            408,
            f"The request body did not arrive within {timeout:g} s "
            f"(PLAYGROUND_REQUEST_TIMEOUT_SECONDS); send it again on a faster connection.",
            headers={"Connection": "close"},
        )


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    detail: Any = None,
) -> None:
    """Answer with the API's one error body, from middleware (before any route runs)."""
    body = json.dumps(error_body(code, message, detail=detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
