"""Transformer layers and multi-head attention."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.catalog.helpers import divides, expects_size, flag, last_dim, prob, size
from models.catalog.registry import Arg, Example, LayerType

LAYOUT = "(L, N, d_model), (N, L, d_model) with batch_first, or (L, d_model)"


def _layer_args(*, auto: bool, d_model: int | None = None) -> list[Arg]:
    model_arg = (
        size("d_model", "features of each token", auto=last_dim())
        if auto
        else size("d_model", "features of each token", default=d_model)
    )
    return [
        model_arg,
        size("nhead", "attention heads (d_model must divide by it)", default=8),
        size("dim_feedforward", "width of the feed-forward block", default=2048),
        prob("dropout", 0.1, "dropout rate (training only)"),
        Arg("activation", "choice", "relu", "feed-forward activation", choices=("relu", "gelu")),
        Arg("layer_norm_eps", "float", 1e-5, "LayerNorm's eps", gt=0),
        flag("batch_first", False, "tokens are (N, L, E) instead of (L, N, E)"),
        flag("norm_first", False, "LayerNorm before attention (pre-norm) instead of after"),
        flag("bias", True, "learn biases in the linear and norm layers"),
    ]


def _stack_args() -> list[Arg]:
    return [
        size("num_layers", "how many copies of the layer are stacked", default=6),
        flag("final_norm", False, "a LayerNorm after the last layer (the norm= argument)"),
    ]


def make_encoder(num_layers: int, final_norm: bool, **layer_args) -> nn.TransformerEncoder:
    """nn.TransformerEncoder over clones of one nn.TransformerEncoderLayer(**layer_args)."""
    layer = nn.TransformerEncoderLayer(**layer_args)
    norm = nn.LayerNorm(layer_args["d_model"], layer_args["layer_norm_eps"]) if final_norm else None
    return nn.TransformerEncoder(layer, num_layers, norm=norm)


def make_decoder(num_layers: int, final_norm: bool, **layer_args) -> nn.TransformerDecoder:
    """nn.TransformerDecoder over clones of one nn.TransformerDecoderLayer(**layer_args)."""
    layer = nn.TransformerDecoderLayer(**layer_args)
    norm = nn.LayerNorm(layer_args["d_model"], layer_args["layer_norm_eps"]) if final_norm else None
    return nn.TransformerDecoder(layer, num_layers, norm=norm)


def _self_attention(module: nn.Module, xs: Sequence[torch.Tensor]):
    return module(xs[0], xs[0], xs[0]) if len(xs) == 1 else module(*xs)


def _self_attention_code(names: Sequence[str]) -> str:
    return ", ".join(names * 3 if len(names) == 1 else names)


D_MODEL = expects_size("d_model", -1, "features per token (d_model)")
HEADS = divides("d_model", "nhead", "heads")
CHECKS = (D_MODEL, HEADS)
TWO_INPUTS = (
    D_MODEL,
    expects_size("d_model", -1, "features per token (d_model) on memory", src=1, shared=True),
    HEADS,
)
EXAMPLE = {"d_model": 16, "nhead": 4, "dim_feedforward": 32}

ENTRIES = [
    LayerType(
        "Transformer",
        "transformer",
        "transformer",
        "The full encoder-decoder transformer: src is encoded, tgt attends to it.",
        (
            *_layer_args(auto=False, d_model=512),
            size("num_encoder_layers", "encoder layers", default=6),
            size("num_decoder_layers", "decoder layers", default=6),
        ),
        Example(
            {**EXAMPLE, "num_encoder_layers": 1, "num_decoder_layers": 1}, ((5, 1, 16), (7, 1, 16))
        ),
        torch_class=nn.Transformer,
        n_inputs=(2, 2),
        input_names=("src", "tgt"),
        layout=LAYOUT,
        ranks=(2, 3),
        checks=(
            expects_size("d_model", -1, "features per token (d_model)", auto=False),
            expects_size("d_model", -1, "features per token (d_model) on tgt", src=1, shared=True),
            HEADS,
        ),
        depth_args=("num_encoder_layers", "num_decoder_layers"),
    ),
    LayerType(
        "TransformerEncoderLayer",
        "transformer",
        "transformer",
        "Self-attention followed by a feed-forward block, each with a residual and LayerNorm.",
        tuple(_layer_args(auto=True)),
        Example(EXAMPLE, ((5, 1, 16),)),
        torch_class=nn.TransformerEncoderLayer,
        layout=LAYOUT,
        ranks=(2, 3),
        checks=CHECKS,
    ),
    LayerType(
        "TransformerEncoder",
        "transformer",
        "transformer",
        "A stack of num_layers identical TransformerEncoderLayers.",
        (*_layer_args(auto=True), *_stack_args()),
        Example({**EXAMPLE, "num_layers": 2}, ((5, 1, 16),)),
        torch_class=nn.TransformerEncoder,
        factory=make_encoder,
        layout=LAYOUT,
        ranks=(2, 3),
        checks=CHECKS,
        depth_args=("num_layers",),
    ),
    LayerType(
        "TransformerDecoderLayer",
        "transformer",
        "transformer",
        "Self-attention, attention over the encoder's memory, then a feed-forward block.",
        tuple(_layer_args(auto=True)),
        Example(EXAMPLE, ((7, 1, 16), (5, 1, 16))),
        torch_class=nn.TransformerDecoderLayer,
        n_inputs=(2, 2),
        input_names=("tgt", "memory"),
        layout=LAYOUT,
        ranks=(2, 3),
        checks=TWO_INPUTS,
    ),
    LayerType(
        "TransformerDecoder",
        "transformer",
        "transformer",
        "A stack of num_layers identical TransformerDecoderLayers.",
        (*_layer_args(auto=True), *_stack_args()),
        Example({**EXAMPLE, "num_layers": 2}, ((7, 1, 16), (5, 1, 16))),
        torch_class=nn.TransformerDecoder,
        factory=make_decoder,
        depth_args=("num_layers",),
        n_inputs=(2, 2),
        input_names=("tgt", "memory"),
        layout=LAYOUT,
        ranks=(2, 3),
        checks=TWO_INPUTS,
    ),
    LayerType(
        "MultiheadAttention",
        "transformer",
        "transformer",
        "Scaled dot-product attention in num_heads heads; one input means self-attention.",
        (
            size("embed_dim", "features of each token", auto=last_dim()),
            size("num_heads", "attention heads (embed_dim must divide by it)"),
            prob("dropout", 0.0, "dropout on the attention weights (training only)"),
            flag("bias", True, "learn input and output projection biases"),
            flag("add_bias_kv", False, "add a learned bias to keys and values"),
            flag("add_zero_attn", False, "add a batch of zeros to keys and values"),
            size("kdim", "features of the keys (default embed_dim)", default=None),
            size("vdim", "features of the values (default embed_dim)", default=None),
            flag("batch_first", False, "tokens are (N, L, E) instead of (L, N, E)"),
        ),
        Example({"embed_dim": 16, "num_heads": 4}, ((5, 1, 16),)),
        torch_class=nn.MultiheadAttention,
        n_inputs=(1, 3),
        input_names=("query", "key", "value"),
        layout=LAYOUT.replace("d_model", "embed_dim"),
        ranks=(2, 3),
        checks=(
            expects_size("embed_dim", -1, "features per token (embed_dim)"),
            divides("embed_dim", "num_heads", "heads"),
        ),
        main_output=0,
        extras=("attn_weights",),
        call=_self_attention,
        call_code=_self_attention_code,
    ),
]
