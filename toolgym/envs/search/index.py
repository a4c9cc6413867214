"""The BM25 index behind ``Search-v0``'s ``search`` tool, with an exact top-k that only scores
the documents that can reach it.

The index is ``bm25s``'s (Lucene BM25, its default tokenizer with English stop words, over
``title + " " + text``): a sparse matrix with one column per vocabulary token holding that token's
precomputed BM25 contribution to each document containing it. ``bm25s`` answers a query by adding
the query tokens' columns into a dense array of every document's score and partitioning it, which
costs O(documents) per query whatever the query. :meth:`Corpus.search` gives the same results
(same documents, same order, same float32 scores) while touching only the documents that can
reach the top k, in the spirit of the MaxScore algorithm of information retrieval:

1. Query tokens are mapped to ids with a dict lookup in the tokenizer's vocabulary (what
   ``bm25s``'s tokenizer does with ``update_vocab=False``, without creating its progress bar).
2. The distinct tokens are taken rarest first. After the documents of the rarer tokens have been
   scored exactly, the k-th best score is compared with an upper bound on the score of any other
   document: the sum of the remaining tokens' largest contributions (precomputed per column).
   When the bound is strictly lower, no other document can enter the top k and the search stops.
3. When one frequent token remains, the other documents can only score through that token, so
   its first entries in (contribution, document order) order complete the candidates.
4. Otherwise (and for corpora of at most :data:`_DENSE_DOCS` documents, such as the shipped one,
   where this is cheaper) every document is scored, as ``bm25s`` does, and only the documents
   reaching the k-th score are sorted.

Scores are summed in float32 in the order of the query's tokens, as ``bm25s`` does, so they are
bit-for-bit ``bm25s``'s; ties are broken by corpus order.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.tokenization import Tokenizer

SNIPPET_CHARS = 100
"""Characters of a document's (whitespace-normalised) text shown in a search hit."""

_SMALL_COLUMN = 4096
"""Tokens in at most this many documents are always scored exactly (cheap); larger ones are
scored only through the bounds above."""

_DENSE_DOCS = 16_384
"""Up to this many documents, scoring every document is cheaper than pruning (fewer numpy calls)."""

_COLUMN_TOP_MIN = 64
"""Smallest number of leading entries cached per frequent column (step 3)."""

_DENSE_ROW_SHARE = 1 / 32
"""In the dense path, a token in more than this share of the documents is added as a precomputed
dense row (one vector add) instead of scattered (a gather, an add and a scatter per entry)."""

_DENSE_ROW_BYTES = 8 << 20
"""At most this much memory for those rows (the most frequent tokens first)."""

_BOUND_SLACK = 1e-6
"""Relative slack per summed token on the upper bound, covering float32 rounding of the sums."""


def snippet(text: str) -> str:
    """The first :data:`SNIPPET_CHARS` characters of ``text`` with runs of whitespace collapsed
    (``…`` appended when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "…"


class Corpus:
    """Documents with a BM25 index (``bm25s``, Lucene variant, English stop words).

    Args:
        path: A ``corpus.jsonl`` with one ``{"id", "title", "type", "text"}`` object per line.

    Attributes:
        docs: The documents, in file order (the order that breaks score ties).
        by_id: The documents by id.
        hit_lines: For each document, its search-hit line without the rank,
            ``"[{doc_id}] {title}: {snippet}"``, prepared once when the corpus loads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open(encoding="utf-8") as fh:
            self.docs: list[dict[str, Any]] = [json.loads(line) for line in fh if line.strip()]
        self.by_id = {doc["id"]: doc for doc in self.docs}
        self.hit_lines = [f"[{d['id']}] {d['title']}: {snippet(d['text'])}" for d in self.docs]
        tokenizer = Tokenizer(stopwords="en")
        ids = tokenizer.tokenize(
            [f"{d['title']} {d['text']}" for d in self.docs], return_as="ids", show_progress=False
        )
        self._bm25 = bm25s.BM25(method="lucene")
        self._bm25.index(ids, show_progress=False)
        # What bm25s's tokenizer does for a query with update_vocab=False, as plain lookups (so
        # searching is also thread-safe without a lock).
        self._vocab: dict[str, int] = dict(tokenizer.word_to_id)
        self._empty_id = self._vocab.get("")
        self._lower = tokenizer.lower
        self._split = tokenizer.splitter
        scores = self._bm25.scores
        self._data: np.ndarray = scores["data"]
        self._indices: np.ndarray = scores["indices"]
        self._indptr: np.ndarray = np.asarray(scores["indptr"], dtype=np.int64)
        self._bounds: list[int] = self._indptr.tolist()  # plain ints: cheaper to slice with
        self._num_docs = int(scores["num_docs"])
        self._column_max = _column_max(self._data, self._indptr)
        self._column_top: dict[int, np.ndarray] = {}
        self._dense_rows = self._frequent_rows() if self._num_docs <= _DENSE_DOCS else {}

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickle by path: the unpickling process loads (or reuses) its own cached index.
        return load_corpus, (str(self.path),)

    def query_ids(self, query: str) -> list[int]:
        """The vocabulary ids of ``query``'s tokens, in order (repeats kept, unknown words and
        stop words dropped); the empty token's id when none is left, as ``bm25s``'s tokenizer."""
        text = query.lower() if self._lower else query
        vocab = self._vocab
        ids = [vocab[word] for word in self._split(text) if word in vocab]
        if not ids and self._empty_id is not None:
            ids = [self._empty_id]
        return ids

    def search(self, query: str, k: int) -> list[tuple[dict[str, Any], float]]:
        """The top-``k`` documents for ``query`` with their BM25 scores (score > 0), best first;
        ties are broken by corpus order so results are deterministic."""
        return [(self.docs[i], score) for i, score in self.top_k(query, k)]

    def top_k(self, query: str, k: int) -> list[tuple[int, float]]:
        """Like :meth:`search`, as ``(document index, score)`` pairs."""
        tokens = self.query_ids(query)
        k = min(k, self._num_docs)
        if not tokens or k < 1:
            return []
        found = None if self._num_docs <= _DENSE_DOCS else self._pruned_top_k(tokens, k)
        if found is None:
            found = self._dense_top_k(tokens, k)
        docs, scores = found
        # tolist gives Python ints and floats already
        return [(i, s) for i, s in zip(docs.tolist(), scores.tolist(), strict=True) if s > 0]

    # ------------------------------------------------------------------ internals
    def _column(self, token: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self._bounds[token], self._bounds[token + 1]
        return self._indices[start:end], self._data[start:end]

    def _scores_of(self, docs: np.ndarray, tokens: list[int]) -> np.ndarray:
        """Exact scores of the (sorted, unique) ``docs``: contributions added in query order."""
        contributions: dict[int, np.ndarray] = {}
        zero = self._data.dtype.type(0)
        for token in dict.fromkeys(tokens):
            indices, data = self._column(token)
            if len(indices) == 0:
                continue
            pos = np.minimum(np.searchsorted(indices, docs), len(indices) - 1)
            contributions[token] = np.where(indices[pos] == docs, data[pos], zero)
        scores = np.zeros(len(docs), dtype=self._data.dtype)
        for token in tokens:
            column = contributions.get(token)
            if column is not None:
                scores += column
        return scores

    @staticmethod
    def _ordered(docs: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``k`` of ``docs`` by (score descending, document order); only documents
        scoring at least the k-th score are sorted."""
        if len(scores) > 4 * k:
            kth = scores[(-scores).argpartition(k - 1)[k - 1]]  # (np.partition is slow on ties)
            keep = ((scores >= kth) if kth > 0 else (scores > 0)).nonzero()[0]
            docs, scores = docs[keep], scores[keep]
        order = np.lexsort((docs, -scores))[:k]
        return docs[order], scores[order]

    def _pruned_top_k(self, tokens: list[int], k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Steps 2 and 3 of the module docstring; ``None`` when they cannot decide."""
        counts: dict[int, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        sizes = {t: self._bounds[t + 1] - self._bounds[t] for t in counts}
        order = sorted(counts, key=lambda t: (sizes[t], t))
        split = next((i for i, t in enumerate(order) if sizes[t] > _SMALL_COLUMN), len(order))
        candidates = _union([self._column(t)[0] for t in order[:split]], self._indices.dtype)
        rest = order[split:]
        if not rest:  # every token's documents are candidates: they are all that score
            return self._ordered(candidates, self._scores_of(candidates, tokens), k)
        if len(candidates) >= k:
            scores = self._scores_of(candidates, tokens)
            kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
            bound = sum(counts[t] * float(self._column_max[t]) for t in rest)
            if bound * (1 + _BOUND_SLACK * len(tokens)) < float(kth):
                return self._ordered(candidates, scores, k)
        # One frequent token left, in at most two copies (x + x is exact in float32, so a larger
        # contribution still means a larger score): the other documents score only through it,
        # so its leading entries complete the candidates.
        if len(rest) == 1 and counts[rest[0]] <= 2:
            leading = self._leading_entries(rest[0], k + len(candidates))
            pool = _union([candidates, leading], self._indices.dtype)
            return self._ordered(pool, self._scores_of(pool, tokens), k)
        return None

    def _leading_entries(self, token: int, count: int) -> np.ndarray:
        """The first ``count`` documents of ``token``'s column in (contribution descending,
        document order) order; cached per column."""
        cached = self._column_top.get(token)
        if cached is not None and len(cached) >= count:
            return cached[:count]
        indices, data = self._column(token)
        keep = max(_COLUMN_TOP_MIN, 1 << (count - 1).bit_length())
        if keep >= len(indices):
            chosen = np.arange(len(indices))
        else:
            threshold = np.partition(data, len(data) - keep)[len(data) - keep]
            chosen = np.flatnonzero(data >= threshold)  # all ties at the threshold
        chosen = chosen[np.lexsort((indices[chosen], -data[chosen]))][:keep]
        leading = indices[chosen]
        self._column_top[token] = leading
        return leading[:count]

    def _frequent_rows(self) -> dict[int, np.ndarray]:
        """Dense score rows of the tokens in more than :data:`_DENSE_ROW_SHARE` of the documents,
        most frequent first, within :data:`_DENSE_ROW_BYTES`."""
        sizes = np.diff(self._indptr)
        frequent = np.flatnonzero(sizes > self._num_docs * _DENSE_ROW_SHARE)
        frequent = frequent[np.argsort(-sizes[frequent], kind="stable")]
        budget = _DENSE_ROW_BYTES // max(1, self._num_docs * self._data.dtype.itemsize)
        rows: dict[int, np.ndarray] = {}
        for token in frequent[:budget].tolist():
            indices, data = self._column(token)
            row = np.zeros(self._num_docs, dtype=self._data.dtype)
            row[indices] = data
            rows[token] = row
        return rows

    def _dense_top_k(self, tokens: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Every document's score (what ``bm25s``'s ``get_scores`` computes: each token's column
        added in query order), then the top ``k`` (ties by corpus order). A frequent token's
        column is added as its dense row: adding its zeros changes no float32 sum, so the scores
        are the same bits."""
        scores = np.zeros(self._num_docs, dtype=self._data.dtype)
        bounds, indices, data, rows = self._bounds, self._indices, self._data, self._dense_rows
        for token in tokens:
            row = rows.get(token)
            if row is not None:
                scores += row
                continue
            start, end = bounds[token], bounds[token + 1]
            if end > start:  # a column holds each document once, so += adds like np.add.at
                scores[indices[start:end]] += data[start:end]
        matching = (scores > 0).nonzero()[0]
        return self._ordered(matching, scores[matching], k)


def _union(columns: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """The sorted union of sorted, duplicate-free arrays."""
    if not columns:
        return np.empty(0, dtype=dtype)
    if len(columns) == 1:
        return columns[0]
    merged = np.concatenate(columns)
    merged.sort()
    if len(merged) > 1:
        merged = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
    return merged


def _column_max(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """The largest entry of each column of a CSC matrix (0 for an empty column)."""
    out = np.zeros(len(indptr) - 1, dtype=np.float64)
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if len(nonempty):
        out[nonempty] = np.maximum.reduceat(data, indptr[nonempty])
    return out


@lru_cache(maxsize=4)
def load_corpus(path: str) -> Corpus:
    """Load and index a corpus once per process (the index takes about a second to build)."""
    return Corpus(Path(path))
