"""Answer normalisation and matching shared by the envs' graders."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({ch: " " for ch in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lower-case, strip accents, punctuation, articles and extra whitespace (SQuAD-style).

    >>> normalize_answer("  The Drevmoor-City! ")
    'drevmoor city'
    """
    if text.isascii():  # NFKD leaves ASCII unchanged and it has no combining marks
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _ARTICLES.sub(" ", text.translate(_PUNCT))
    return " ".join(text.split())


def exact_match(answer: str, gold: str, aliases: Iterable[str] = ()) -> bool:
    """True if ``answer`` equals ``gold`` or one of ``aliases`` after :func:`normalize_answer`."""
    got = normalize_answer(answer)
    return any(got == normalize_answer(str(g)) for g in (gold, *aliases))
