"""Text to token ids: the ``tokens`` input maker's lookup in a model input's vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

from models.errors import SpecError, fmt_shape

_PUNCT = ".,!?;:\"'"


def _lookup(word: str, exact: dict[str, int], folded: dict[str, list[int]]) -> int | None:
    for w in (word, word.strip(_PUNCT)):
        if w in exact:
            return exact[w]
    hits = folded.get(word.strip(_PUNCT).casefold(), [])
    return hits[0] if len(hits) == 1 else None


def tokenize(text: str, vocab: Sequence[str]) -> tuple[list[int], list[str]]:
    """Split ``text`` on whitespace and look every word up in ``vocab``.

    A word matches exactly (as written, then without surrounding ``.,!?;:"'``), else
    case-insensitively when only one vocabulary word matches that way. Words that are only
    punctuation are skipped. Returns the indices and the vocabulary words they stand for.
    """
    exact: dict[str, int] = {}
    folded: dict[str, list[int]] = {}
    for i, w in enumerate(vocab):
        if w not in exact:
            exact[w] = i
            folded.setdefault(w.casefold(), []).append(i)
    ids: list[int] = []
    unknown: list[str] = []
    for word in text.split():
        if not word.strip(_PUNCT) and word not in exact:
            continue
        idx = _lookup(word, exact, folded)
        if idx is None:
            if word.strip(_PUNCT) not in unknown:
                unknown.append(word.strip(_PUNCT))
        else:
            ids.append(idx)
    if unknown:
        known = ", ".join(list(exact)[:20]) + (" …" if len(exact) > 20 else "")
        raise SpecError(
            "unknown_token",
            f"unknown word{'s' if len(unknown) > 1 else ''} {', '.join(repr(w) for w in unknown)}: "
            "not in the vocabulary (or matching more than one word when case is ignored). "
            f"Use words it knows: {known}",
            detail={"unknown": unknown},
        )
    if not ids:
        raise SpecError("invalid_input", "the text has no words; type a sentence")
    return ids, [vocab[i] for i in ids]


def token_shape(n: int, shape: Sequence[int] | None) -> tuple[int, ...]:
    """The shape of a sequence of ``n`` tokens for an input declared (L,), (1, L) or (L, 1)."""
    if shape is None or len(shape) == 1:
        return (n,)
    if len(shape) == 2 and shape[0] == 1:
        return (1, n)
    if len(shape) == 2 and shape[1] == 1:
        return (n, 1)
    raise SpecError(
        "input_shape_mismatch",
        f"token input makes one sequence, but the input is declared {fmt_shape(shape)}; "
        "declare it as (L,), (1, L) or (L, 1)",
    )
