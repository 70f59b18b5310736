"""Plotly figures for Python users, built from the client's results (never on the server).

The browser draws the same views from the same payloads; these are for scripts and notebooks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots


def activation_map(name: str, t: torch.Tensor, max_channels: int = 16) -> go.Figure:
    """A layer's activation of the first batch item: a heatmap per channel for (B, C, H, W),
    time × features for (B, T, F), bars for a vector."""
    x = t.detach().float().cpu()
    x = x[0] if x.ndim >= 2 else x
    if x.ndim == 3:  # (C, H, W): a grid of heatmaps
        n = min(x.shape[0], max_channels)
        cols = min(n, 4 if n > 4 else n)
        rows = math.ceil(n / cols)
        fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"channel {c}" for c in range(n)])
        for c in range(n):
            fig.add_trace(
                go.Heatmap(z=x[c].numpy(), coloraxis="coloraxis"),
                row=c // cols + 1,
                col=c % cols + 1,
            )
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(
            title=f"{name} {tuple(t.shape)}",
            coloraxis={"colorscale": "Viridis"},
            height=80 + 240 * rows,  # maps about square
        )
        return fig
    if x.ndim == 2:  # (T, F): time × features
        fig = go.Figure(go.Heatmap(z=x.numpy(), colorscale="Viridis"))
        fig.update_layout(
            title=f"{name} {tuple(t.shape)}",
            xaxis_title="feature",
            yaxis_title="position",
            yaxis_autorange="reversed",
        )
        return fig
    x = x.reshape(-1)
    fig = go.Figure(go.Bar(x=list(range(x.numel())), y=x.numpy()))
    fig.update_layout(title=f"{name} {tuple(t.shape)}", xaxis_title="unit", yaxis_title="value")
    return fig


def training_curves(events: Sequence[dict[str, Any]], title: str = "training") -> go.Figure:
    """Loss (and accuracy when recorded) per step, with the evaluations on the test split."""
    steps = [e for e in events if e.get("kind") == "step"]
    evals = [e for e in events if e.get("kind") == "eval"]
    has_acc = any("accuracy" in e for e in steps) or any("test_accuracy" in e for e in evals)
    fig = make_subplots(
        rows=1,
        cols=2 if has_acc else 1,
        subplot_titles=["loss", "accuracy"] if has_acc else ["loss"],
    )
    fig.add_trace(
        go.Scatter(
            x=[e["step"] for e in steps],
            y=[e["loss"] for e in steps],
            name="train loss",
            mode="lines",
        ),
        row=1,
        col=1,
    )
    if evals:
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in evals],
                y=[e["test_loss"] for e in evals],
                name="test loss",
                mode="lines+markers",
            ),
            row=1,
            col=1,
        )
    if has_acc:
        acc = [e for e in steps if "accuracy" in e]
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in acc],
                y=[e["accuracy"] for e in acc],
                name="train accuracy",
                mode="lines",
            ),
            row=1,
            col=2,
        )
        tacc = [e for e in evals if "test_accuracy" in e]
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in tacc],
                y=[e["test_accuracy"] for e in tacc],
                name="test accuracy",
                mode="lines+markers",
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="step")
    fig.update_layout(title=title)
    return fig


def effect_chart(kind: str, result: dict[str, Any], tensors: dict[str, torch.Tensor]) -> go.Figure:
    """The effects lab's chart of one experiment: activation curves, dropout's zero fractions
    against p, or the input beside the output (pooling, normalization, …)."""
    if kind == "activations":
        fig = go.Figure()
        for i, curve in enumerate(result["curves"]):
            fig.add_trace(
                go.Scatter(
                    x=tensors[f"curves.{i}.x"].numpy(),
                    y=tensors[f"curves.{i}.y"].numpy(),
                    name=curve["type"],
                )
            )
        fig.update_layout(title="activation functions", xaxis_title="x", yaxis_title="f(x)")
        return fig
    if kind == "dropout":
        fractions = result["zero_fractions"]
        fig = go.Figure(
            go.Bar(
                x=[f"pass {i}" for i in range(len(fractions))], y=fractions, name="zeroed fraction"
            )
        )
        fig.add_hline(
            y=result["expected_zero_fraction"],
            line_dash="dash",
            annotation_text=f"p = {result['p']}",
        )
        fig.update_layout(title=result["torch_call"], yaxis_title="fraction zeroed")
        return fig
    pairs = [(k, tensors[k]) for k in ("input", "x", "output", "softmax") if k in tensors]
    if not pairs:
        raise ValueError(f"no chart for the {kind} effect's result")
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=[k for k, _ in pairs])
    for col, (_, t) in enumerate(pairs, start=1):
        x = t.detach().float()
        while x.ndim > 2:
            x = x[0]
        trace = (
            go.Heatmap(z=x.numpy(), coloraxis="coloraxis")
            if x.ndim == 2
            else go.Bar(y=x.reshape(-1).numpy())
        )
        fig.add_trace(trace, row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=result.get("torch_call", kind), coloraxis={"colorscale": "Viridis"})
    return fig
