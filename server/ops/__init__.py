"""The worker's jobs as messages (``server.ops.messages``) and the one table of their handlers.

``handle(ctx, msg)`` runs a message's handler with the worker side's context; it is all a
worker (thread, process or actor) calls.
"""

from __future__ import annotations

from typing import Any

from server import training_jobs
from server.ops import analysis, data, effects, models, parameters
from server.workers.context import WorkerContext

HANDLERS: dict[type, Any] = {
    **models.HANDLERS,
    **parameters.HANDLERS,
    **effects.HANDLERS,
    **analysis.HANDLERS,
    **data.HANDLERS,
    **training_jobs.HANDLERS,
}


def handle(ctx: WorkerContext, msg: Any) -> Any:
    """Run ``msg``'s handler on the worker side; its plain-data result."""
    try:
        handler = HANDLERS[type(msg)]
    except KeyError:
        raise TypeError(f"no handler for {type(msg).__name__}") from None
    return handler(ctx, msg)
