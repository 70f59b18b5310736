"""Recurrent layers and embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from models.catalog.helpers import expects_size, flag, last_dim, prob, size
from models.catalog.registry import Arg, Example, LayerType, Source
from models.errors import SpecError


def _rnn(cls: type[nn.Module]) -> LayerType:
    name = cls.__name__
    args = [
        size(
            "input_size", "features of each time step (the input's last dimension)", auto=last_dim()
        ),
        size("hidden_size", "features of the hidden state"),
        size("num_layers", "stacked recurrent layers", default=1),
    ]
    if name == "RNN":
        args.append(
            Arg("nonlinearity", "choice", "tanh", "the cell's activation", choices=("tanh", "relu"))
        )
    args += [
        flag("bias", True, "learn bias weights"),
        flag("batch_first", False, "input is (N, L, H) instead of (L, N, H)"),
        prob("dropout", 0.0, "dropout between stacked layers (training only)"),
        flag("bidirectional", False, "also run the sequence backwards"),
    ]
    if name == "LSTM":
        args.append(Arg("proj_size", "int", 0, "project the hidden state to this size", ge=0))
    extras = ("h_n", "c_n") if name == "LSTM" else ("h_n",)
    docs = {
        "RNN": "Elman RNN: a hidden state carried along the sequence, one step at a time.",
        "LSTM": "Long short-term memory: a hidden and a cell state carried along the sequence.",
        "GRU": "Gated recurrent unit: a gated hidden state carried along the sequence.",
    }
    return LayerType(
        name,
        "recurrent",
        "recurrent",
        docs[name],
        tuple(args),
        Example({"input_size": 6, "hidden_size": 6}, ((5, 1, 6),)),
        torch_class=cls,
        layout="(L, N, input_size), (N, L, input_size) with batch_first, or (L, input_size)",
        ranks=(2, 3),
        checks=(expects_size("input_size", -1, "features per time step"),),
        main_output=0,
        extras=extras,
        time_axis=_time_axis,
        depth_args=("num_layers",),
    )


def _time_axis(args: Mapping[str, Any], rank: int) -> int:
    """(L, N, H), (N, L, H) with batch_first, or unbatched (L, H)."""
    return 1 if rank == 3 and args["batch_first"] else 0


def _vocab_size(srcs: Sequence[Source]) -> int | None:
    return len(srcs[0].vocab) if srcs[0].vocab else None


def _token_input(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
    src = srcs[0]  # an integer input: models.build checks the dtype of every input
    count = args["num_embeddings"]
    if src.vocab and isinstance(count, int) and count < len(src.vocab):
        raise SpecError(
            "shape_mismatch",
            f"{layer} has {count} embeddings, but {src.name}'s vocabulary has {len(src.vocab)} "
            f"words. Set num_embeddings to at least {len(src.vocab)} or use 'auto'.",
            layer=layer,
        )


ENTRIES = [
    _rnn(nn.RNN),
    _rnn(nn.LSTM),
    _rnn(nn.GRU),
    LayerType(
        "Embedding",
        "recurrent",
        "recurrent",
        "A lookup table: each token index becomes a learned vector of embedding_dim numbers.",
        (
            size("num_embeddings", "size of the vocabulary", auto=_vocab_size),
            size("embedding_dim", "size of each embedding vector"),
            Arg("padding_idx", "int", None, "an index whose vector stays zero", optional=True),
            Arg(
                "max_norm",
                "float",
                None,
                "renormalize vectors longer than this",
                gt=0,
                optional=True,
            ),
            Arg("norm_type", "float", 2.0, "the p of the p-norm for max_norm", gt=0),
            flag("scale_grad_by_freq", False, "scale gradients by inverse word frequency"),
        ),
        Example({"num_embeddings": 9, "embedding_dim": 6}, ((5,),), dtype="int64", vocab=9),
        torch_class=nn.Embedding,
        layout="integer indices of any shape",
        checks=(_token_input,),
        integer_input=True,
    ),
]
