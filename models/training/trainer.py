"""The training loop, run in slices: the tutorials' loop, seeded, resumable at any step.

Each step is ``optimizer.zero_grad()``, forward, loss, ``backward()``, ``optimizer.step()``,
``scheduler.step()``, exactly the loop a tutorial writes (and :mod:`models.training.script`
exports). The Trainer owns its randomness: the data order comes from a private
``torch.Generator(seed)``, and the global RNG (dropout) is swapped in for each slice and
swapped out after, so a run cut into slices with other torch work between them gives the
same bits as one run in one go.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.datasets import DEFAULT_ROOTS, DataRoots, apply_transforms, load_split
from models.errors import SpecError
from models.rng import cuda_indices, seed_streams
from models.training import record
from models.training.check import EVAL_CHUNK, TrainPlan
from models.training.config import TrainConfig, parse_config
from models.training.options import LOSSES, OPTIMIZERS, SCHEDULES
from models.weights import to_safetensors


@dataclass
class SliceResult:
    """What one slice produced, in order: step and eval events, and checkpoints."""

    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)
    done: bool = False


class Trainer:
    """Trains ``model`` in place as ``plan`` (from check_training) and ``config`` say."""

    def __init__(
        self,
        model: nn.Module,
        plan: TrainPlan,
        config: TrainConfig | dict[str, Any],
        device: torch.device | str = "cpu",
        roots: DataRoots = DEFAULT_ROOTS,
    ) -> None:
        self.model, self.plan, self.config = model, plan, parse_config(config)
        self.device = torch.device(device)
        params = self.config.dataset_params
        self.train_data = load_split(plan.dataset.name, "train", params=params, roots=roots)
        self.test_data = load_split(plan.dataset.name, "test", params=params, roots=roots)
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not self.named:
            raise SpecError(
                "nothing_to_train",
                "every parameter of the model is frozen (requires_grad off): unfreeze a layer",
                detail={"field": "model"},
            )
        self.optimizer = OPTIMIZERS[self.config.optimizer.name].cls(
            [p for _, p in self.named], **plan.optimizer_args
        )
        sched = SCHEDULES[self.config.schedule.name].cls
        self.scheduler = sched(self.optimizer, **plan.schedule_args) if sched else None
        loss_cls = LOSSES[self.config.loss.name].cls
        self.loss_fn = loss_cls(**plan.loss_args)
        self.order = torch.Generator().manual_seed(self.config.seed)  # the data order
        with torch.random.fork_rng(devices=self._cuda()):
            # the global stream dropout draws from, as torch.manual_seed(seed) sets it (only on
            # this training's devices: fork_rng restores no others)
            seed_streams(self.config.seed, self._cuda())
            self._rng = self._get_rng()
        self.step = 0
        self.epoch = 0
        self.total_steps = plan.total_steps
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self._checkpoints = set(plan.checkpoint_steps)
        self._saved_zero = False
        self._eval: _Evaluation | None = None

    @property
    def done(self) -> bool:
        """All steps taken and the last evaluation reported."""
        return self.step >= self.total_steps and self._eval is None

    # -- randomness -------------------------------------------------------------------------
    def _cuda(self) -> list[int]:
        return cuda_indices(self.device)

    def _get_rng(self) -> tuple[torch.Tensor, ...]:
        states = [torch.get_rng_state()]
        states += [torch.cuda.get_rng_state(d) for d in self._cuda()]
        return tuple(states)

    @contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Run with this training's global RNG state and mode; give the caller's back after."""
        was_training = self.model.training
        with torch.random.fork_rng(devices=self._cuda()):
            torch.set_rng_state(self._rng[0])
            for d, state in zip(self._cuda(), self._rng[1:], strict=True):
                torch.cuda.set_rng_state(state, d)
            try:
                yield
            finally:
                self._rng = self._get_rng()
                self.model.train(was_training)

    # -- data -------------------------------------------------------------------------------
    def _next_indices(self) -> torch.Tensor:
        n = len(self.train_data)
        if self._pos == 0:
            self._perm = (
                torch.randperm(n, generator=self.order) if self.config.shuffle else torch.arange(n)
            )
        take = self.config.batch_size if self.plan.batched else 1
        idx = self._perm[self._pos : self._pos + take]
        self._pos += take
        if self._pos >= n:
            self._pos = 0
        return idx

    def inputs(self, data, idx: torch.Tensor) -> torch.Tensor:
        """The model's input for samples ``idx``: as float32 (or int64), then the transforms."""
        if not self.plan.batched:
            return data.x[int(idx[0])].to(self.device)
        x = data.x[idx].to(torch.float32)
        x = apply_transforms(x, self.config.transforms, value_range=self.plan.dataset.value_range)
        return x.to(self.device)

    def targets(self, data, idx: torch.Tensor) -> torch.Tensor:
        """The loss's target for samples ``idx``: class indices, a float column, one-hot, values."""
        y = data.y[int(idx[0])] if not self.plan.batched else data.y[idx]
        kind = self.plan.target
        if kind == "binary":
            y = y.to(torch.float32)[:, None]
        elif kind == "onehot":
            y = F.one_hot(y, self.plan.n_classes).to(torch.float32)
        return y.to(self.device)

    def _predict(self, out: torch.Tensor) -> torch.Tensor:
        if self.plan.target == "binary":
            cut = 0.0 if self.config.loss.name == "BCEWithLogitsLoss" else 0.5
            return (out[:, 0] > cut).long()
        return out.argmax(1)

    def _labels(self, data, idx: torch.Tensor) -> torch.Tensor:
        return (data.y[int(idx[0])] if not self.plan.batched else data.y[idx]).to(self.device)

    # -- the loop ---------------------------------------------------------------------------
    def _one_step(self) -> dict[str, Any]:
        rec = self.config.record
        idx = self._next_indices()
        x, target = self.inputs(self.train_data, idx), self.targets(self.train_data, idx)
        step = self.step + 1
        flow = rec.grad_flow_every is not None and step % rec.grad_flow_every == 0
        lr = self.optimizer.param_groups[0]["lr"]

        self.optimizer.zero_grad()
        out = self.model(x)
        loss = self.loss_fn(out, target)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_([p for _, p in self.named], self.config.grad_clip)
        before = {n: p.detach().clone() for n, p in self.named} if flow else {}
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()

        self.step = step
        self.epoch = step // self.plan.steps_per_epoch
        event: dict[str, Any] = {
            "kind": "step",
            "step": step,
            "epoch": (step - 1) // self.plan.steps_per_epoch,
            "loss": record.finite(float(loss.detach())),
            "lr": float(lr),
        }
        if rec.accuracy and self.plan.target != "value":
            hits = self._predict(out.detach()) == self._labels(self.train_data, idx)
            event["accuracy"] = float(hits.float().mean())
        if flow:
            event["grad_flow"] = record.grad_flow(self.named, before)
        if rec.histograms_every is not None and step % rec.histograms_every == 0:
            event["histograms"] = record.histograms(self.named, rec.histogram_bins)
        return event

    def advance(self, max_seconds: float, max_steps: int | None = None) -> SliceResult:
        """Run steps until ``max_seconds`` have passed (at least one step) or ``max_steps``."""
        result = SliceResult()
        start = time.perf_counter()
        taken, progressed = 0, False
        with self._own_rng():
            self.model.train()
            if not self._saved_zero:
                self._saved_zero = True
                if 0 in self._checkpoints:
                    result.checkpoints.append((0, to_safetensors(self.model)))
            while True:
                if self._eval is not None:  # an evaluation under way: finish it first
                    progressed = True
                    while not self._eval.advance(self):
                        if time.perf_counter() - start >= max_seconds:
                            break
                    else:
                        result.events.append(self._eval.event(self))
                        self._eval = None
                    if self._eval is not None:
                        break
                if self.done or (max_steps is not None and taken >= max_steps):
                    break
                if (taken or progressed) and time.perf_counter() - start >= max_seconds:
                    break
                result.events.append(self._one_step())
                taken += 1
                if self.step in self._checkpoints:
                    result.checkpoints.append((self.step, to_safetensors(self.model)))
                if self.step % self.plan.eval_every == 0 or self.step >= self.total_steps:
                    self._eval = _Evaluation(self.plan.n_classes)
        result.done = self.done
        return result

    def evaluate(self) -> dict[str, Any]:
        """Test loss and accuracy (and the confusion matrix) at the current weights."""
        with self._own_rng():
            return self._evaluate()

    def _evaluate(self) -> dict[str, Any]:
        evaluation = _Evaluation(self.plan.n_classes)
        while not evaluation.advance(self):
            pass
        return evaluation.event(self)


class _Evaluation:
    """A pass over the test split, done in chunks so a slice never runs long."""

    def __init__(self, n_classes: int) -> None:
        self.pos = 0
        self.total_loss, self.count, self.hits, self.seen = 0.0, 0, 0, 0
        self.conf = torch.zeros(n_classes, n_classes, dtype=torch.long)

    @torch.no_grad()
    def advance(self, t: Trainer) -> bool:
        """Evaluate the next chunk; True when the whole split is done."""
        data, n = t.test_data, len(t.test_data)
        if self.pos >= n:
            return True
        chunk = EVAL_CHUNK if t.plan.batched else 1
        idx = torch.arange(self.pos, min(self.pos + chunk, n))
        self.pos += len(idx)
        t.model.eval()
        try:
            out = t.model(t.inputs(data, idx))
        finally:
            t.model.train()
        target = t.targets(data, idx)
        self.total_loss += float(t.loss_fn(out, target)) * target.numel()
        self.count += target.numel()
        if t.plan.target != "value":
            pred, true = t._predict(out).cpu(), t._labels(data, idx).cpu()
            self.hits += int((pred == true).sum())
            self.seen += true.numel()
            self.conf += record.confusion(pred, true, t.plan.n_classes)
        return self.pos >= n

    def event(self, t: Trainer) -> dict[str, Any]:
        event: dict[str, Any] = {
            "kind": "eval",
            "step": t.step,
            "epoch": t.epoch,
            "test_loss": record.finite(self.total_loss / self.count),
        }
        if t.plan.target != "value":
            event["test_accuracy"] = self.hits / self.seen
            if t.config.record.confusion:
                event["confusion"] = self.conf.tolist()
        return event
