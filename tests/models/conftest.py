"""Specs shared by the model tests: the tutorial's LeNet-5 and LSTM tagger, fresh per test."""

from __future__ import annotations

import copy
from typing import Any

import pytest

VOCAB = ["The", "dog", "ate", "the", "apple", "Everybody", "read", "that", "book"]

LENET: dict[str, Any] = {
    "name": "LeNet5",
    "inputs": {"x": {"shape": [1, 1, 32, 32]}},
    "layers": [
        {
            "name": "conv1",
            "type": "Conv2d",
            "args": {"in_channels": 1, "out_channels": 6, "kernel_size": 5},
        },
        {"name": "relu1", "type": "ReLU"},
        {"name": "pool1", "type": "MaxPool2d", "args": {"kernel_size": 2}},
        {
            "name": "conv2",
            "type": "Conv2d",
            "args": {"in_channels": "auto", "out_channels": 16, "kernel_size": 3},
        },
        {"name": "relu2", "type": "ReLU"},
        {"name": "pool2", "type": "MaxPool2d", "args": {"kernel_size": 2}},
        {"name": "flat", "type": "Flatten"},
        {"name": "fc1", "type": "Linear", "args": {"in_features": 576, "out_features": 120}},
        {"name": "relu3", "type": "ReLU"},
        {"name": "fc2", "type": "Linear", "args": {"in_features": 120, "out_features": 84}},
        {"name": "relu4", "type": "ReLU"},
        {"name": "fc3", "type": "Linear", "args": {"in_features": 84, "out_features": 10}},
    ],
}

TAGGER: dict[str, Any] = {
    "name": "LSTMTagger",
    "inputs": {"sentence": {"shape": [5], "dtype": "int64", "vocab": VOCAB}},
    "layers": [
        {
            "name": "word_embeddings",
            "type": "Embedding",
            "args": {"num_embeddings": "auto", "embedding_dim": 6},
        },
        {"name": "as_batch", "type": "Unsqueeze", "args": {"dim": 1}},
        {"name": "lstm", "type": "LSTM", "args": {"input_size": "auto", "hidden_size": 6}},
        {"name": "flat", "type": "Flatten"},
        {
            "name": "hidden2tag",
            "type": "Linear",
            "args": {"in_features": "auto", "out_features": 3},
        },
        {"name": "log_softmax", "type": "LogSoftmax", "args": {"dim": 1}},
    ],
}


@pytest.fixture
def lenet() -> dict[str, Any]:
    """The tutorial's LeNet-5 (conv 1→6 k5, conv 6→16 k3, fc 576→120→84→10) as a spec."""
    return copy.deepcopy(LENET)


@pytest.fixture
def tagger() -> dict[str, Any]:
    """The tutorial's LSTM part-of-speech tagger (vocab 9, embedding 6, hidden 6, 3 tags)."""
    return copy.deepcopy(TAGGER)
