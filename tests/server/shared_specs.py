"""Specs and training configurations several API test files use (one copy of each)."""

from __future__ import annotations

MLP = {  # digits' 64 pixels -> 10 classes
    "name": "MLP",
    "inputs": {"x": {"shape": [1, 64]}},
    "layers": [
        {"name": "fc1", "type": "Linear", "args": {"in_features": 64, "out_features": 32}},
        {"name": "relu", "type": "ReLU"},
        {"name": "fc2", "type": "Linear", "args": {"in_features": 32, "out_features": 10}},
    ],
}
DIGITS = {  # a short training of MLP on digits
    "dataset": "digits",
    "transforms": [{"kind": "scale"}, {"kind": "flatten"}],
    "optimizer": {"name": "sgd", "args": {"lr": 0.1, "momentum": 0.9}},
    "loss": {"name": "CrossEntropyLoss"},
    "batch_size": 32,
    "steps": 40,
    "seed": 3,
    "eval_every": 20,
}
