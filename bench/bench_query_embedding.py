"""Time to embed one question, per precision, alternating in one run.

    PYTHONPATH=src .venv/bin/python bench/bench_query_embedding.py [--questions 200]
        [--rounds 3] [--precisions float32,bf16,onnx-int8]

Questions are the first ``--questions`` distinct SQuAD train questions (or
``$TPD_QA_SQUAD``), each embedded alone, as a search does. Every round times each
precision on all of them in turn (same order), so load from other processes hits all
alike. Prints per round the median and p99 milliseconds of each precision, then the
range of per-round medians and the ratio of each precision's median to float32's in
each round. Without ``--precisions``: float32, the precisions this CPU runs well, and
which one ``choose_precision(queries=True)`` picks (marked ``*``). Writes
bench/results/query_embedding.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from _common import percentiles, write_results
from bench_squad import SQUAD

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import load_squad
from tpd_qa.precision import available_precisions, choose_precision, cpu_features


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="")
    args = parser.parse_args()
    cpu = cpu_features()
    chosen = choose_precision("auto", queries=True)
    names = (
        args.precisions.split(",")
        if args.precisions
        else [p for p in available_precisions(cpu) if p != "int8"]
    )
    questions = list(dict.fromkeys(q.question for q in load_squad(SQUAD).questions))
    questions = questions[: args.questions]
    engines = {name: SentenceTransformerEmbedder(precision=name) for name in names}
    for engine in engines.values():
        engine.embed_batch(["warm up"])
    rounds: list[dict[str, dict[str, float]]] = []
    for number in range(1, args.rounds + 1):
        row: dict[str, dict[str, float]] = {}
        for name, engine in engines.items():
            times = []
            for question in questions:
                started = time.perf_counter()
                engine.embed_batch([question])
                times.append(time.perf_counter() - started)
            row[name] = percentiles(times)
        rounds.append(row)
        cells = (f"{n} p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms" for n, r in row.items())
        print(f"round {number}: " + ", ".join(cells), file=sys.stderr)
    print(f"\n{len(questions)} questions, {args.rounds} rounds; questions picked: {chosen}")
    header = f"{'precision':<12} {'p50 min':>8} {'median':>8} {'max':>8}"
    print(f"{header} {'vs float32 (per round)':>24}")
    summary: dict[str, dict[str, float]] = {}
    for name in engines:
        medians = [r[name]["p50_ms"] for r in rounds]
        ratios = (
            [r["float32"]["p50_ms"] / r[name]["p50_ms"] for r in rounds]
            if "float32" in engines
            else [float("nan")]
        )
        summary[name] = {
            "p50_min_ms": min(medians),
            "p50_median_ms": statistics.median(medians),
            "p50_max_ms": max(medians),
            "speedup_min": float(np.min(ratios)),
            "speedup_max": float(np.max(ratios)),
        }
        mark = "*" if name == chosen else " "
        print(
            f"{name + mark:<12} {min(medians):>8.2f} {statistics.median(medians):>8.2f} "
            f"{max(medians):>8.2f} {min(ratios):>11.2f}-{max(ratios):.2f}x"
        )
    write_results(
        "query_embedding",
        {"questions": len(questions), "chosen": chosen, "rounds": rounds, "summary": summary},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
