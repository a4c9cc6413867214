"""BM25 search scaling: ToolGym's Search-v0 retriever vs ``rank-bm25`` at 10k, 100k and 1M documents.

Corpora are generated (seeded) in the style of ``envs_data/search/corpus.jsonl``: one short
encyclopedia-like document per fictional person, city or company (about 55 words: a title and
template sentences with other entities' names, professions and years), so the vocabulary grows
with the corpus as in a real knowledge base. Queries are generated the way an agent asks them
(``"birthplace of <name>"``, ``"<company> founder"``, ``"<name> profession"``).

Timed per system and corpus size:

* **build**: reading ``corpus.jsonl``, tokenising and indexing. ToolGym:
  ``toolgym.envs.search.env.Corpus(path)`` exactly as ``Search-v0`` builds it (``bm25s``,
  Lucene BM25, English stop words). rank-bm25: ``BM25Okapi`` over ``re.findall(r"\\w+", lower)``
  tokens (the usual way it is used; it has no tokenizer of its own).
* **query**: one top-5 search, query tokenisation included. ToolGym: ``Corpus.search(q, 5)``;
  rank-bm25: ``get_scores`` + ``argpartition`` top-5 (cheaper than its ``get_top_n``, which sorts
  every document).

rank-bm25 gets a time budget per corpus size (``--budget``, seconds for build + queries); when it
runs out (typically at 1M documents) the row is marked *extrapolated*: its build time and per-query
latency are scaled linearly from the largest size it finished (both are linear in corpus size:
``BM25Okapi`` keeps one ``Counter`` per document and ``get_scores`` does one dict lookup per
document per query term), and the row says so.

If ``rank_bm25`` is not importable here, its measurements run in the peer venv's interpreter
(``--peer-python``, ``$TOOLGYM_PEER_PYTHON``) as a subprocess.

    python benchmarks/perf/search_scaling.py --quick            # 10k and 100k, fewer queries
    python benchmarks/perf/search_scaling.py --write            # 10k, 100k, 1M
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.perf._common import (  # noqa: E402
    header_lines,
    load,
    machine,
    md_table,
    peer_python,
    percentile,
    run_worker,
    write_results,
)

CACHE = Path("/tmp/toolgym-perf")
TARGET_P50_MS = 5.0
TARGET_SIZE = 100_000
SYLLABLES = (
    "ka ro mi ne lu va to si de ra mo li na ve ku ta sel dor wen mar tho bri gan fel "
    "an is ur el os yn ar ith ost ea ul em"
).split()
PROFESSIONS = ("linguist", "surveyor", "painter", "engineer", "historian", "chemist", "pilot",
               "architect", "botanist", "teacher", "composer", "economist", "geologist", "nurse")
INDUSTRIES = ("shipping", "software", "mining", "textiles", "banking", "robotics", "publishing", "farming")
HOBBIES = ("sailing", "chess", "gardening", "climbing", "painting", "cycling", "fishing", "singing")


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def generate_corpus(n: int, seed: int = 0) -> tuple[list[dict[str, str]], list[str]]:
    """``n`` documents and the names they are about (seeded, deterministic)."""
    rng = random.Random(seed)
    n_places = max(50, n // 20)
    places = [_word(rng, rng.randint(2, 3)) + rng.choice(("", "", " City", "wick", "moor", "ton"))
              for _ in range(n_places)]
    companies = [_word(rng, 3) + " " + rng.choice(("Systems", "Labs", "Group", "Works", "Holdings"))
                 for _ in range(n_places)]
    docs, names = [], []
    for i in range(n):
        kind = rng.random()
        if kind < 0.7:
            name = f"{_word(rng, rng.randint(2, 3))} {_word(rng, rng.randint(2, 4))}"
            other = f"{_word(rng, 2)} {_word(rng, 3)}"
            text = (
                f"{name} is a {rng.choice(PROFESSIONS)}. {name} works for {rng.choice(companies)}. "
                f"The birth year of {name} is {rng.randint(1900, 2005)}. The birthplace of {name} is "
                f"{rng.choice(places)}. Not to be confused with {other}, a {rng.choice(PROFESSIONS)} "
                f"from {rng.choice(places)}. {name} once visited {rng.choice(places)} for a conference. "
                f"In spare time, {name} enjoys {rng.choice(HOBBIES)}."
            )
        elif kind < 0.85:
            name = rng.choice(places)
            text = (
                f"{name} is a city in {rng.choice(places)}. The population of {name} is "
                f"{rng.randint(1, 900) * 1000}. {name} was founded in {rng.randint(1100, 1950)}. "
                f"The mayor of {name} is {_word(rng, 2)} {_word(rng, 3)}. {name} is known for its "
                f"{rng.choice(INDUSTRIES)} industry and its {rng.choice(HOBBIES)} clubs."
            )
        else:
            name = rng.choice(companies)
            text = (
                f"{name} is a {rng.choice(INDUSTRIES)} company. The founder of {name} is "
                f"{_word(rng, 2)} {_word(rng, 3)}. {name} is headquartered in {rng.choice(places)}. "
                f"{name} was founded in {rng.randint(1850, 2020)} and employs {rng.randint(5, 90000)} people."
            )
        docs.append({"id": f"d{i:07d}", "title": name, "type": "doc", "text": text})
        names.append(name)
    return docs, names


def make_queries(names: list[str], count: int, seed: int = 1) -> list[str]:
    """Agent-style queries about entities of the corpus."""
    rng = random.Random(seed)
    forms = ("birthplace of {}", "{} founder", "{} profession", "where is {} headquartered",
             "{}", "birth year of {}", "{} population")
    return [rng.choice(forms).format(rng.choice(names)) for _ in range(count)]


def corpus_file(n: int) -> tuple[Path, Path]:
    """Write (once) and return the corpus jsonl and queries json for size ``n``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path, qpath = CACHE / f"corpus_{n}.jsonl", CACHE / f"queries_{n}.json"
    if not (path.exists() and qpath.exists()):
        docs, names = generate_corpus(n)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for doc in docs:
                fh.write(json.dumps(doc) + "\n")
        tmp.rename(path)
        qpath.write_text(json.dumps(make_queries(names, 1000)), encoding="utf-8")
    return path, qpath


def _latencies(search: Any, queries: list[str], deadline: float | None = None) -> list[float]:
    for q in queries[:5]:  # warm-up
        search(q)
    out = []
    for q in queries:
        start = time.perf_counter()
        search(q)
        out.append((time.perf_counter() - start) * 1e3)
        if deadline is not None and time.perf_counter() > deadline:
            break
    return out


def bench_toolgym(path: Path, queries: list[str]) -> dict[str, Any]:
    """Build ToolGym's Search-v0 index over ``path`` and time queries."""
    from toolgym.envs.search.env import Corpus

    gc.collect()
    start = time.perf_counter()
    corpus = Corpus(path)
    build = time.perf_counter() - start
    lat = _latencies(lambda q: corpus.search(q, 5), queries)
    hits = corpus.search(queries[0], 5)
    return {"build_s": build, "latencies_ms": lat, "top1": hits[0][0]["id"] if hits else None}


_TOKEN = re.compile(r"\w+")


def bench_rank_bm25(path: Path, queries: list[str], budget_s: float) -> dict[str, Any]:
    """Build ``rank_bm25.BM25Okapi`` over ``path`` and time queries, within ``budget_s``."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    gc.collect()
    start = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    bm25 = BM25Okapi([_TOKEN.findall(f"{d['title']} {d['text']}".lower()) for d in docs])
    build = time.perf_counter() - start

    def search(q: str) -> list[int]:
        scores = bm25.get_scores(_TOKEN.findall(q.lower()))
        top = np.argpartition(-scores, 4)[:5]
        return list(top[np.argsort(-scores[top])])

    lat = _latencies(search, queries, deadline=start + budget_s)
    top1 = docs[search(queries[0])[0]]["id"]
    return {"build_s": build, "latencies_ms": lat, "top1": top1}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table; optionally write results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k docs, 100 queries.")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Comma-separated corpus sizes.")
    parser.add_argument("--queries", type=int, default=300, help="Queries timed per size.")
    parser.add_argument("--budget", type=float, default=240.0,
                        help="Seconds rank-bm25 may spend per size (build + queries) before extrapolating.")
    parser.add_argument("--peer-python", help="Interpreter of a venv with rank-bm25.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/search_scaling.*")
    parser.add_argument("--worker", nargs=3, metavar=("CORPUS", "QUERIES", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        corpus, qfile, budget = args.worker
        queries = json.loads(Path(qfile).read_text())
        print(json.dumps(bench_rank_bm25(Path(corpus), queries, float(budget))))
        return
    if args.quick:
        args.sizes, args.queries = "10000,100000", 100
    sizes = [int(s) for s in args.sizes.split(",")]
    info = machine()
    local_rank = importlib.util.find_spec("rank_bm25") is not None
    external = None if local_rank else peer_python(args.peer_python)
    rank_where = "in-process" if local_rank else (f"subprocess ({external})" if external else "unavailable")
    print(f"rank-bm25: {rank_where}", flush=True)
    rows: list[dict[str, Any]] = []
    last_rank: dict[str, Any] | None = None
    for n in sizes:
        path, qpath = corpus_file(n)
        queries = json.loads(qpath.read_text())[: args.queries]
        tg = bench_toolgym(path, queries)
        row: dict[str, Any] = {
            "docs": n,
            "toolgym": {"build_s": tg["build_s"], "p50_ms": percentile(tg["latencies_ms"], 0.5),
                        "p95_ms": percentile(tg["latencies_ms"], 0.95), "queries": len(tg["latencies_ms"])},
        }
        print(f"{n:>9,} docs  ToolGym build {tg['build_s']:.2f}s p50 {row['toolgym']['p50_ms']:.3f} ms "
              f"p95 {row['toolgym']['p95_ms']:.3f} ms  (load {load()[0]})", flush=True)
        rank: dict[str, Any] | None = None
        # Skip (and extrapolate) when the build alone, scaled from the last size, would blow the budget.
        too_slow = last_rank is not None and last_rank["build_s"] * n / last_rank["docs"] > args.budget
        if rank_where != "unavailable" and not too_slow:
            try:
                if local_rank:
                    rank = bench_rank_bm25(path, queries, args.budget)
                else:
                    rank = run_worker(external, Path(__file__).resolve(),  # type: ignore[arg-type]
                                      ["--worker", str(path), str(qpath), str(args.budget)],
                                      timeout=args.budget * 4 + 600)
                    rank["latencies_ms"] = rank["latencies_ms"][: args.queries]
            except Exception as exc:  # noqa: BLE001 - report, then extrapolate
                print(f"rank-bm25 at {n:,} failed: {exc}", flush=True)
                rank = None
        if rank is not None and len(rank["latencies_ms"]) >= 10:
            row["rank_bm25"] = {"build_s": rank["build_s"], "p50_ms": percentile(rank["latencies_ms"], 0.5),
                                "p95_ms": percentile(rank["latencies_ms"], 0.95),
                                "queries": len(rank["latencies_ms"]), "extrapolated": False}
            last_rank = {"docs": n, **row["rank_bm25"]}
        elif last_rank is not None:
            scale = n / last_rank["docs"]
            row["rank_bm25"] = {"build_s": last_rank["build_s"] * scale, "p50_ms": last_rank["p50_ms"] * scale,
                                "p95_ms": last_rank["p95_ms"] * scale, "queries": 0,
                                "extrapolated": f"linear from {last_rank['docs']:,} docs"}
        if "rank_bm25" in row:
            r = row["rank_bm25"]
            row["speedup_p50"] = r["p50_ms"] / row["toolgym"]["p50_ms"]
            row["speedup_build"] = r["build_s"] / row["toolgym"]["build_s"]
            print(f"{n:>9,} docs  rank-bm25 build {r['build_s']:.2f}s p50 {r['p50_ms']:.3f} ms "
                  f"p95 {r['p95_ms']:.3f} ms{' (extrapolated)' if r['extrapolated'] else ''}", flush=True)
        rows.append(row)
    info["load_at_end"] = load()
    table_rows = []
    for row in rows:
        tg, r = row["toolgym"], row.get("rank_bm25")
        est = " (extrapolated)" if r and r["extrapolated"] else ""
        table_rows.append([
            f"{row['docs']:,}", tg["build_s"], tg["p50_ms"], tg["p95_ms"],
            (f"{r['build_s']:.1f}{est}" if r else "n/a"), (f"{r['p50_ms']:.2f}{est}" if r else "n/a"),
            (f"{r['p95_ms']:.2f}{est}" if r else "n/a"),
            f"{row['speedup_p50']:.0f}×" if r else "n/a", f"{row['speedup_build']:.1f}×" if r else "n/a",
        ])
    target_row = next((row for row in rows if row["docs"] == TARGET_SIZE), None)
    verdict = []
    if target_row is not None:
        p50 = target_row["toolgym"]["p50_ms"]
        verdict = [f"Target: p50 < {TARGET_P50_MS:g} ms at {TARGET_SIZE:,} documents: "
                   f"{'met' if p50 < TARGET_P50_MS else 'missed'} ({p50:.2f} ms).", ""]
    lines = header_lines(
        "BM25 search scaling: ToolGym (bm25s) vs rank-bm25", info,
        [f"{args.queries} generated agent-style queries per size, top-5, tokenisation included; build = "
         "read jsonl + tokenise + index. rank-bm25 ran " + rank_where + f", with a {args.budget:g} s budget "
         "per size; extrapolated rows are linear scalings of the largest size it finished.", ""],
    )
    markdown = "\n".join([
        *lines, *verdict,
        md_table(["docs", "ToolGym build s", "ToolGym p50 ms", "ToolGym p95 ms", "rank-bm25 build s",
                  "rank-bm25 p50 ms", "rank-bm25 p95 ms", "p50 speed-up", "build speed-up"], table_rows),
    ])
    print()
    print(markdown)
    if args.write:
        paths = write_results("search_scaling", {"machine": info, "args": vars(args), "rows": rows}, markdown)
        print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
