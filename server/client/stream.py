"""A training's Server-Sent Events: parsed, resumed after a dropped connection, with a bar."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from server.client.errors import check

FINISHED = ("done", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class Event:
    """One event of the stream: its number (the SSE ``id``), kind (status, step, eval), data."""

    id: int
    kind: str
    data: dict[str, Any]


def parse(lines: Iterator[str]) -> Iterator[Event]:
    """Events from the lines of a ``text/event-stream`` (comments, the pings, skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:  # a blank line ends an event
            if "data" in fields:
                yield Event(
                    int(fields.get("id", "0")),
                    fields.get("event", "message"),
                    json.loads(fields["data"]),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def follow(
    http: httpx.Client, url: str, *, after: int = 0, status_url: str, max_retries: int = 20
) -> Iterator[Event]:
    """Every event after ``after`` until the training ends.

    A connection that drops (``httpx.TransportError``) is opened again with ``Last-Event-ID``
    set to the last event seen, so no event is lost or repeated. The stream also ends when
    the server closes it; if the training has not finished then (a restart of the server),
    it is opened again too.
    """
    last, retries = after, 0
    while True:
        try:
            with http.stream(
                "GET",
                url,
                headers={"Last-Event-ID": str(last)},
                timeout=httpx.Timeout(60, read=None),
            ) as response:
                check(response)
                for event in parse(response.iter_lines()):
                    last, retries = event.id, 0
                    yield event
                    if event.kind == "status" and event.data.get("status") in FINISHED:
                        return
        except httpx.TransportError:
            retries += 1
            if retries > max_retries:
                raise
            continue
        status = check(http.get(status_url)).json()["status"]
        if status in FINISHED:
            return
