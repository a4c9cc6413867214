"""A text space that holds real text.

Gymnasium's :class:`~gymnasium.spaces.Text` only accepts characters of its charset (62
alphanumerics by default, not even a space), and its shared-memory support for async vector envs
stores characters as indices into that charset. :class:`TextSpace` accepts any ``str`` up to
``max_length`` characters, samples printable text, and is stored in shared memory as UTF-8 bytes,
so ``gym.make_vec(..., vectorization_mode="async")`` works with the default arguments.
"""

from __future__ import annotations

import multiprocessing as mp
import string
from collections.abc import Sequence
from ctypes import c_uint8
from multiprocessing.sharedctypes import SynchronizedArray
from types import ModuleType
from typing import Any, overload

import numpy as np
from gymnasium.spaces import Text
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

_LENGTH_BYTES = 4
_SAMPLE_MAX_CHARS = 256


class TextSpace(Text):
    """Any Python ``str`` of at most ``max_length`` characters.

    Args:
        max_length: Maximum number of characters.
        seed: Seed for :meth:`sample`.
    """

    def __init__(self, max_length: int, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length=max_length, min_length=0, charset=string.printable, seed=seed)

    def contains(self, x: Any) -> bool:
        """True for any ``str`` whose length is at most ``max_length``."""
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """Random printable text of up to 256 characters (or as the mask/probability say)."""
        if mask is None and probability is None:
            length = int(self.np_random.integers(0, min(self.max_length, _SAMPLE_MAX_CHARS) + 1))
            return super().sample(mask=(length, None))
        return super().sample(mask=mask, probability=probability)

    @property
    def shared_bytes(self) -> int:
        """Bytes one value takes in shared memory (length prefix + 4 bytes per character)."""
        return _LENGTH_BYTES + 4 * self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length

    def __hash__(self) -> int:
        return hash(("TextSpace", self.max_length))


@create_shared_memory.register(TextSpace)
def _create_shared(space: TextSpace, n: int = 1, ctx: ModuleType = mp) -> SynchronizedArray[c_uint8]:
    return ctx.Array("B", n * space.shared_bytes)


@write_to_shared_memory.register(TextSpace)
def _write_shared(
    space: TextSpace, index: int, value: str, shared_memory: SynchronizedArray[c_uint8]
) -> None:
    data = value.encode("utf-8", "surrogatepass")
    size = space.shared_bytes
    if len(data) > size - _LENGTH_BYTES:  # cannot happen for values the space contains
        raise ValueError(f"Text of {len(value)} characters does not fit in {space!r}.")
    buffer = np.frombuffer(shared_memory.get_obj(), dtype=np.uint8)
    start = index * size
    buffer[start : start + _LENGTH_BYTES] = np.frombuffer(
        len(data).to_bytes(_LENGTH_BYTES, "little"), dtype=np.uint8
    )
    buffer[start + _LENGTH_BYTES : start + _LENGTH_BYTES + len(data)] = np.frombuffer(data, dtype=np.uint8)


class SharedTextView(Sequence[str]):
    """Live view of the texts in a shared-memory buffer (what async vector envs hold).

    Gymnasium reads shared memory once and expects the result to be a *view* that later writes
    show through, then returns ``deepcopy(view)`` to the caller. Strings cannot be views, so this
    object decodes on access, and its deep copy is a plain ``tuple`` of ``str``: users of
    ``make_vec(..., vectorization_mode="async")`` get ordinary tuples of text.
    """

    def __init__(self, space: TextSpace, shared_memory: SynchronizedArray[c_uint8], n: int) -> None:
        self._space = space
        self._buffer = np.frombuffer(shared_memory.get_obj(), dtype=np.uint8)
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if not -self._n <= index < self._n:
            raise IndexError(index)
        start = (index % self._n) * self._space.shared_bytes
        length = int.from_bytes(self._buffer[start : start + _LENGTH_BYTES].tobytes(), "little")
        payload = self._buffer[start + _LENGTH_BYTES : start + _LENGTH_BYTES + length].tobytes()
        return payload.decode("utf-8", "surrogatepass")

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"SharedTextView({tuple(self)!r})"


@read_from_shared_memory.register(TextSpace)
def _read_shared(
    space: TextSpace, shared_memory: SynchronizedArray[c_uint8], n: int = 1
) -> SharedTextView:
    return SharedTextView(space, shared_memory, n)
