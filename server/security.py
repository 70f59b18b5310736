"""Classroom defences, as ASGI middleware: security headers on every response, per-client
rate limits on the expensive routes, and CORS only for the origins the settings name.

:func:`install` puts them in their order: the headers wrap everything (the refusals of the
other middleware and the 500 of a bug included), CORS wraps the rate limit (a 429 is
readable by an allowed page), and the rate limit runs before any body is read.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from server.middleware import send_error
from server.settings import Settings

# Scripts only from this origin (never inline, never eval). Styles allow 'unsafe-inline':
# Plotly and Swagger UI insert <style> elements and style attributes at run time, and a
# style cannot run code. Images may be data:/blob: URLs (Plotly's PNG export, Swagger's
# icons). No framing, no <base> or form posts elsewhere.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_NAMES = {name for name, _ in HEADERS}

# The routes that spend CPU or memory (builds, runs, experiments, weights files) or create
# state. A {name} matches one path segment, a {name:path} the rest of the path.
EXPENSIVE: tuple[tuple[str, str], ...] = (
    ("POST", "/api/workspaces"),
    ("POST", "/api/models"),
    ("PUT", "/api/models/{model_id}"),
    ("POST", "/api/models/{model_id}/run"),
    ("PUT", "/api/models/{model_id}/weights"),
    ("GET", "/api/models/{model_id}/weights"),  # serializes the whole state_dict
    ("POST", "/api/effects/{experiment:path}"),  # the effects lab runs torch too
    # trainings: a start checks and reads a dataset; the rest read or write weights
    ("POST", "/api/models/{model_id}/trainings"),
    ("GET", "/api/models/{model_id}/trainings/{training_id}/script"),
    ("GET", "/api/models/{model_id}/trainings/{training_id}/checkpoints/{step}/weights"),
    ("POST", "/api/models/{model_id}/trainings/{training_id}/checkpoints/{step}/restore"),
    ("GET", "/api/datasets/{name}/samples/{split}/{index}"),  # may read a dataset's files
)
# Validation has a budget of its own: the builder validates 250 ms after each edit (up to
# 240 a minute while someone types), and most answers come from memory (server/verdicts.py),
# so sharing the budget of runs would refuse a student's runs for typing.
VALIDATION: tuple[tuple[str, str], ...] = (("POST", "/api/validate"),)
MAX_CLIENTS = 10_000  # buckets kept in memory; the least recently seen leave first


class SecurityHeaders:
    """Set the security headers on every HTTP response (pages, static files, API, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", []) if h[0].lower() not in _NAMES]
                message = {**message, "headers": [*kept, *HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimiter:
    """A token bucket per client: ``per_minute`` tokens, refilled evenly over a minute.

    A client may burst up to ``per_minute`` requests, then gets one more every
    ``60 / per_minute`` seconds. At most ``max_clients`` buckets are kept; the least
    recently seen is dropped first (after a minute of silence its bucket is full anyway).
    Runs on the event loop only, so it needs no lock.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1 (0 means: install no limiter)")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float:
        """Spend one of ``client``'s tokens: 0.0 when granted, else seconds until one is due."""
        now = self.clock()
        tokens, stamp = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - stamp) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def path_pattern(template: str) -> re.Pattern[str]:
    """A path template as a regex: ``{name}`` is one segment, ``{name:path}`` the rest."""
    regex = re.sub(r"\\{[^}:]+:path\\}", ".+", re.escape(template))
    return re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", regex) + "$")


LIMITED = [(method, path_pattern(path)) for method, path in EXPENSIVE]
VALIDATED = [(method, path_pattern(path)) for method, path in VALIDATION]


def is_expensive(method: str, path: str) -> bool:
    """Whether ``method path`` (a request's, or an OpenAPI path template) spends the budget
    of expensive requests."""
    return any(method == m and p.match(path) for m, p in LIMITED)


def is_validation(method: str, path: str) -> bool:
    """Whether ``method path`` spends the validation budget."""
    return any(method == m and p.match(path) for m, p in VALIDATED)


WARM_UP_KEY = "playground.warm_up"  # in the ASGI scope of the start-up's own requests


class RateLimit:
    """Refuse a limited request with 429 and ``Retry-After`` when its client is over.

    ``limiters`` pairs a test of ``(method, path)`` with the limiter that counts it and the
    words that name its routes in the refusal; the first test that matches decides.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiters: list[tuple[Callable[[str, str], bool], RateLimiter, str]],
    ) -> None:
        self.app = app
        self.limiters = limiters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the start-up's own requests (server/readiness.py) are no client's: a key set in
        # the scope, which no HTTP request can set
        if scope["type"] == "http" and not scope.get(WARM_UP_KEY):
            for applies, limiter, what in self.limiters:
                if not applies(scope["method"], scope["path"]):
                    continue
                client = scope.get("client")
                wait = limiter.take(client[0] if client else "unknown")
                if wait > 0:
                    seconds = max(1, math.ceil(wait))
                    per_minute = int(limiter.capacity)
                    await send_error(
                        send,
                        429,
                        "rate_limited",
                        f"Too many requests: at most {per_minute} a minute for {what}. "
                        f"Try again in {seconds} s.",
                        headers=[(b"retry-after", str(seconds).encode())],
                    )
                    return
                break
        await self.app(scope, receive, send)


RATE_LIMITED = {
    "description": "Too many requests from this client; wait Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def _document_429(app: FastAPI, limited: list[Callable[[str, str], bool]]) -> None:
    """List the 429 answer in the OpenAPI of exactly the rate-limited operations."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI caches it; adding the answers again changes nothing
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if any(applies(method.upper(), path) for applies in limited):
                    operation["responses"].setdefault("429", RATE_LIMITED)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook


def install(app: FastAPI, settings: Settings) -> None:
    """Add the rate limits (each unless 0), CORS (only with origins), the forwarded-address
    headers of trusted proxies (only those named), the security headers.

    The 429 answers are added to the OpenAPI of the limited operations. The limiters are
    kept on ``app.state.rate_limiter`` and ``app.state.validate_rate_limiter`` (None: off).
    """
    limiters: list[tuple[Callable[[str, str], bool], RateLimiter, str]] = []
    app.state.rate_limiter = app.state.validate_rate_limiter = None
    if settings.rate_limit_per_minute:
        app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
        what = "runs, builds, experiments, weights files and new workspaces"
        limiters.append((is_expensive, app.state.rate_limiter, what))
    if settings.validate_rate_limit_per_minute:
        app.state.validate_rate_limiter = RateLimiter(settings.validate_rate_limit_per_minute)
        limiters.append((is_validation, app.state.validate_rate_limiter, "validations"))
    if limiters:
        app.add_middleware(RateLimit, limiters=limiters)
        _document_429(app, [applies for applies, _, _ in limiters])
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Access-Code"],
            expose_headers=["Retry-After", "Content-Disposition"],
            allow_credentials=False,  # the token travels in a header, never in a cookie
        )
    if settings.forwarded_allow_ips:
        # outside the rate limit, so that it counts the address the trusted proxy forwards;
        # uvicorn's own handling of these headers is off (server/__main__.py), so that one
        # setting decides, whatever server runs the app
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    # Outside Starlette's own outermost layer (ServerErrorMiddleware), so that even the 500
    # answer to a bug carries the headers.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build())  # type: ignore[method-assign]
