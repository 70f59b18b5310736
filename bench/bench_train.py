"""Bench: training step throughput of the playground's Trainer against the plain torch loop.

LeNet-5 (the preset) on Fashion-MNIST padded to 32×32, batch 64, Adam. In the same run,
interleaved and repeated:

- plain: the tutorial's hand-written LeNet and loop (zero_grad, forward, loss, backward,
  step), the batch indexed from the same uint8 tensors and transformed in torch;
- trainer: ``models.training.Trainer`` with the default recording (loss, lr and accuracy
  every step, gradient flow every 10 steps), advanced in slices of ``--slice`` seconds as
  the server runs it, its global RNG swapped in and out around each slice.

Each round times ``--chunk`` steps of each (in ABBA order); the medians of steps/s and the
ratios are printed (target: trainer / plain time ≤ 1.10), with the ratio of process CPU time, which
a busy shared machine disturbs less than wall time. With ``--accuracy`` it then trains LeNet-5
with Adam until the test accuracy reaches 85 % (evaluating every 200 steps; evaluation time
is not counted) and prints the time, the steps and the accuracy after one epoch.
Not part of the test suite: ``python bench/bench_train.py [--accuracy] [--threads N]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from models.build import build
from models.datasets import DataRoots, load_split
from models.limits import DEFAULT_LIMITS
from models.presets import PRESETS
from models.training import Trainer, check_training

TRANSFORMS = [{"kind": "pad", "size": 32}, {"kind": "scale"}]


class LeNet(nn.Module):
    """The tutorial's LeNet-5."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class PlainLoop:
    """The hand-written loop, resumable by chunks of steps."""

    def __init__(self, seed: int, batch: int) -> None:
        torch.manual_seed(seed)
        self.model = LeNet()
        self.optimizer = torch.optim.Adam(self.model.parameters())
        self.loss_fn = nn.CrossEntropyLoss()
        self.train = load_split("fashion_mnist", "train")
        self.order = torch.Generator().manual_seed(seed)
        self.batch, self.pos, self.perm = batch, 0, None

    def steps(self, n: int) -> None:
        self.model.train()
        for _ in range(n):
            if self.pos == 0:
                self.perm = torch.randperm(len(self.train), generator=self.order)
            idx = self.perm[self.pos : self.pos + self.batch]
            self.pos = 0 if self.pos + self.batch >= len(self.train) else self.pos + self.batch
            x = F.pad(self.train.x[idx].float(), (2, 2, 2, 2)) / 255.0
            y = self.train.y[idx]
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            loss.item()  # the playground reads the loss every step; so does a tutorial's print


def make_trainer(config: dict) -> Trainer:
    spec = PRESETS["lenet5"].to_spec()
    plan = check_training(spec, config, DataRoots(), DEFAULT_LIMITS)
    return Trainer(build(spec, seed=0).model, plan, config, "cpu", DataRoots())


def throughput(rounds: int, chunk: int, batch: int, slice_s: float) -> None:
    config = {
        "dataset": "fashion_mnist",
        "transforms": TRANSFORMS,
        "batch_size": batch,
        "epochs": 20,
    }
    trainer = make_trainer(config)
    plain = PlainLoop(0, batch)
    plain.steps(5)  # warm up both
    trainer.advance(math.inf, max_steps=5)

    def run_plain() -> None:
        plain.steps(chunk)

    def run_trainer() -> None:
        done = 0
        while done < chunk:
            events = trainer.advance(slice_s, chunk - done).events
            done += sum(e["kind"] == "step" for e in events)

    rates: dict[str, list[float]] = {"plain": [], "trainer": []}
    ratios, cpu_ratios = [], []
    for r in range(rounds):  # ABBA order, so a drift in machine load hits both alike
        order = [("plain", run_plain), ("trainer", run_trainer)]
        wall, cpu = {}, {}
        for name, fn in order if r % 2 == 0 else order[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name] = time.perf_counter() - start
            cpu[name] = time.process_time() - start_cpu
            rates[name].append(chunk / wall[name])
        ratios.append(wall["trainer"] / wall["plain"])
        cpu_ratios.append(cpu["trainer"] / cpu["plain"])
    plain_rate = statistics.median(rates["plain"])
    trainer_rate = statistics.median(rates["trainer"])
    print(f"LeNet-5 / Fashion-MNIST, batch {batch}, {rounds} rounds × {chunk} steps, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"  plain torch loop : {plain_rate:8.1f} steps/s")
    print(f"  playground       : {trainer_rate:8.1f} steps/s  (slices of {slice_s * 1000:.0f} ms)")
    print(f"  time ratio playground / plain: {plain_rate / trainer_rate:.3f} (of the medians), "
          f"{statistics.median(ratios):.3f} (median per round)  (target ≤ 1.10)")  # fmt: skip
    print(f"  CPU-time ratio (median per round; steadier on a shared box): "
          f"{statistics.median(cpu_ratios):.3f}")  # fmt: skip


def to_accuracy(batch: int, target: float, every: int) -> None:
    config = {
        "dataset": "fashion_mnist",
        "transforms": [*TRANSFORMS, {"kind": "normalize", "mean": 0.2860, "std": 0.3530}],
        "optimizer": {"name": "adam", "args": {"lr": 0.001}},
        "batch_size": batch,
        "epochs": 20,
        "eval_every": 10**7,  # evaluated by hand below, outside the timed part
    }
    trainer = make_trainer(config)
    per_epoch = trainer.plan.steps_per_epoch
    spent, reached, epoch_acc = 0.0, None, None
    while not trainer.done and (reached is None or epoch_acc is None):
        stop = trainer.step + every - trainer.step % every
        if trainer.step < per_epoch:
            stop = min(stop, per_epoch)  # evaluate exactly at one epoch too
        start = time.perf_counter()
        trainer.advance(math.inf, stop - trainer.step)
        spent += time.perf_counter() - start
        acc = trainer.evaluate()["test_accuracy"]
        if trainer.step == per_epoch:
            epoch_acc = acc
        if reached is None and acc >= target:
            reached = (trainer.step, spent, acc)
    if epoch_acc is not None:
        print(f"  test accuracy after one epoch ({per_epoch} steps): {epoch_acc:.4f}")
    if reached is not None:
        step, secs, acc = reached
        print(f"  reached {acc:.4f} ≥ {target} after {step} steps, {secs:.1f} s of training")
    else:
        print(f"  did not reach {target} in {trainer.step} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--chunk", type=int, default=50, help="steps timed per round")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--slice", type=float, default=0.1, help="seconds per Trainer slice")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--accuracy", action="store_true", help="also time reaching 85 %")
    parser.add_argument("--target", type=float, default=0.85)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    throughput(args.rounds, args.chunk, args.batch, args.slice)
    if args.accuracy:
        to_accuracy(args.batch, args.target, 200)


if __name__ == "__main__":
    main()
