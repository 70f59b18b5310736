"""Pay torch's one-time costs before the first request does.

The first shape inference of a process takes 1.7-2.7 s instead of milliseconds: torch's
``FlopCounterMode`` imports about 820 modules (``torch._dynamo``, sympy) on first use, and the
first forward of each kind of layer initialises its kernels. :func:`warm_up` pays that once
per process: it infers every preset on the meta device (which also leaves their layers in
``models.layer_memo``, so a preset's first validation answers from memory) and runs a first
probe of LeNet-5 with its statistics and encoding. A server calls it in a background thread
at start-up and says "starting" until it is done (``server/readiness.py``).
"""

from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_done = threading.Event()


def is_warm() -> bool:
    """Whether :func:`warm_up` has finished in this process."""
    return _done.is_set()


def warm_up() -> None:
    """Infer every preset and probe LeNet-5 once; idempotent and thread-safe (a second
    caller waits for the first)."""
    with _lock:
        if _done.is_set():
            return
        from models.build import build
        from models.inference import infer
        from models.presets import PRESETS
        from models.probe import describe, probe

        for preset in PRESETS.values():
            infer(preset.spec)
        lenet = PRESETS["lenet5"]
        built = build(lenet.spec, seed=lenet.seed)
        shape = lenet.spec["inputs"]["x"]["shape"]
        result = probe(built.model, {"x": torch.zeros(shape)}, capture="all")
        describe(result, max_elements=1024)
        _done.set()
