"""Presets: the tutorial's models (and a few more) as named specs, like minGPT's model table.

Layer names are the attribute names of the tutorial's hand-written classes, so a preset
built with seed S has the same parameter names and the same weights as the tutorial's
class built after ``torch.manual_seed(S)``. Every spec here passes ``models.build.infer``
with the default limits (the preset tests check it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from models.errors import SpecError
from models.inputs import DEFAULT_MAKER
from models.tagging_data import TAGGER_VOCAB, TAGS


@dataclass(frozen=True)
class Preset:
    """A named spec with the inputs it runs on by default.

    ``default_inputs`` maps each spec input to an input-maker dict (see ``models.inputs``).
    The dicts are shared: call :meth:`to_spec` for a copy to edit.
    """

    name: str
    title: str
    description: str
    section: str  # a key of models.catalog.SECTIONS
    spec: dict[str, Any]
    default_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0

    def to_spec(self) -> dict[str, Any]:
        """A deep copy of the spec, safe to change."""
        return copy.deepcopy(self.spec)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "section": self.section,
            "layers": len(self.spec["layers"]),
        }


def _layer(name: str, type_: str, inputs: list[str] | None = None, **args: Any) -> dict[str, Any]:
    layer: dict[str, Any] = {"name": name, "type": type_, "args": args}
    if inputs is not None:
        layer["inputs"] = inputs
    return layer


def _random(seed: int = 0) -> dict[str, Any]:
    return {**DEFAULT_MAKER, "seed": seed}


EMBEDDING_DIM = 6
HIDDEN_DIM = 6

# A tiny vocabulary for the sentiment classifier: 30 common words and "<unk>".
REVIEW_VOCAB = [
    "<unk>", "the", "a", "this", "movie", "film", "was", "is", "not", "very", "really",
    "so", "too", "good", "great", "fun", "bad", "awful", "boring", "loved", "hated", "it",
    "i", "and", "but", "acting", "music", "story", "plot", "ending", "well",
]  # fmt: skip
REVIEW = "the movie was not good but the acting was great and i really loved the music"

# -- the presets -----------------------------------------------------------------------------
_PRESETS = [
    Preset(
        "tiny_model",
        "TinyModel",
        "The tutorial's first model: two Linear layers with a ReLU between them and a "
        "softmax on top, 22,210 parameters in all.",
        "module_parameter",
        {
            "name": "TinyModel",
            "inputs": {"x": {"shape": [1, 100]}},
            "layers": [
                _layer("linear1", "Linear", in_features=100, out_features=200),
                _layer("activation", "ReLU"),
                _layer("linear2", "Linear", in_features=200, out_features=10),
                # The tutorial writes torch.nn.Softmax() (dim=None): torch then picks dim 1 for
                # a 2-D input and warns that the implicit choice is deprecated. Same result,
                # said explicitly.
                _layer("softmax", "Softmax", dim=1),
            ],
        },
        {"x": _random()},
    ),
    Preset(
        "linear_3_2",
        "Linear(3, 2)",
        "One Linear layer, small enough to check by hand: y = x·Wᵀ + b with a 2×3 weight "
        "and 2 biases.",
        "linear",
        {
            "name": "TinyLinear",
            "inputs": {"x": {"shape": [1, 3]}},
            "layers": [_layer("linear", "Linear", in_features=3, out_features=2)],
        },
        {"x": _random()},
    ),
    Preset(
        "lenet5",
        "LeNet-5",
        "The tutorial's LeNet-5 on a 32×32 grey image: two convolutions with max pooling, "
        "then three Linear layers (6×28×28 → 6×14×14 → 16×12×12 → 16×6×6 → 576 → 10).",
        "convolution",
        {
            "name": "LeNet",
            "inputs": {"x": {"shape": [1, 1, 32, 32]}},
            "layers": [
                _layer("conv1", "Conv2d", in_channels=1, out_channels=6, kernel_size=5),
                _layer("relu1", "ReLU"),
                _layer("pool1", "MaxPool2d", kernel_size=2),
                _layer("conv2", "Conv2d", in_channels=6, out_channels=16, kernel_size=3),
                _layer("relu2", "ReLU"),
                _layer("pool2", "MaxPool2d", kernel_size=2),
                _layer("flat", "Flatten"),  # the tutorial's x.view(-1, num_flat_features(x))
                _layer("fc1", "Linear", in_features=576, out_features=120),
                _layer("relu3", "ReLU"),
                _layer("fc2", "Linear", in_features=120, out_features=84),
                _layer("relu4", "ReLU"),
                _layer("fc3", "Linear", in_features=84, out_features=10),
            ],
            "labels": [str(d) for d in range(10)],
        },
        {"x": _random()},
    ),
    Preset(
        "lstm_tagger",
        "LSTM part-of-speech tagger",
        "The sequence-models tutorial's tagger: each word of a 5-word sentence is embedded, "
        "read by an LSTM, and scored as determiner, noun or verb.",
        "recurrent",
        {
            "name": "LSTMTagger",
            "inputs": {"sentence": {"shape": [5], "dtype": "int64", "vocab": TAGGER_VOCAB}},
            "layers": [
                _layer(
                    "word_embeddings",
                    "Embedding",
                    num_embeddings=len(TAGGER_VOCAB),
                    embedding_dim=EMBEDDING_DIM,
                ),
                _layer("as_batch", "Unsqueeze", dim=1),  # embeds.view(len(sentence), 1, -1)
                _layer("lstm", "LSTM", input_size=EMBEDDING_DIM, hidden_size=HIDDEN_DIM),
                _layer("flat", "Flatten"),  # lstm_out.view(len(sentence), -1)
                _layer("hidden2tag", "Linear", in_features=HIDDEN_DIM, out_features=len(TAGS)),
                _layer("log_softmax", "LogSoftmax", dim=1),
            ],
            "labels": TAGS,
        },
        {"sentence": {"kind": "tokens", "text": "The dog ate the apple"}},
    ),
    Preset(
        "transformer",
        "nn.Transformer",
        "torch.nn.Transformer with its defaults (d_model 512, 8 heads, 6 encoder and 6 "
        "decoder layers, 44 M parameters). The tutorial feeds a batch of 32; here the batch "
        "is 1 to stay light.",
        "transformer",
        {
            "name": "TransformerModel",
            "inputs": {"src": {"shape": [10, 1, 512]}, "tgt": {"shape": [20, 1, 512]}},
            "layers": [_layer("transformer", "Transformer", inputs=["src", "tgt"])],
        },
        {"src": _random(0), "tgt": _random(1)},
    ),
    Preset(
        "transformer_classifier",
        "Transformer sentiment classifier",
        "A small encoder-only transformer: 16 word tokens are embedded, mixed by two "
        "self-attention layers, averaged, and scored as negative or positive.",
        "transformer",
        {
            "name": "TransformerClassifier",
            "inputs": {"tokens": {"shape": [1, 16], "dtype": "int64", "vocab": REVIEW_VOCAB}},
            "layers": [
                _layer("embedding", "Embedding", num_embeddings="auto", embedding_dim=32),
                _layer(
                    "encoder",
                    "TransformerEncoder",
                    d_model="auto",
                    nhead=4,
                    dim_feedforward=64,
                    dropout=0.1,
                    batch_first=True,
                    num_layers=2,
                ),
                _layer("pool", "Mean", dim=1),
                _layer("classifier", "Linear", in_features="auto", out_features=2),
            ],
            "labels": ["negative", "positive"],
        },
        {"tokens": {"kind": "tokens", "text": REVIEW}},
    ),
    Preset(
        "mlp",
        "Multilayer perceptron",
        "A 28×28 image flattened into 784 numbers and passed through three Linear layers, "
        "with ReLU and dropout between them.",
        "beyond",
        {
            "name": "MLP",
            "inputs": {"x": {"shape": [1, 1, 28, 28]}},
            "layers": [
                _layer("flatten", "Flatten"),
                _layer("fc1", "Linear", in_features=784, out_features=128),
                _layer("relu1", "ReLU"),
                _layer("dropout", "Dropout", p=0.2),
                _layer("fc2", "Linear", in_features=128, out_features=64),
                _layer("relu2", "ReLU"),
                _layer("fc3", "Linear", in_features=64, out_features=10),
            ],
            "labels": [str(d) for d in range(10)],
        },
        {"x": _random()},
    ),
    Preset(
        "small_cnn",
        "Small CNN",
        "Two convolution blocks (Conv2d, BatchNorm2d, ReLU, MaxPool2d) on a 32×32 colour "
        "image; the sizes marked auto are read from the layer before.",
        "beyond",
        {
            "name": "SmallCNN",
            "inputs": {"x": {"shape": [1, 3, 32, 32]}},
            "layers": [
                _layer(
                    "conv1", "Conv2d", in_channels="auto", out_channels=16, kernel_size=3, padding=1
                ),
                _layer("bn1", "BatchNorm2d", num_features="auto"),
                _layer("relu1", "ReLU"),
                _layer("pool1", "MaxPool2d", kernel_size=2),
                _layer(
                    "conv2", "Conv2d", in_channels="auto", out_channels=32, kernel_size=3, padding=1
                ),
                _layer("bn2", "BatchNorm2d", num_features="auto"),
                _layer("relu2", "ReLU"),
                _layer("pool2", "MaxPool2d", kernel_size=2),
                _layer("dropout", "Dropout", p=0.25),
                _layer("flat", "Flatten"),
                _layer("fc", "Linear", in_features="auto", out_features=10),
            ],
        },
        {"x": _random()},
    ),
    Preset(
        "residual_block",
        "Residual block",
        "A ResNet basic block: two 3×3 convolutions with batch norm, whose result is added "
        "back to the block's input before the last ReLU.",
        "beyond",
        {
            "name": "ResidualBlock",
            "inputs": {"x": {"shape": [1, 8, 16, 16]}},
            "layers": [
                _layer(
                    "conv1",
                    "Conv2d",
                    in_channels=8,
                    out_channels=8,
                    kernel_size=3,
                    padding=1,
                    bias=False,
                ),
                _layer("bn1", "BatchNorm2d", num_features=8),
                _layer("relu1", "ReLU"),
                _layer(
                    "conv2",
                    "Conv2d",
                    in_channels=8,
                    out_channels=8,
                    kernel_size=3,
                    padding=1,
                    bias=False,
                ),
                _layer("bn2", "BatchNorm2d", num_features=8),
                _layer("add", "Add", inputs=["x", "bn2"]),  # the skip connection
                _layer("relu", "ReLU"),
            ],
        },
        {"x": _random()},
    ),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``unknown_preset`` naming the known presets otherwise."""
    preset = PRESETS.get(name)
    if preset is None:
        raise SpecError(
            "unknown_preset",
            f"There is no preset '{name}'. Known presets: {', '.join(PRESETS)}.",
            detail={"preset": name, "known": list(PRESETS)},
        )
    return preset


def preset_list() -> list[dict[str, Any]]:
    """One line per preset: name, title, description, section and layer count."""
    return [p.summary() for p in PRESETS.values()]
