"""Plain-torch oracles: the tutorials' hand-written classes, written as the tutorials write them.

From "Building Models with PyTorch" (TinyModel, a Linear(3, 2), LeNet, nn.Transformer) and
the sequence-models tutorial (LSTMTagger). The presets must build the same parameters,
in the same order, with the same weights for the same seed, and compute the same outputs.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


class TinyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = torch.nn.Linear(100, 200)
        self.activation = torch.nn.ReLU()
        self.linear2 = torch.nn.Linear(200, 10)
        # The tutorial writes torch.nn.Softmax() (dim=None): torch picks dim 1 for a 2-D
        # input and warns that the implicit choice is deprecated. dim=1 says it outright.
        self.softmax = torch.nn.Softmax(dim=1)

    def forward(self, x):
        x = self.linear1(x)
        x = self.activation(x)
        x = self.linear2(x)
        x = self.softmax(x)
        return x


class TinyLinear(torch.nn.Module):
    """The tutorial's ``lin = torch.nn.Linear(3, 2)``, held as ``self.linear``."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x)


class LeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # 1 input image channel (black & white), 6 output channels, 5x5 square convolution
        self.conv1 = torch.nn.Conv2d(1, 6, 5)
        self.conv2 = torch.nn.Conv2d(6, 16, 3)
        # an affine operation: y = Wx + b
        self.fc1 = torch.nn.Linear(16 * 6 * 6, 120)  # 6*6 from image dimension
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        # Max pooling over a (2, 2) window
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        # If the size is a square you can only specify a single number
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, self.num_flat_features(x))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x

    def num_flat_features(self, x):
        size = x.size()[1:]  # all dimensions except the batch dimension
        num_features = 1
        for s in size:
            num_features *= s
        return num_features


class LSTMTagger(nn.Module):
    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        # The LSTM takes word embeddings as inputs, and outputs hidden states
        # with dimensionality hidden_dim.
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        # The linear layer that maps from hidden state space to tag space
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
        return tag_scores


class TransformerModel(nn.Module):
    """``torch.nn.Transformer()`` with its defaults, held as ``self.transformer``."""

    def __init__(self):
        super().__init__()
        with warnings.catch_warnings():
            # "enable_nested_tensor is True, but self.use_nested_tensor is False …"
            warnings.simplefilter("ignore")
            self.transformer = nn.Transformer()

    def forward(self, src, tgt):
        return self.transformer(src, tgt)


def prepare_sequence(seq: list[str], to_ix: dict[str, int]) -> torch.Tensor:
    """The sequence-models tutorial's helper: words to a LongTensor of indices."""
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)
