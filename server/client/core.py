"""The typed client: one method per route of the playground's REST API (httpx underneath)."""

from __future__ import annotations

from typing import Any, Literal

import httpx
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from tqdm import tqdm  # text bars: no ipywidgets needed in a notebook

from models.tensors import encode
from server.client.errors import check
from server.client.results import Effect, Model, Run, Training, tensor
from server.client.stream import FINISHED, Event, follow

EFFECTS = (
    "pooling",
    "normalization",
    "dropout",
    "activations",
    "activations/softmax",
    "activations/linear-stack",
    "losses",
    "linear",
)
Verb = Literal["pause", "resume", "step", "cancel"]


class Client:
    """``Client("http://127.0.0.1:8000")`` makes a workspace on first use (or takes ``token``).

    Every error answer raises ``PlaygroundError`` (code, message, layer, status). Tensors come
    back as ``torch.Tensor``; runs ask for exact float32 payloads by default.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        token: str | None = None,
        *,
        access_code: str | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.access_code = access_code
        self.token = token
        self.workspace_id: str | None = None
        if token is not None:
            self._auth(token)

    # ------------------------------------------------------------------ plumbing

    def _auth(self, token: str) -> None:
        self.token = token
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _ensure_workspace(self) -> None:
        if self.token is None:
            self.create_workspace()

    def _json(self, method: str, url: str, *, auth: bool = True, **kw: Any) -> Any:
        if auth:
            self._ensure_workspace()
        response = check(self.http.request(method, url, **kw))
        return None if response.status_code == 204 else response.json()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ workspace, library

    def create_workspace(self) -> dict[str, Any]:
        """A new workspace; the client uses its token from now on."""
        headers = {"X-Access-Code": self.access_code} if self.access_code else {}
        ws = self._json("POST", "/api/workspaces", auth=False, headers=headers)
        self.workspace_id = ws["id"]
        self._auth(ws["token"])
        return ws

    def workspace(self) -> dict[str, Any]:
        """The workspace: id, model count, the limits in force."""
        return self._json("GET", "/api/workspaces/me")

    def health(self) -> dict[str, Any]:
        """``/healthz``: "status" is "ok", or "starting" (a 503) while the server warms up."""
        response = self.http.get("/healthz")
        return (response if response.status_code == 503 else check(response)).json()

    def catalog(self) -> dict[str, Any]:
        """Every layer type with its arg schema, defaults and docs."""
        return self._json("GET", "/api/catalog", auth=False)

    def presets(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/presets", auth=False)["presets"]

    def preset(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/presets/{name}", auth=False)

    def validate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Shapes, parameters, bytes and FLOPs per layer, or the error; nothing allocated."""
        return self._json("POST", "/api/validate", auth=False, json={"spec": spec})

    # ------------------------------------------------------------------ models

    def create_model(
        self,
        spec: dict[str, Any] | None = None,
        *,
        preset: str | None = None,
        seed: int | None = None,
    ) -> Model:
        """Build a model from a spec or a preset (seed: the tutorial's manual_seed)."""
        body: dict[str, Any] = {"spec": spec} if spec is not None else {"preset": preset}
        if seed is not None:
            body["seed"] = seed
        return Model(self, self._json("POST", "/api/models", json=body))

    def model(self, model_id: str) -> Model:
        return Model(self, self._json("GET", f"/api/models/{model_id}"))

    def models(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/models")["models"]

    def edit_model(self, model_id: str, spec: dict[str, Any]) -> Model:
        """Replace the spec; unchanged layers keep their weights (``reinitialized``: the rest)."""
        return Model(self, self._json("PUT", f"/api/models/{model_id}", json={"spec": spec}))

    def delete_model(self, model_id: str) -> None:
        self._json("DELETE", f"/api/models/{model_id}")

    def summary(self, model_id: str) -> dict[str, Any]:
        """``str(model)`` and the per-layer table (output shape, params, trainable, FLOPs)."""
        return self._json("GET", f"/api/models/{model_id}/summary")

    def code(self, model_id: str) -> str:
        """The model as a self-contained Python ``nn.Module`` class."""
        return self._json("GET", f"/api/models/{model_id}/code")["code"]

    def weights(self, model_id: str) -> dict[str, torch.Tensor]:
        """The state_dict, from the server's safetensors file."""
        self._ensure_workspace()
        return st_load(check(self.http.get(f"/api/models/{model_id}/weights")).content)

    def load_weights(
        self, model_id: str, tensors: dict[str, torch.Tensor] | bytes
    ) -> dict[str, Any]:
        """Upload a state_dict (or safetensors bytes), checked by the server against the model."""
        data = (
            tensors
            if isinstance(tensors, bytes)
            else st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
        )
        return self._json(
            "PUT",
            f"/api/models/{model_id}/weights",
            content=data,
            headers={"content-type": "application/octet-stream"},
        )

    # ------------------------------------------------------------------ runs, parameters

    def run(
        self,
        model_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        mode: Literal["eval", "train"] = "eval",
        capture: Literal["all", "none"] | list[str] = "all",
        encoding: Literal["f16", "f32", "list"] = "f32",
        seed: int | None = None,
        downsample: bool = False,
        stats: bool = True,
        checkpoint: tuple[str, int] | None = None,
    ) -> Run:
        """Run inputs through the model; a tensor given as an input is sent exactly (f32)."""
        body: dict[str, Any] = {
            "inputs": {k: _input(v) for k, v in (inputs or {}).items()},
            "mode": mode,
            "capture": capture,
            "encoding": encoding,
            "downsample": downsample,
            "stats": stats,
        }
        if seed is not None:
            body["seed"] = seed
        if checkpoint is not None:
            body["checkpoint"] = {"training": checkpoint[0], "step": checkpoint[1]}
        return Run(self._json("POST", f"/api/models/{model_id}/run", json=body))

    def parameters(self, model_id: str) -> dict[str, Any]:
        """The parameter table (name, shape, count, requires_grad, statistics) with totals."""
        return self._json("GET", f"/api/models/{model_id}/parameters")

    def parameter(self, model_id: str, name: str) -> torch.Tensor:
        """One parameter's values, exactly."""
        out = self._json(
            "GET", f"/api/models/{model_id}/parameters/{name}", params={"encoding": "f32"}
        )
        return tensor(out["tensor"])

    def freeze(self, model_id: str, name: str, frozen: bool = True) -> dict[str, Any]:
        """Set ``requires_grad`` of a parameter (``fc1.weight``) or of a layer (``fc1``)."""
        return self._json(
            "PATCH", f"/api/models/{model_id}/parameters/{name}", json={"requires_grad": not frozen}
        )

    # ------------------------------------------------------------------ effects, datasets

    def effect(self, kind: str, **body: Any) -> Effect:
        """An effects-lab experiment (``effect("dropout", p=0.4)``; ``preset="tutorial"``)."""
        if kind not in EFFECTS:
            raise ValueError(f"unknown effect {kind!r}; one of {', '.join(EFFECTS)}")
        return Effect(kind, self._json("POST", f"/api/effects/{kind}", json=body))

    def datasets(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/datasets", auth=False)["datasets"]

    def dataset(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/datasets/{name}", auth=False)

    def sample(self, name: str, split: str, index: int) -> tuple[torch.Tensor, Any]:
        """One sample as stored (before transforms) and its label."""
        out = self._json("GET", f"/api/datasets/{name}/samples/{split}/{index}", auth=False)
        return tensor(out["tensor"]), out["label"]

    def training_options(self) -> dict[str, Any]:
        """Optimizers, losses, schedules and transforms a training may name."""
        return self._json("GET", "/api/training/options", auth=False)

    # ------------------------------------------------------------------ trainings

    def _tpath(self, model_id: str, training_id: str = "") -> str:
        return f"/api/models/{model_id}/trainings" + (f"/{training_id}" if training_id else "")

    def train(
        self, model_id: str, config: dict[str, Any], *, follow: bool = False, progress: bool = True
    ) -> Training:
        """Start a training (202 at once); ``follow=True`` waits for it with a progress bar."""
        t = Training(self, model_id, self._json("POST", self._tpath(model_id), json=config))
        return self.follow(t, progress=progress) if follow else t

    def training(self, model_id: str, training_id: str) -> Training:
        return Training(self, model_id, self._json("GET", self._tpath(model_id, training_id)))

    def trainings(self, model_id: str) -> list[Training]:
        out = self._json("GET", self._tpath(model_id))["trainings"]
        return [Training(self, model_id, t) for t in out]

    def command(self, model_id: str, training_id: str, verb: Verb) -> Training:
        """pause, resume, step (one batch while paused) or cancel."""
        path = f"{self._tpath(model_id, training_id)}/{verb}"
        return Training(self, model_id, self._json("POST", path))

    def pause(self, model_id: str, training_id: str) -> Training:
        return self.command(model_id, training_id, "pause")

    def resume(self, model_id: str, training_id: str) -> Training:
        return self.command(model_id, training_id, "resume")

    def step(self, model_id: str, training_id: str) -> Training:
        return self.command(model_id, training_id, "step")

    def cancel(self, model_id: str, training_id: str) -> Training:
        return self.command(model_id, training_id, "cancel")

    def checkpoints(self, model_id: str, training_id: str) -> list[dict[str, Any]]:
        return self._json("GET", f"{self._tpath(model_id, training_id)}/checkpoints")["checkpoints"]

    def checkpoint_weights(
        self, model_id: str, training_id: str, step: int
    ) -> dict[str, torch.Tensor]:
        self._ensure_workspace()
        url = f"{self._tpath(model_id, training_id)}/checkpoints/{step}/weights"
        return st_load(check(self.http.get(url)).content)

    def restore(self, model_id: str, training_id: str, step: int) -> dict[str, Any]:
        """Make the model's weights those of the checkpoint at ``step``."""
        return self._json(
            "POST", f"{self._tpath(model_id, training_id)}/checkpoints/{step}/restore"
        )

    def events(self, model_id: str, training_id: str, after: int = 0) -> list[Event]:
        """Every event after ``after`` until the training ends (resumed if the connection drops)."""
        self._ensure_workspace()
        path = self._tpath(model_id, training_id)
        return list(follow(self.http, f"{path}/events", after=after, status_url=path))

    def follow(self, training: Training, progress: bool = True) -> Training:
        """Follow the training's events to its end, with a tqdm bar; its events are kept."""
        self._ensure_workspace()
        path = self._tpath(training.model_id, training.id)
        after = training.events[-1]["id"] if training.events else 0
        with tqdm(
            total=training.data["total_steps"],
            unit="step",
            disable=not progress,
            initial=training.data["step"] if not training.events else 0,
        ) as bar:
            for event in follow(self.http, f"{path}/events", after=after, status_url=path):
                training.events.append({"id": event.id, **event.data})
                if event.kind == "step":
                    bar.update(event.data["step"] - bar.n)
                    bar.set_postfix(loss=f"{event.data['loss']:.3f}")
                elif event.kind == "eval" and "test_accuracy" in event.data:
                    bar.set_postfix(test_accuracy=f"{event.data['test_accuracy']:.3f}")
        training.refresh()
        if training.status not in FINISHED:  # pragma: no cover - follow returns at the end
            raise RuntimeError(f"the stream ended with the training {training.status}")
        return training


def _input(value: Any) -> dict[str, Any]:
    """An input maker as the API takes it; a tensor or array is sent as exact f32 lists."""
    if isinstance(value, dict):
        return value
    t = torch.as_tensor(value).detach().cpu()
    if t.is_floating_point():
        payload = encode(t.float(), "f32")
        return {
            "kind": "tensor",
            "data": payload["data"],
            "encoding": "f32",
            "shape": list(t.shape),
        }
    return {"kind": "tensor", "data": t.tolist(), "shape": list(t.shape)}
