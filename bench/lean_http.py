"""A lean HTTP/1.1 client for load benches: one keep-alive socket per simulated user.

httpx cost a load bench more CPU than the server it measured (73-75 % of a core for its
connection pool and per-request set-up, issue 17). This client writes a request line and a
few headers on an asyncio stream and reads the status line, the headers and a
``Content-Length`` (or chunked) body: a few tens of microseconds per request. It asks for
gzip like a browser does and inflates only what a caller reads as JSON.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        body = self.body
        if self.headers.get("content-encoding") == "gzip":
            body = zlib.decompress(body, 31)
        return json.loads(body)


class Conn:
    """One persistent connection to ``host:port``, reopened when the server closes it."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self.headers = {"Accept-Encoding": "gzip", **(headers or {})}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for attempt in (0, 1):  # a kept-alive socket the server closed: open a new one once
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(head + data)
                return await self._read()
            except (ConnectionError, asyncio.IncompleteReadError, HttpError) as exc:
                self.close()
                if attempt or not isinstance(exc, ConnectionError | asyncio.IncompleteReadError):
                    raise HttpError(type(exc).__name__) from exc
        raise AssertionError("unreachable")

    async def _read(self) -> Response:
        assert self.reader is not None
        status_line = await self.reader.readuntil(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"not an HTTP answer: {status_line[:60]!r}")
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunks()
        else:
            body = await self.reader.read()  # until the server closes
        framed = "content-length" in headers or "transfer-encoding" in headers
        if not framed or headers.get("connection", "").lower() == "close":
            self.close()
        return Response(int(parts[1]), headers, body)

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        out = bytearray()
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            out += await self.reader.readexactly(size)
            await self.reader.readexactly(2)
        while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return bytes(out)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
