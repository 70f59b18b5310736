"""A scripted experiment with the playground's REST API and plain httpx.

Create a workspace, build the tutorial's LeNet-5 (seed 0), run a random image through it
capturing every layer, print the class scores and plot conv1's first feature map.

    python examples/scripted_experiment.py [BASE_URL] [OUT_HTML]

BASE_URL defaults to http://127.0.0.1:8000 (start the server with ``python -m server``);
OUT_HTML defaults to conv1.html.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import httpx
import numpy as np
import plotly.graph_objects as go


def decode(payload: dict) -> np.ndarray:
    """A tensor payload sent with "encoding": "f32" as a numpy array."""
    raw = base64.b64decode(payload["data"])
    return np.frombuffer(raw, "<f4").reshape(payload["shape"])


def run_experiment(client: httpx.Client, out_html: Path | None = None) -> dict:
    """Build LeNet-5, probe it with a random input, and plot conv1's channel 0."""
    token = client.post("/api/workspaces").raise_for_status().json()["token"]
    auth = {"Authorization": f"Bearer {token}"}

    model = client.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=auth)
    model_id = model.raise_for_status().json()["id"]

    run = client.post(
        f"/api/models/{model_id}/run",
        json={
            "inputs": {"x": {"kind": "random", "distribution": "normal", "seed": 0}},
            "capture": "all",
            "encoding": "f32",
        },
        headers=auth,
    ).raise_for_status()
    result = run.json()

    conv1 = decode(result["activations"]["conv1"]["tensor"])  # (1, 6, 28, 28)
    scores = decode(result["outputs"]["fc3"])[0]  # (10,)
    for label, score in zip(result["labels"], scores, strict=True):
        print(f"class {label}: {score:+.4f}")
    print(f"conv1 gives {conv1.shape}; predicted class {int(scores.argmax())}")

    if out_html is not None:
        fig = go.Figure(go.Heatmap(z=conv1[0, 0], colorscale="Viridis"))
        fig.update_layout(title="LeNet-5 conv1, channel 0", yaxis_autorange="reversed")
        fig.write_html(out_html, include_plotlyjs=True)  # the plotly.js bundle inline: offline
        print(f"wrote {out_html}")

    return {"model_id": model_id, "scores": scores, "conv1": conv1, "result": result}


def main() -> None:
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    out_html = Path(sys.argv[2] if len(sys.argv) > 2 else "conv1.html")
    with httpx.Client(base_url=base_url, timeout=60) as client:
        run_experiment(client, out_html)


if __name__ == "__main__":
    main()
