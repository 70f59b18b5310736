"""The costs a request may spend, checked on the meta device before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import LimitError


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one model or one run. The server fills them from its settings."""

    max_params: int = 60_000_000  # the default nn.Transformer has 44 M
    max_activation_bytes: int = 512 * 2**20
    max_flops: int = 50 * 10**9
    max_layers: int = 200
    max_input_elements: int = 4_000_000
    max_sequence_length: int = 4_096
    max_vocab: int = 100_000
    # training: steps × batch × (forward + backward FLOPs); one epoch of LeNet-5 on
    # Fashion-MNIST is about 2.4·10¹¹, so the default allows about 20 of them
    max_train_flops: int = 5 * 10**12
    max_checkpoint_bytes: int = 256 * 2**20  # all of a training's checkpoints together

    def check(
        self,
        what: str,
        value: int,
        limit: int,
        setting: str,
        *,
        layer: str | None = None,
        hint: str = "",
    ) -> None:
        """Raise LimitError when ``value`` is over ``limit``; the message names the setting."""
        if value > limit:
            where = f" (reached at layer {layer})" if layer else ""
            raise LimitError(
                f"{what} would be {value:,}{where}; this playground allows at most {limit:,}. "
                f"{hint}Or raise PLAYGROUND_{setting}.".replace("  ", " "),
                layer=layer,
                detail={"limit": limit, "actual": value, "setting": f"PLAYGROUND_{setting}"},
            )


DEFAULT_LIMITS = Limits()
