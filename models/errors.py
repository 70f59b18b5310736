"""The one error family of the engine: every user mistake is a SpecError.

An error carries a stable ``code`` and the numbers, never an HTTP status nor the name of a
server setting: ``server/errors.py`` alone maps codes to statuses, names the setting behind
a limit (``detail["limit_key"]``, e.g. ``max_params``) and writes the JSON body
``{"error": {"code", "message", "layer"?, "detail"?}}``.
"""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """A mistake in a spec or a request, in words that say what to change.

    ``code`` is a stable machine-readable tag (``shape_mismatch``, ``unknown_layer_type`` …),
    ``layer`` names the layer at fault when there is one, ``detail`` carries structured
    extras (expected and actual shapes, the offending arg).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        layer: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.layer = layer
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.layer is not None:
            body["layer"] = self.layer
        if self.detail is not None:
            body["detail"] = self.detail
        return body

    def __repr__(self) -> str:
        return f"SpecError({self.code!r}, {self.message!r}, layer={self.layer!r})"


class LimitError(SpecError):
    """A request whose cost (parameters, memory, FLOPs, sizes) is over a configured limit.

    ``detail`` holds ``limit``, ``actual`` and ``limit_key``: the limit's field name in
    :class:`models.limits.Limits` (``max_params`` …), which the server turns into its setting.
    """

    def __init__(self, message: str, *, layer: str | None = None, detail: Any = None) -> None:
        super().__init__("limit_exceeded", message, layer=layer, detail=detail)


def fmt_shape(shape: tuple[int, ...] | list[int]) -> str:
    """Render a shape the way the messages do: ``16×5×5`` (``scalar`` for ``()``)."""
    return "×".join(str(int(s)) for s in shape) if len(shape) else "scalar"
