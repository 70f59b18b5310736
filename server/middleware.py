"""ASGI middleware: request body caps and JSON-only bodies (415), before any route runs."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_body

RAW_BODY_PATHS = ("/weights",)  # the safetensors upload takes application/octet-stream


def _is_upload(path: str) -> bool:
    return path.endswith(RAW_BODY_PATHS)


class BodyGuard:
    """Refuse bodies over the cap (413) and non-JSON bodies on JSON routes (415).

    A JSON body sent as text/plain is a "simple" cross-site request that browsers
    send without asking: refusing it keeps other sites from posting into a workspace.
    """

    def __init__(self, app: ASGIApp, max_json: int, max_upload: int) -> None:
        self.app = app
        self.max_json = max_json
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
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
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(cap)
            return message

        try:
            await self.app(scope, capped, send)
        except BodyTooLarge as exc:
            await send_error(
                send,
                413,
                "body_too_large",
                f"The body is over {exc.cap:,} bytes, the most accepted here.",
            )


class BodyTooLarge(HTTPException):
    """Raised while a body without Content-Length streams in; an HTTPException so that
    FastAPI's body parsing re-raises it (it turns other exceptions into a 400)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"The body is over {cap:,} bytes, the most accepted here.")
        self.cap = cap


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with the API's one error body, from middleware (before any route runs)."""
    body = json.dumps(error_body(code, message)).encode()
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
