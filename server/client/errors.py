"""The client's one exception: whatever the API refused, with its code, message and layer."""

from __future__ import annotations

from typing import Any

import httpx


class PlaygroundError(Exception):
    """An error answer of the playground's API (``{"error": {"code", "message", ...}}``).

    ``status`` is the HTTP status, ``code`` the API's error code (``shape_mismatch``,
    ``model_not_found``, …), ``layer`` the layer it names (or None), ``detail`` its details,
    ``request_id`` the server's ``X-Request-ID`` when it sent one.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        layer: str | None = None,
        detail: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.layer = layer
        self.detail = detail
        self.request_id = request_id

    @classmethod
    def from_response(cls, response: httpx.Response) -> PlaygroundError:
        """The error a non-2xx response carries (a body that is not the API's: ``http_<n>``)."""
        request_id = response.headers.get("x-request-id")
        try:
            error = response.json()["error"]
            return cls(
                response.status_code,
                str(error["code"]),
                str(error["message"]),
                error.get("layer"),
                error.get("detail"),
                request_id,
            )
        except (ValueError, KeyError, TypeError):
            text = response.text[:500] or response.reason_phrase
            return cls(
                response.status_code, f"http_{response.status_code}", text, None, None, request_id
            )


def check(response: httpx.Response) -> httpx.Response:
    """The response when it is a success; otherwise raise its ``PlaygroundError``."""
    if response.is_success:
        return response
    response.read()
    raise PlaygroundError.from_response(response)
