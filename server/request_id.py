"""A request id for every HTTP request: taken from ``X-Request-ID`` when the caller sends a
sane one, else made; set on the response's ``X-Request-ID`` header, on every log line of the
request (``server.logs.REQUEST_ID``), and in the body of every 5xx answer
(``{"error": {..., "request_id": ...}}``), so that a user's report finds the log line.

It wraps the whole app, Starlette's ServerErrorMiddleware included, so that the 500 of a bug
carries it too.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_body
from server.logs import REQUEST_ID

HEADER = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
log = logging.getLogger("playground")


def _with_id(body: bytes, request_id: str) -> bytes:
    """The error body with ``request_id`` added (a body that is not the API's: as it was)."""
    try:
        data = json.loads(body)
        data["error"]["request_id"] = request_id
    except (ValueError, KeyError, TypeError):
        return body
    return json.dumps(data).encode()


class RequestId:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        held: list[Message] = []  # a 5xx's start and body parts, until the body is whole
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
                if message["status"] >= 500:
                    held.append(message)
                    return
            elif message["type"] == "http.response.body" and held:
                held.append(message)
                if message.get("more_body", False):
                    return
                start, *parts = held
                held.clear()
                body = _with_id(b"".join(p.get("body", b"") for p in parts), request_id)
                headers = [h for h in start["headers"] if h[0].lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                message = {"type": "http.response.body", "body": body}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette re-raises a bug after the error handler answered (and logged) it;
            # not answered yet: log it here and answer the 500 ourselves. One line either way.
            if not started:
                method, path = scope.get("method"), scope.get("path")
                log.exception("unexpected error on %s %s", method, path)
                body = json.dumps(
                    error_body(
                        "internal_error",
                        "The server hit a bug; it has been logged.",
                        request_id=request_id,
                    )
                ).encode()
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            REQUEST_ID.reset(token)


def install(app: FastAPI) -> None:
    """Wrap the whole middleware stack (call after every other middleware is added)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestId(build())  # type: ignore[method-assign]
