"""``tpd-qa eval``: its arguments, the dataset and index it judges, and its printed table.

A folder is a BEIR dataset; a file is a SQuAD file when it is one JSON object with a
``data`` list of articles with ``paragraphs``, else a QA JSONL file. A cross-encoder
named by ``$TPD_QA_RERANKER`` takes part, as it does in ``ask``.

The scoring itself (datasets, runs, metrics) is the library in :mod:`tpd_qa.evaluation`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpd_qa.cli.output import visible, write_json, write_lines
from tpd_qa.errors import ConfigError, TpdQaError
from tpd_qa.evaluation import (
    METRICS,
    SQUAD_METRICS,
    evaluate_beir,
    evaluate_qa,
    evaluate_squad,
    format_table,
    is_squad,
    load_beir,
    load_qa,
    load_squad,
)
from tpd_qa.modes import normalise_mode
from tpd_qa.reranking import configured_reranker

if TYPE_CHECKING:
    from tpd_qa.index import Index, IndexSettings

__all__ = ["add_eval_arguments", "run_eval_command"]


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tpd-qa eval``."""
    parser.add_argument(
        "dataset", type=Path, help="a BEIR folder, a QA .jsonl file or a SQuAD .json file"
    )
    parser.add_argument(
        "--modes",
        default="bm25,dense,hybrid",
        help="comma-separated retrieval modes to compare (default bm25,dense,hybrid)",
    )
    parser.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    parser.add_argument(
        "--limit", type=int, help="BEIR, SQuAD: only the first N judged queries or questions"
    )
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
        help="BEIR, SQuAD: keep the corpus index in DIR and reuse it while the settings match",
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
    elif dataset.is_file() and is_squad(dataset):
        report = _eval_squad(args, dataset, modes)
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
        *format_table(report["results"], report.get("metrics") or METRICS).splitlines(),
    ]
    if report.get("reranker"):
        lines.append(f"hybrid re-scored by the cross-encoder {report['reranker']}")
    if report.get("misses"):
        mode = report["misses_mode"]
        misses = report["misses"]
        shown = misses[:_SHOWN_MISSES] if report["kind"] == "squad" else misses
        lines += ["", f"Questions whose right passage is not ranked first ({mode}):"]
        for miss in shown:
            lines.append(f"  {miss['id']} (rank {miss['rank'] or '>10'}): {miss['question']}")
        if len(shown) < len(misses):
            lines.append(f"  … and {len(misses) - len(shown)} more (--json lists them all)")
    write_lines(lines)
    return 0


_SHOWN_MISSES = 20  # a SQuAD file has thousands of questions


def _configured_model(args: argparse.Namespace) -> str | None:
    from tpd_qa.api import configured_model

    model: str | None = args.model
    return model or configured_model()


def _eval_beir(args: argparse.Namespace, folder: Path, modes: list[str]) -> dict[str, Any]:
    from tpd_qa.index import Index

    dataset = load_beir(folder, args.split, limit=args.limit)

    def build(settings: IndexSettings) -> Index:
        return Index.from_documents(
            dataset.documents,
            settings=settings,
            embedder=_embedder(settings),
            progress=sys.stderr.isatty(),
        )

    index = _cached_index(_configured_model(args), args.index_cache, len(dataset.documents), build)
    results = evaluate_beir(index, dataset, modes)
    return {
        "dataset": str(folder),
        "kind": f"beir/{args.split}",
        "queries": len(dataset.queries),
        "model": index.model_name,
        "chunks": index.chunk_count,
        "reranker": index.reranker.name if index.reranker else None,
        "results": results,
    }


def _eval_squad(args: argparse.Namespace, path: Path, modes: list[str]) -> dict[str, Any]:
    from tpd_qa.index import Index

    dataset = load_squad(path, limit=args.limit)

    def build(settings: IndexSettings) -> Index:
        with tempfile.TemporaryDirectory(prefix="tpd-qa-squad-") as folder:
            dataset.write_corpus(Path(folder))
            index, _report = Index.build(
                Path(folder),
                settings=settings,
                embedder=_embedder(settings),
                progress=sys.stderr.isatty(),
            )
        return index

    count = len(dataset.documents)
    index = _cached_index(_configured_model(args), args.index_cache, count, build)
    results, ranks = evaluate_squad(index, dataset, modes)
    chosen = "hybrid" if "hybrid" in ranks else modes[-1]
    return {
        "dataset": str(path),
        "kind": "squad",
        "queries": len(dataset.questions),
        "model": index.model_name,
        "chunks": index.chunk_count,
        "reranker": index.reranker.name if index.reranker else None,
        "metrics": [*SQUAD_METRICS, "query_ms_p50"],
        "results": results,
        "ranks": ranks,
        "misses_mode": chosen,
        "misses": [
            {"id": q.id, "question": q.question, "rank": ranks[chosen][q.id]}
            for q in dataset.questions
            if ranks[chosen][q.id] != 1
        ],
    }


def _embedder(settings: IndexSettings) -> Any:
    from tpd_qa.api import shared_embedder

    return shared_embedder(settings.model)


def _cached_index(
    model: str | None, cache: Path | None, documents: int, build: Callable[[IndexSettings], Index]
) -> Index:
    """An index of a benchmark corpus of ``documents`` documents: from ``cache`` while its
    settings match, else built (and saved there); with ``$TPD_QA_RERANKER``'s reranker."""
    index = _load_or_build(model, cache, documents, build)
    index.reranker = configured_reranker()
    return index


def _load_or_build(
    model: str | None, cache: Path | None, documents: int, build: Callable[[IndexSettings], Index]
) -> Index:
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
            if same and len(index.documents()) == documents:
                return index
            _note(f"settings changed, rebuilding {cache}")
    index = build(settings)
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
        index.reranker = configured_reranker()
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
        "reranker": index.reranker.name if index.reranker else None,
        "results": results,
        "ranks": ranks,
        "misses_mode": chosen,
        "misses": misses,
    }


def _note(message: str) -> None:
    sys.stderr.write(f"tpd-qa eval: {visible(message)}\n")
