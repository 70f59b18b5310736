"""What the client gives back: models, runs, trainings and effects as Python objects, with
tensors decoded, figures on request, and an HTML view for notebooks (``_repr_html_``)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import torch

from models.tensors import decode
from server.client import figures

if TYPE_CHECKING:
    from server.client.core import Client

MAX_ELEMENTS = 2**31  # what the server sent is what we decode; the server has checked its size


def tensor(payload: dict[str, Any]) -> torch.Tensor:
    """A tensor payload (f16, f32 or list) as a torch.Tensor (f32 payloads: exact)."""
    return decode(payload, max_elements=MAX_ELEMENTS)


def is_payload(x: Any) -> bool:
    return isinstance(x, dict) and {"shape", "encoding", "data"} <= x.keys()


def payloads(x: Any, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every tensor payload inside a JSON result, by its dotted path (``curves.0.x``)."""
    if is_payload(x):
        yield prefix, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from payloads(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from payloads(v, f"{prefix}.{i}" if prefix else str(i))


def _table(header: list[str], rows: list[list[Any]], foot: list[list[Any]] = ()) -> str:
    def cells(row: list[Any], tag: str) -> str:
        return "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    tail = "".join(f"<tr>{cells(r, 'th')}</tr>" for r in foot)
    return (
        f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody>"
        f"<tfoot>{tail}</tfoot></table>"
    )


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


@dataclass
class Model:
    """A model of the workspace: its id, resolved spec and summary, as the API answered."""

    client: Client = field(repr=False)
    data: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def spec(self) -> dict[str, Any]:
        return self.data["spec"]

    @property
    def version(self) -> int:
        return self.data["version"]

    def __repr__(self) -> str:
        return f"Model(id={self.id!r}, name={self.name!r}, version={self.version})"

    def run(self, inputs: dict[str, Any] | None = None, **options: Any) -> Run:
        return self.client.run(self.id, inputs, **options)

    def summary(self) -> dict[str, Any]:
        return self.client.summary(self.id)

    def code(self) -> str:
        return self.client.code(self.id)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.client.weights(self.id)

    def load_weights(self, tensors: dict[str, torch.Tensor] | bytes) -> dict[str, Any]:
        return self.client.load_weights(self.id, tensors)

    def parameters(self) -> dict[str, Any]:
        return self.client.parameters(self.id)

    def train(self, config: dict[str, Any], **kwargs: Any) -> Training:
        return self.client.train(self.id, config, **kwargs)

    def refresh(self) -> Model:
        self.data = self.client.model(self.id).data
        return self

    def _repr_html_(self) -> str:
        """The per-layer summary as torchinfo prints it: layer (type), output shape, params."""
        s = self.summary()
        rows = [
            [
                f"{r['name']} ({r['type']})",
                _shape(r["output_shape"]),
                f"{r['params']:,}",
                f"{r['trainable']:,}",
                f"{r['flops']:,}",
            ]
            for r in s["layers"]
        ]
        foot = [
            [
                "Total params",
                "",
                f"{s['total_params']:,}",
                f"{s['trainable_params']:,}",
                f"{s['total_flops']:,}",
            ],
            ["Non-trainable params", "", f"{s['total_params'] - s['trainable_params']:,}", "", ""],
        ]
        name, mid = html.escape(self.name), html.escape(self.id)
        title = f"<p><b>{name}</b> (model {mid}, version {self.version})</p>"
        return title + _table(
            ["Layer (type)", "Output Shape", "Param #", "Trainable", "FLOPs"], rows, foot
        )


@dataclass
class Run:
    """A run's result: outputs and activations as tensors, their statistics, figures."""

    data: dict[str, Any] = field(repr=False)
    outputs: dict[str, torch.Tensor] = field(init=False)
    activations: dict[str, torch.Tensor] = field(init=False)
    extras: dict[str, dict[str, torch.Tensor]] = field(init=False)

    def __post_init__(self) -> None:
        self.outputs = {k: tensor(p) for k, p in self.data["outputs"].items()}
        acts = self.data["activations"]
        self.activations = {k: tensor(a["tensor"]) for k, a in acts.items()}
        self.extras = {
            k: {e: tensor(x["tensor"]) for e, x in a.get("extras", {}).items()}
            for k, a in acts.items()
        }

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) for k, v in self.outputs.items()}
        return f"Run(mode={self.mode!r}, outputs={shapes}, activations={len(self.activations)})"

    @property
    def mode(self) -> str:
        return self.data["mode"]

    @property
    def labels(self) -> list[str] | None:
        return self.data.get("labels")

    @property
    def output(self) -> torch.Tensor:
        """The model's (first) output."""
        return next(iter(self.outputs.values()))

    def stats(self, layer: str) -> dict[str, Any] | None:
        return self.data["activations"][layer].get("stats")

    def numpy(self) -> dict[str, np.ndarray]:
        """Every activation as a numpy array."""
        return {k: v.numpy() for k, v in self.activations.items()}

    def figure(self, layer: str, max_channels: int = 16) -> go.Figure:
        """The layer's activation map (heatmaps per channel, time × features, or bars)."""
        return figures.activation_map(layer, self.activations[layer], max_channels)

    def _repr_html_(self) -> str:
        rows = []
        for name, a in self.data["activations"].items():
            st = a.get("stats") or {}
            num = [st.get(k) for k in ("mean", "std", "min", "max")]
            rows.append(
                [
                    name,
                    a["type"],
                    _shape(a["tensor"].get("true_shape", a["tensor"]["shape"])),
                    *("" if v is None else f"{v:.4g}" for v in num),
                    "" if st.get("zero_fraction") is None else f"{st['zero_fraction']:.2f}",
                ]
            )
        out = "".join(
            f"<p><b>{html.escape(k)}</b> {_shape(list(v.shape))}: "
            f"{html.escape(np.array2string(v.numpy(), precision=4, threshold=20))}</p>"
            for k, v in self.outputs.items()
        )
        return out + _table(["layer", "type", "shape", "mean", "std", "min", "max", "zeros"], rows)


@dataclass
class Effect:
    """An effects-lab experiment: the API's answer and every tensor in it, by dotted path."""

    kind: str
    data: dict[str, Any] = field(repr=False)
    tensors: dict[str, torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.tensors = {path: tensor(p) for path, p in payloads(self.data)}

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def figure(self) -> go.Figure:
        return figures.effect_chart(self.kind, self.data, self.tensors)


@dataclass
class Training:
    """A training: where it stands (the API's answer) and the events followed so far."""

    client: Client = field(repr=False)
    model_id: str
    data: dict[str, Any] = field(repr=False)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    def __repr__(self) -> str:
        return (
            f"Training(id={self.id!r}, status={self.status!r}, "
            f"step={self.data['step']}/{self.data['total_steps']})"
        )

    def refresh(self) -> Training:
        self.data = self.client.training(self.model_id, self.id).data
        return self

    def follow(self, progress: bool = True) -> Training:
        return self.client.follow(self, progress=progress)

    def figure(self) -> go.Figure:
        """Loss and accuracy curves of the events followed."""
        return figures.training_curves(self.events, title=f"training {self.id}")

    def _repr_html_(self) -> str:
        latest = self.data.get("latest") or {}
        rows = [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in latest.items()]
        head = (
            f"<p>training <b>{html.escape(self.id)}</b>: {html.escape(self.status)}, "
            f"step {self.data['step']} of {self.data['total_steps']}</p>"
        )
        return head + _table(["metric", "latest"], rows)
