"""The route class of every API router: a JSON body that :class:`server.middleware.BodyGuard`
already parsed in a thread is not parsed again on the event loop.

FastAPI's documented way to change how a route reads its request ("Custom Request and
APIRoute class"): the handler gets a :class:`Request` whose ``json()`` returns the parsed body.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from server.middleware import PARSED_JSON


class ParsedRequest(Request):
    """A request whose JSON body may have been parsed off the event loop already."""

    async def json(self) -> Any:
        if PARSED_JSON in self.scope:
            return self.scope[PARSED_JSON]
        return await super().json()


class JsonRoute(APIRoute):
    """An APIRoute whose handler reads the body through :class:`ParsedRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(ParsedRequest(request.scope, request.receive))

        return route_handler
