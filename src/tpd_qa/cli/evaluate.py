"""``tpd-qa eval``: its arguments, the dataset and index it judges, and its printed table.

The scoring itself (datasets, runs, metrics) is the library in :mod:`tpd_qa.evaluation`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpd_qa.cli.output import visible, write_json, write_lines
from tpd_qa.errors import ConfigError, TpdQaError
from tpd_qa.evaluation import (
    BeirDataset,
    evaluate_beir,
    evaluate_qa,
    format_table,
    load_beir,
    load_qa,
)
from tpd_qa.modes import normalise_mode

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = ["add_eval_arguments", "run_eval_command"]


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tpd-qa eval``."""
    parser.add_argument("dataset", type=Path, help="a BEIR folder or a QA .jsonl file")
    parser.add_argument(
        "--modes",
        default="bm25,dense,hybrid",
        help="comma-separated retrieval modes to compare (default bm25,dense,hybrid)",
    )
    parser.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    parser.add_argument("--limit", type=int, help="BEIR: only the first N judged queries")
    parser.add_argument(
        "--index",
        type=Path,
        help="QA file: the index to judge (default: $TPD_QA_INDEX or ./index)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        help="QA file: index this folder in memory instead of loading an index",
    )
    parser.add_argument(
        "--index-cache",
        type=Path,
        metavar="DIR",
        help="BEIR: keep the corpus index in DIR and reuse it while the settings match",
    )
    parser.add_argument("--model", help="embedding model (default: $TPD_QA_MODEL or bundled)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run_eval_command(args: argparse.Namespace) -> int:
    """``tpd-qa eval``: print a per-mode metrics table (or JSON); 0 on success."""
    modes: list[str] = [normalise_mode(mode) for mode in args.modes.split(",") if mode.strip()]
    if not modes:
        raise ConfigError("--modes names no retrieval mode")
    dataset = Path(args.dataset)
    started = time.perf_counter()
    if dataset.is_dir():
        report = _eval_beir(args, dataset, modes)
    elif dataset.is_file():
        report = _eval_qa(args, dataset, modes)
    else:
        raise ConfigError(f"dataset {dataset} is neither a BEIR folder nor a QA file")
    report["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        write_json(report, ascii_only=False)
        return 0
    lines = [
        f"{report['dataset']} ({report['kind']}, {report['queries']} queries, "
        f"model {report['model']}, {report['chunks']} chunks)",
        *format_table(report["results"]).splitlines(),
    ]
    if report.get("misses"):
        mode = report["misses_mode"]
        lines += ["", f"Questions whose right passage is not ranked first ({mode}):"]
        for miss in report["misses"]:
            lines.append(f"  {miss['id']} (rank {miss['rank'] or '>10'}): {miss['question']}")
    write_lines(lines)
    return 0


def _configured_model(args: argparse.Namespace) -> str | None:
    from tpd_qa.api import configured_model

    model: str | None = args.model
    return model or configured_model()


def _eval_beir(args: argparse.Namespace, folder: Path, modes: list[str]) -> dict[str, Any]:
    dataset = load_beir(folder, args.split, limit=args.limit)
    index = _beir_index(dataset, _configured_model(args), args.index_cache)
    results = evaluate_beir(index, dataset, modes)
    return {
        "dataset": str(folder),
        "kind": f"beir/{args.split}",
        "queries": len(dataset.queries),
        "model": index.model_name,
        "chunks": index.chunk_count,
        "results": results,
    }


def _beir_index(dataset: BeirDataset, model: str | None, cache: Path | None) -> Index:
    """The index of a BEIR corpus: from ``cache`` while its settings match, else built."""
    from tpd_qa.api import shared_embedder
    from tpd_qa.index import Index, IndexSettings

    settings = IndexSettings(model=model or "default")
    if cache is not None and (cache / "manifest.json").is_file():
        try:
            index = Index.load(cache, model=settings.model, embedder_factory=shared_embedder)
        except TpdQaError as exc:
            _note(f"rebuilding {cache}: {exc}")
        else:
            same = not index.compatibility(settings) and index.settings.sparse == settings.sparse
            if same and len(index.documents()) == len(dataset.documents):
                return index
            _note(f"settings changed, rebuilding {cache}")
    index = Index.from_documents(
        dataset.documents,
        settings=settings,
        embedder=shared_embedder(settings.model),
        progress=sys.stderr.isatty(),
    )
    if cache is not None:
        index.save(cache)
    return index


def _eval_qa(args: argparse.Namespace, path: Path, modes: list[str]) -> dict[str, Any]:
    from tpd_qa.api import load_index, shared_embedder
    from tpd_qa.index import Index, IndexSettings

    items = load_qa(path)
    model = _configured_model(args)
    if args.corpus is not None:
        settings = IndexSettings(model=model or "default")
        index, _ = Index.build(
            args.corpus, settings=settings, embedder=shared_embedder(settings.model)
        )
    else:
        index = load_index(args.index, model=model)
    results, ranks = evaluate_qa(index, items, modes)
    chosen = "hybrid" if "hybrid" in ranks else modes[-1]
    misses = [
        {"id": item.id, "question": item.question, "rank": ranks[chosen][item.id]}
        for item in items
        if ranks[chosen][item.id] != 1
    ]
    return {
        "dataset": str(path),
        "kind": "qa",
        "queries": len(items),
        "model": index.model_name,
        "chunks": index.chunk_count,
        "results": results,
        "ranks": ranks,
        "misses_mode": chosen,
        "misses": misses,
    }


def _note(message: str) -> None:
    sys.stderr.write(f"tpd-qa eval: {visible(message)}\n")
