"""The costs a request may spend, checked on the meta device before anything is allocated."""

from __future__ import annotations

import time
from dataclasses import dataclass

from models import cost
from models.errors import LimitError, SpecError


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one model or one run. The server fills them from its settings, whose
    defaults are these (server/settings.py reads them from here: one copy)."""

    max_params: int = 60_000_000  # the default nn.Transformer has 44 M
    max_activation_bytes: int = 256 * 2**20
    max_flops: int = 50 * 10**9
    max_layers: int = 200
    max_input_elements: int = 4_000_000
    max_sequence_length: int = 4_096
    max_vocab: int = 100_000
    # training: steps × batch × (forward + backward FLOPs); one epoch of LeNet-5 on
    # Fashion-MNIST is about 2.4·10¹¹, so the default allows about 20 of them
    max_train_flops: int = 5 * 10**12
    max_checkpoint_bytes: int = 256 * 2**20  # all of a training's checkpoints together
    # models.cost's estimate of one forward pass, in units of about 1 ns of one CPU core: a
    # MaxPool2d(100, stride=1) on 500×500 is 6.4·10⁹, LeNet-5 about 4·10⁵
    max_work: int = 3 * 10**9
    job_timeout_s: float = 30.0  # the most any job may run on the worker

    def check(
        self,
        what: str,
        value: int,
        limit: int,
        key: str,
        *,
        layer: str | None = None,
        hint: str = "",
    ) -> None:
        """Raise LimitError when ``value`` is over ``limit``; ``key`` names the limit (its
        field here, ``max_params`` …), which the server turns into the setting to raise."""
        if value > limit:
            where = f" (reached at layer {layer})" if layer else ""
            raise LimitError(
                f"{what} would be {value:,}{where}; this playground allows at most {limit:,}. "
                f"{hint}".strip(),
                layer=layer,
                detail={"limit": limit, "actual": value, "limit_key": key},
            )

    def check_time(self, work: int, *, layer: str | None = None) -> None:
        """Refuse up front what the work estimate says cannot finish within a job's time."""
        seconds = cost.estimated_seconds(work)
        if seconds > self.job_timeout_s:
            where = f" (reached at layer {layer})" if layer else ""
            raise LimitError(
                f"The forward pass would take about {seconds:,.1f} s{where} by its estimated "
                f"work ({work:,} units of about 1 ns); a job may run at most "
                f"{self.job_timeout_s:g} s. Use smaller inputs or layers.",
                layer=layer,
                detail={
                    "limit": self.job_timeout_s,
                    "actual": round(seconds, 3),
                    "limit_key": "job_timeout_s",
                },
            )


class DeadlineExceeded(SpecError):
    """A job ran past its time budget and was stopped between two layers (not the user's
    mistake: the server was slow or busy)."""

    def __init__(self, message: str, *, layer: str | None, detail: dict) -> None:
        super().__init__("deadline_exceeded", message, layer=layer, detail=detail)


class Deadline:
    """A job's time budget (``models.cost.budget_seconds``), checked between layers."""

    def __init__(
        self, budget_s: float, what: str = "The run", limit_key: str = "job_timeout_s"
    ) -> None:
        self.budget_s = budget_s
        self.what = what
        self.limit_key = limit_key  # the limit that set the budget (the server's setting)
        self.how = ""  # how the budget was worked out, for the message
        self.at = time.monotonic() + budget_s

    @classmethod
    def for_work(cls, work: int, limits: Limits, what: str = "The run") -> Deadline:
        deadline = cls(cost.budget_seconds(work, limits.job_timeout_s), what)
        deadline.how = (
            f" ({cost.JOB_GRACE_S:g} s + {cost.JOB_SLACK:g} × its estimated time, at most a "
            f"job's time limit)"
        )
        return deadline

    def check(self, layer: str | None = None) -> None:
        """Raise DeadlineExceeded once the budget is spent (``layer``: the last one done)."""
        if time.monotonic() <= self.at:
            return
        after = f" after layer {layer}" if layer else ""
        raise DeadlineExceeded(
            f"{self.what} was stopped{after}: it ran past its time budget of "
            f"{self.budget_s:.1f} s{self.how}. The server may be busy: try again, or use "
            f"smaller inputs or layers.",
            layer=layer,
            detail={"budget_s": round(self.budget_s, 3), "limit_key": self.limit_key},
        )


DEFAULT_LIMITS = Limits()
