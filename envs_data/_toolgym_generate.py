"""What every ``envs_data/<name>/generate.py`` shares (stdlib only; the scripts do not import
``toolgym``, so that the data is a pure function of the seed and of the env's template modules).

A script reaches this module by putting ``envs_data/`` at the end of ``sys.path``::

    sys.path.append(str(Path(__file__).resolve().parents[1]))  # envs_data/_toolgym_generate.py
    from _toolgym_generate import load_module  # noqa: E402

and ends with ``run_cli(write_all, __doc__, __file__, default_seed=DEFAULT_SEED)``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any


def load_module(name: str, path: Path) -> ModuleType:
    """Import the stdlib-only module at ``path`` (an env's templates) under ``name``, by file path
    and without importing ``toolgym``; a second call with the same ``name`` returns the same module.

    Raises:
        ImportError: if ``path`` is not a loadable Python file.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load {path}: expected a Python source file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up in sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def write_with_manifest(
    out: Path, files: dict[str, str], *, seed: int, generator_version: str, **extra: object
) -> None:
    """Write ``files`` (path relative to ``out`` -> UTF-8 text) under ``out``, plus
    ``MANIFEST.json``: the seed, the generator version, the SHA-256 of every file and any
    ``extra`` keys (e.g. the hashes of source data), as the manifest test checks them."""
    manifest = {
        "generator_version": generator_version,
        "seed": seed,
        "sha256": {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in sorted(files.items())},
        **extra,
    }
    files = {**files, "MANIFEST.json": json.dumps(manifest, indent=2, sort_keys=True) + "\n"}
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """One JSON object a line, keys sorted (the task-file format)."""
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


def run_cli(write_all: Callable[[Path, int], None], doc: str, script: str, *, default_seed: int) -> None:
    """The command line every generator shares: ``--seed N`` (default ``default_seed``) and
    ``--out DIR`` (default: the folder of ``script``, the generator's ``__file__``); then
    ``write_all(out, seed)``. ``doc``'s first line is the help text."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seed", type=int, default=default_seed)
    parser.add_argument("--out", type=Path, default=Path(script).resolve().parent)
    args = parser.parse_args()
    write_all(args.out, args.seed)
