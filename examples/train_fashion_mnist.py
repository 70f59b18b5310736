"""Train the tutorial's LeNet-5 on Fashion-MNIST through the playground's REST API.

Create a workspace, build LeNet-5 (seed 0), start a training (Adam, batch 64, Fashion-MNIST
padded to 32×32), follow its Server-Sent Events with a progress bar, and print the test
accuracy. A dropped connection is resumed from the last event's id (``Last-Event-ID``).

    python examples/train_fashion_mnist.py [BASE_URL] [STEPS]

BASE_URL defaults to http://127.0.0.1:8000 (start the server with ``python -m server``);
STEPS defaults to one epoch (938 steps at batch 64).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import httpx
from tqdm import tqdm


def sse_events(client: httpx.Client, url: str, headers: dict, after: int) -> Iterator[dict]:
    """The stream's events after ``after``, each as {"id", "event", "data"}; the stream ends
    when the training does."""
    event: dict = {}
    with client.stream(
        "GET", url, headers={**headers, "Last-Event-ID": str(after)}, timeout=None
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line:  # a blank line ends an event
                if "data" in event:
                    yield event
                event = {}
            elif line.startswith(":"):  # a comment: the server's keep-alive ping
                continue
            else:
                field, _, value = line.partition(":")
                event[field] = value[1:] if value.startswith(" ") else value


def train(client: httpx.Client, steps: int | None = None) -> dict:
    token = client.post("/api/workspaces", json={}).raise_for_status().json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    model = client.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=auth)
    model_id = model.raise_for_status().json()["id"]

    config = {
        "dataset": "fashion_mnist",
        "transforms": [{"kind": "scale"}, {"kind": "pad", "size": 32}],
        "optimizer": {"name": "adam", "args": {"lr": 0.001}},
        "loss": {"name": "CrossEntropyLoss"},
        "batch_size": 64,
        "seed": 0,
        "eval_every": 200,
        **({"steps": steps} if steps else {"epochs": 1}),
    }
    url = f"/api/models/{model_id}/trainings"
    training = client.post(url, json=config, headers=auth).raise_for_status().json()
    events_url = f"{url}/{training['id']}/events"

    last_id, status, test_accuracy = 0, training["status"], None
    with tqdm(total=training["total_steps"], unit="step") as bar:
        while status not in ("done", "failed", "cancelled", "interrupted"):
            try:
                for event in sse_events(client, events_url, auth, last_id):
                    last_id = int(event["id"])
                    data = json.loads(event["data"])
                    if event["event"] == "step":
                        bar.update(data["step"] - bar.n)
                        bar.set_postfix(loss=f"{data['loss']:.3f}")
                    elif event["event"] == "eval":
                        test_accuracy = data["test_accuracy"]
                        bar.write(f"step {data['step']}: test accuracy {test_accuracy:.3f}")
                    elif event["event"] == "status":
                        status = data["status"]
            except httpx.TransportError:  # dropped: resume after the last event seen
                continue
            if status not in ("done", "failed", "cancelled", "interrupted"):
                status = client.get(f"{url}/{training['id']}", headers=auth).json()["status"]

    final = client.get(f"{url}/{training['id']}", headers=auth).raise_for_status().json()
    accuracy = final["latest"].get("test_accuracy", test_accuracy)
    print(f"training {final['status']} after {final['step']} steps; test accuracy {accuracy:.4f}")
    return {"model_id": model_id, "training": final, "auth": auth}


def main() -> None:
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else None
    with httpx.Client(base_url=base_url, timeout=60) as client:
        train(client, steps)


if __name__ == "__main__":
    main()
