"""The route class of every API router with a JSON body.

- A JSON body that :class:`server.middleware.BodyGuard` already parsed in a thread is not
  parsed again on the event loop.
- JSON types are taken as the OpenAPI states them: ``true`` is not a number and ``0`` is not
  a boolean, nor is ``"5"`` a number. Pydantic's lax mode converts all three, so the API
  accepted bodies its own schema forbids (``{"requires_grad": 0}``, ``{"seed": false}``).
  Each body is validated once more in strict mode and only those conversions are refused:
  strict mode's other refusals (an integral float such as ``3.0`` for an integer, which JSON
  Schema calls an integer) are left to the usual lax validation.

FastAPI's documented way to change how a route reads its request ("Custom Request and
APIRoute class").
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from server.middleware import PARSED_JSON

NUMBER_ERRORS = {"int_type", "float_type"}


class ParsedRequest(Request):
    """A request whose JSON body may have been parsed off the event loop already."""

    async def json(self) -> Any:
        if PARSED_JSON in self.scope:
            return self.scope[PARSED_JSON]
        return await super().json()


def loose_types(adapter: TypeAdapter[Any], body: Any) -> list[dict[str, Any]]:
    """The places where ``body`` holds a boolean for a number, a number for a boolean or a
    string for a number, as FastAPI's validation errors (empty: none)."""
    try:
        adapter.validate_python(body, strict=True)
    except ValidationError as exc:
        found = []
        for err in exc.errors():
            given, kind = err["input"], err["type"]
            if kind in NUMBER_ERRORS and isinstance(given, bool | str):
                problem = "a number is needed here, not " + (
                    "true/false" if given in (True, False) else "a string"
                )
            elif (
                kind == "bool_type"
                and not isinstance(given, bool)
                and isinstance(given, int | float | str)
            ):
                problem = "true or false is needed here, not " + (
                    "a string" if isinstance(given, str) else "a number"
                )
            else:
                continue
            loc = tuple(p for p in err["loc"] if p not in ("int", "float", "bool", "none"))
            found.append({"type": kind, "loc": ("body", *loc), "msg": problem, "input": given})
        return found
    return []


class JsonRoute(APIRoute):
    """An APIRoute whose handler reads the body through :class:`ParsedRequest` and refuses
    loosely typed values (422)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        annotation = self.body_field.field_info.annotation if self.body_field else None
        adapter = TypeAdapter(annotation) if annotation is not None else None

        async def route_handler(request: Request) -> Response:
            request = ParsedRequest(request.scope, request.receive)
            if adapter is not None:
                try:
                    body = await request.json()
                except ValueError:  # not JSON, or no body: the handler says what is wrong
                    body = None
                else:
                    found = loose_types(adapter, body)
                    if found:
                        raise RequestValidationError(found)
            return await handler(request)

        return route_handler
