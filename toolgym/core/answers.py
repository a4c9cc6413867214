"""Answer normalisation and matching shared by the envs' graders."""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({ch: " " for ch in string.punctuation})


_CACHED_CHARS = 256  # answers up to this long are cached (bounded memory: at most ~8 MB)


def normalize_answer(text: str) -> str:
    """Lower-case, strip accents, punctuation, articles and extra whitespace (SQuAD-style).

    Results for short texts are cached: gold answers and frequent agent answers are normalised
    once.

    >>> normalize_answer("  The Drevmoor-City! ")
    'drevmoor city'
    """
    if len(text) <= _CACHED_CHARS:
        return _normalize_cached(text)
    return _normalize(text)


def _normalize(text: str) -> str:
    if text.isascii():  # NFKD leaves ASCII unchanged and it has no combining marks
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _ARTICLES.sub(" ", text.translate(_PUNCT))
    return " ".join(text.split())


_normalize_cached = functools.lru_cache(maxsize=16_384)(_normalize)


def exact_match(answer: str, gold: str, aliases: Iterable[str] = ()) -> bool:
    """True if ``answer`` equals ``gold`` or one of ``aliases`` after :func:`normalize_answer`."""
    got = normalize_answer(answer)
    return any(got == normalize_answer(str(g)) for g in (gold, *aliases))
