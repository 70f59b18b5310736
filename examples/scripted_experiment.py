"""A scripted experiment with the playground's Python client (``server.client``).

Create a workspace, build the tutorial's LeNet-5 (seed 0), run a random image through it
capturing every layer, print the class scores and plot conv1's feature maps.

    python examples/scripted_experiment.py [BASE_URL] [OUT_HTML]

BASE_URL defaults to http://127.0.0.1:8000 (start the server with ``playground serve``);
OUT_HTML defaults to conv1.html.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from server.client import Client


def run_experiment(http: httpx.Client, out_html: Path | None = None) -> dict:
    """Build LeNet-5, probe it with a seeded random input, and plot conv1's channels."""
    pg = Client(http=http)  # a new workspace on first use
    lenet = pg.create_model(preset="lenet5", seed=0)
    run = lenet.run({"x": {"kind": "random", "distribution": "normal", "seed": 0}})

    conv1 = run.activations["conv1"].numpy()  # (1, 6, 28, 28), exact float32
    scores = run.outputs["fc3"][0].numpy()  # (10,)
    for label, score in zip(run.labels, scores, strict=True):
        print(f"class {label}: {score:+.4f}")
    print(f"conv1 gives {conv1.shape}; predicted class {int(scores.argmax())}")

    if out_html is not None:
        fig = run.figure("conv1")  # a plotly Figure: one heatmap per channel
        fig.write_html(out_html, include_plotlyjs=True)  # the plotly.js bundle inline: offline
        print(f"wrote {out_html}")

    return {"model_id": lenet.id, "scores": scores, "conv1": conv1, "result": run.data}


def main() -> None:
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    out_html = Path(sys.argv[2] if len(sys.argv) > 2 else "conv1.html")
    with httpx.Client(base_url=base_url, timeout=60) as http:
        run_experiment(http, out_html)


if __name__ == "__main__":
    main()
