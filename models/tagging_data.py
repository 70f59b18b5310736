"""The sequence-models tutorial's sentences and tags: the ``lstm_tagger`` preset's vocabulary
and tag set, and the ``pos_tagging`` dataset (a leaf module, so both can import it)."""

from __future__ import annotations

TRAINING_DATA = [
    (["The", "dog", "ate", "the", "apple"], ["DET", "NN", "V", "DET", "NN"]),
    (["Everybody", "read", "that", "book"], ["NN", "V", "DET", "NN"]),
]


def _word_to_ix(data: list[tuple[list[str], list[str]]]) -> dict[str, int]:
    """The tutorial's loop: each word gets the next index the first time it is seen."""
    word_to_ix: dict[str, int] = {}
    for sent, _tags in data:
        for word in sent:
            if word not in word_to_ix:
                word_to_ix[word] = len(word_to_ix)
    return word_to_ix


TAGGER_VOCAB = list(_word_to_ix(TRAINING_DATA))  # The, dog, ate, the, apple, Everybody, …
TAGS = ["DET", "NN", "V"]  # the tutorial's tag_to_ix = {"DET": 0, "NN": 1, "V": 2}
