"""Indexing throughput on Ray (1 and 2 workers) vs the single-process path, same machine.

    PYTHONPATH=src .venv/bin/python bench/bench_ray.py [--docs 300] [--workers 1,2]

``--docs`` SciFact abstracts are written as .txt files to a temporary folder and indexed
from scratch with the real bundled model (``build_index(..., full=True)``), once per set-up:

* ``single``: the default in-process path (torch with its default threads);
* ``single-1thread``: the same with ``torch.set_num_threads(1)``: what one Ray actor
  (one CPU, ``OMP_NUM_THREADS=1``) has to work with, so ``ray-1 - single-1thread`` is
  Ray's own cost;
* ``ray-N``: the Ray pipeline with N actors on a local Ray instance started once
  (its start-up time is reported apart; each run includes loading the model in every
  actor, as a real run does).

Prints documents/s and chunks/s per set-up, the overhead per document, and a projection
for M machines (a model fitted to the measured runs, not a measurement). Writes
bench/results/ray.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import SCIFACT, write_results

from tpd_qa import api


def _write_corpus(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number >= count:
                break
            row = json.loads(line)
            (folder / f"{row['_id']}.txt").write_text(
                f"{row['title']}\n\n{row['text']}\n", encoding="utf-8"
            )


def _run(corpus: Path, work: Path, name: str, **options: Any) -> dict[str, Any]:
    index_dir = work / f"index-{name}"
    started = time.perf_counter()
    report = api.build_index(corpus, index_dir, full=True, **options)
    seconds = time.perf_counter() - started
    shutil.rmtree(index_dir)
    result = {
        "setup": name,
        "seconds": round(seconds, 2),
        "documents": report.documents,
        "chunks": report.chunks,
        "docs_per_s": round(report.documents / seconds, 2),
        "chunks_per_s": round(report.chunks / seconds, 2),
    }
    print(
        f"{name:>15}: {seconds:7.1f} s  {result['docs_per_s']:6.1f} docs/s  "
        f"{result['chunks_per_s']:6.1f} chunks/s",
        flush=True,
    )
    return result


def project(
    by_name: dict[str, dict[str, Any]], documents: int, machines: list[int]
) -> dict[str, Any]:
    """PROJECTION, not a measurement: T(w) = fixed + compute / w per run.

    ``compute`` is the single-process one-thread run (what one actor with one core does),
    ``fixed`` is Ray's own cost per run (ray-1 minus single-1thread: actor start, model
    load in the actor, serialisation; treated as not shrinking with workers). It assumes
    every worker has a free core to itself and the driver keeps up, which a 2-core
    machine shared with other jobs does not give (so ray-2 was not faster here). The
    driver's own work (scan, hashing, index build, save) is inside both and caps the rate
    for large clusters; it is not separated here.
    """
    compute = by_name["single-1thread"]["seconds"]
    fixed = max(0.0, by_name["ray-1"]["seconds"] - compute)
    print(
        f"PROJECTION (not measured): T(w workers) = {fixed:.1f} s fixed per run + "
        f"{compute / documents * 1000:.0f} ms/doc / w, from single-1thread and ray-1, for "
        f"{documents} docs and for 1M docs; machines of 2 free cores each:"
    )
    rates: dict[str, Any] = {}
    for count in machines:
        w = 2 * count
        small = documents / (fixed + compute / w)
        large = 1_000_000 / (fixed + compute / documents * 1_000_000 / w)
        rates[str(count)] = {
            "workers": w,
            f"docs_per_s_{documents}": round(small, 2),
            "docs_per_s_1M": round(large, 1),
        }
        print(
            f"  {count:>3} machines ({w:>3} workers): ~{small:6.2f} docs/s for {documents} "
            f"docs, ~{large:7.1f} docs/s for 1M docs (projected)"
        )
    rates["model"] = {
        "fixed_s_per_run": round(fixed, 2),
        "compute_ms_per_doc_one_core": round(compute / documents * 1000, 1),
    }
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--workers", default="1,2", help="comma-separated actor counts")
    parser.add_argument("--machines", default="1,2,4,8,16,64", help="projection points")
    parser.add_argument("--rounds", type=int, default=1, help="turns of all set-ups")
    parser.add_argument(
        "--project", metavar="RAY_JSON", help="only print the projection from a results file"
    )
    args = parser.parse_args()
    if args.project:
        saved = json.loads(Path(args.project).read_text(encoding="utf-8"))
        named = {run["setup"]: run for run in saved["runs"]}
        for name, seconds in saved["median_seconds"].items():
            named[name] = {**named[name], "seconds": seconds}
        saved["projection_docs_per_s"] = project(
            named, saved["docs"], [int(m) for m in args.machines.split(",")]
        )
        Path(args.project).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
        return 0
    workers = [int(w) for w in args.workers.split(",")]

    import ray
    import torch

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        _write_corpus(corpus, args.docs)
        print(f"{args.docs} SciFact abstracts, real model; command: {' '.join(sys.argv)}")
        print(f"machine shared with other jobs; load average {os.getloadavg()}")
        _write_corpus(work / "warm-corpus", 5)
        api.build_index(work / "warm-corpus", work / "warm", full=True)  # model files cached
        shutil.rmtree(work / "warm")
        started = time.perf_counter()
        source = str(Path(api.__file__).resolve().parents[1])
        ray.init(
            num_cpus=max(workers),
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": source, "HF_HUB_OFFLINE": "1"}},
        )
        startup = time.perf_counter() - started
        print(f"{'ray start':>15}: {startup:7.1f} s (once per run of tpd-qa index --ray local)")
        threads = torch.get_num_threads()
        try:
            # the set-ups take turns, round after round: load from other jobs on the shared
            # machine falls on all of them alike
            for round_number in range(args.rounds):
                print(f"round {round_number + 1}/{args.rounds}", flush=True)
                runs.append(_run(corpus, work, "single"))
                torch.set_num_threads(1)
                runs.append(_run(corpus, work, "single-1thread"))
                torch.set_num_threads(threads)
                for count in workers:
                    name = f"ray-{count}"
                    runs.append(_run(corpus, work, name, ray="local", ray_workers=count))
        finally:
            torch.set_num_threads(threads)
            ray.shutdown()

    by_name: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(run["setup"] for run in runs):
        mine = [run for run in runs if run["setup"] == name]
        seconds = float(np.median([run["seconds"] for run in mine]))
        by_name[name] = {**mine[0], "seconds": seconds}
    print("median over rounds:")
    for name, run in by_name.items():
        rate = run["documents"] / run["seconds"]
        print(f"{name:>15}: {run['seconds']:7.1f} s  {rate:6.2f} docs/s", flush=True)
    documents = by_name["single"]["documents"]
    overhead = (by_name["ray-1"]["seconds"] - by_name["single-1thread"]["seconds"]) / documents
    print(f"Ray overhead per document (ray-1 - single-1thread): {overhead * 1000:.1f} ms")
    projection = project(by_name, documents, [int(m) for m in args.machines.split(",")])
    write_results(
        "ray",
        {
            "command": " ".join(sys.argv),
            "docs": args.docs,
            "ray_startup_s": round(startup, 2),
            "rounds": args.rounds,
            "runs": runs,
            "median_seconds": {name: run["seconds"] for name, run in by_name.items()},
            "note": "machine shared with other jobs (2 cores); see load_average",
            "load_average": os.getloadavg(),
            "overhead_ms_per_doc": round(overhead * 1000, 2),
            "projection_docs_per_s": projection,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
