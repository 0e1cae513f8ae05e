"""Retrieval evaluation: BEIR folders and QA files, scored per mode with ranx.

Two kinds of dataset:

* a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): the corpus is
  indexed in memory (or loaded from ``--index-cache``), chunk scores are aggregated per
  document (a document scores as its best chunk), and documents are judged by the qrels;
* a QA file (JSONL, one ``{"question", "source", "evidence", "page"?}`` per line), judged
  against an existing index: a passage is right when it comes from ``source`` (and
  ``page``, if given) and contains ``evidence`` (whitespace-insensitive).

The ``tpd-qa eval`` command around this library is :mod:`tpd_qa.cli.evaluate`. Heavy
libraries (ranx, numba) are imported inside functions: the CLI imports this module
whenever it builds its parser.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpd_qa.errors import ConfigError
from tpd_qa.records import Document, Heading, Passage

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = [
    "METRICS",
    "BeirDataset",
    "QaItem",
    "beir_document",
    "evaluate_beir",
    "evaluate_qa",
    "format_table",
    "load_beir",
    "load_qa",
    "passage_matches",
    "score_runs",
]

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "hit@1", "hit@5", "hit@10")
_PASSAGE_DEPTH = 100  # passages fetched per BEIR query before aggregating to documents
_NO_RESULT = "\x00none"  # ranx needs every judged query in the run


# ---------------------------------------------------------------------- datasets


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """A BEIR corpus with the queries and judgements of one split."""

    name: str
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class QaItem:
    """One development question: the passage that answers it must contain ``evidence``."""

    question: str
    source: str
    evidence: str
    page: int | None = None
    id: str = ""
    tags: tuple[str, ...] = field(default=())


def beir_document(doc_id: str, title: str, body: str) -> Document:
    """A BEIR record as a Document: the title is a level-1 heading, then the abstract.

    ``source`` is the BEIR id; the hash includes it so identical texts stay distinct.
    """
    title = " ".join(title.split())
    body = body.strip()
    text = f"{title}\n\n{body}" if title else body
    headings = (Heading(0, len(title), 1, title),) if title else ()
    sha = hashlib.sha256(f"{doc_id}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()
    return Document(
        source=doc_id, title=title, text=text, kind="beir", sha256=sha, headings=headings
    )


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object")
            yield number, record


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (header ``query-id corpus-id score``; CRLF tolerated); keeps score > 0."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.strip().split("\t")
            if not line.strip() or (number == 1 and fields[0] == "query-id"):
                continue
            if len(fields) != 3:
                raise ConfigError(f"{path}:{number}: expected query-id, corpus-id, score")
            try:
                score = int(float(fields[2]))
            except ValueError as exc:
                raise ConfigError(f"{path}:{number}: score {fields[2]!r} is not a number") from exc
            if score > 0:
                qrels.setdefault(fields[0], {})[fields[1]] = score
    return qrels


def load_beir(folder: Path, split: str = "test", *, limit: int | None = None) -> BeirDataset:
    """Read a BEIR folder; only queries judged in ``split`` are kept (the first ``limit``)."""
    folder = Path(folder)
    paths = {
        "corpus": folder / "corpus.jsonl",
        "queries": folder / "queries.jsonl",
        "qrels": folder / "qrels" / f"{split}.tsv",
    }
    for what, path in paths.items():
        if not path.is_file():
            raise ConfigError(f"BEIR folder {folder} has no {path.relative_to(folder)} ({what})")
    qrels = read_qrels(paths["qrels"])
    queries: dict[str, str] = {}
    for _, record in _read_jsonl(paths["queries"]):
        qid = str(record.get("_id", ""))
        if qid in qrels:
            queries[qid] = str(record.get("text", ""))
    missing = [qid for qid in qrels if qid not in queries]
    if missing:
        raise ConfigError(
            f"{len(missing)} judged queries are not in queries.jsonl, e.g. {missing[0]}"
        )
    if limit is not None:
        keep = sorted(queries, key=_natural)[:limit]
        queries = {qid: queries[qid] for qid in keep}
        qrels = {qid: qrels[qid] for qid in keep}
    documents = []
    for number, record in _read_jsonl(paths["corpus"]):
        if "_id" not in record:
            raise ConfigError(f"{paths['corpus']}:{number}: record has no _id")
        document = beir_document(
            str(record["_id"]), str(record.get("title") or ""), str(record.get("text") or "")
        )
        if document.text:
            documents.append(document)
    return BeirDataset(folder.name, documents, queries, qrels)


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (sys.maxsize, value)


def load_qa(path: Path) -> list[QaItem]:
    """Read a QA JSONL file; every line needs ``question``, ``source`` and ``evidence``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"QA file {path} does not exist")
    items: list[QaItem] = []
    for number, record in _read_jsonl(path):
        values = {key: record.get(key) for key in ("question", "source", "evidence")}
        empty = [
            key for key, value in values.items() if not isinstance(value, str) or not value.strip()
        ]
        if empty:
            raise ConfigError(f"{path}:{number}: missing or empty {', '.join(empty)}")
        page = record.get("page")
        if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
            raise ConfigError(f"{path}:{number}: page must be a positive whole number")
        tags = record.get("tags") or ()
        items.append(
            QaItem(
                question=str(values["question"]).strip(),
                source=str(values["source"]).strip(),
                evidence=str(values["evidence"]),
                page=page,
                id=str(record.get("id") or f"q{number}"),
                tags=tuple(str(t) for t in tags),
            )
        )
    if not items:
        raise ConfigError(f"QA file {path} holds no questions")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"QA file {path} repeats a question id")
    return items


# ---------------------------------------------------------------------- judging


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def passage_matches(passage_source: str, passage_text: str, page: int | None, item: QaItem) -> bool:
    """Whether a passage answers ``item``: same source (and page) and contains the evidence."""
    if passage_source != item.source:
        return False
    if item.page is not None and page != item.page:
        return False
    return _squash(item.evidence) in _squash(passage_text)


def qa_judgement(
    items: Sequence[QaItem], results: Mapping[str, Sequence[tuple[str, str, int | None]]]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """Qrels and run for QA results (per item id: ranked (source, text, page) passages).

    Each question has one relevant target; the first passage that matches takes its id,
    so nDCG, MRR and recall all measure the rank of the first right passage.
    """
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for item in items:
        qrels[item.id] = {"answer": 1}
        ranked: dict[str, float] = {}
        found = False
        passages = results.get(item.id, ())
        for rank, (source, text, page) in enumerate(passages, start=1):
            hit = not found and passage_matches(source, text, page, item)
            found = found or hit
            ranked["answer" if hit else f"r{rank}"] = float(len(passages) - rank + 1)
        run[item.id] = ranked or {_NO_RESULT: 0.0}
    return qrels, run


def aggregate_documents(
    passages: Sequence[tuple[str, float]], depth: int = _PASSAGE_DEPTH
) -> dict[str, float]:
    """Document scores from ranked (source, score) passages: each document's best passage.

    The scores returned keep the passage order (rank-based), so ties cannot reorder them.
    """
    ranked: dict[str, float] = {}
    for source, _score in passages:
        if source not in ranked:
            ranked[source] = float(depth - len(ranked))
    return ranked


def score_runs(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = METRICS,
    *,
    per_query: bool = False,
) -> dict[str, Any]:
    """Mean metrics (with ranx) of ``run`` against ``qrels``; ``hit@k`` is ranx's hit_rate@k.

    With ``per_query`` the values are lists in the order of ``qrels``.
    """
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    names = [_ranx_name(metric) for metric in metrics]
    queries = list(qrels)
    full_run = {qid: dict(run.get(qid) or {_NO_RESULT: 0.0}) for qid in queries}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ranx_evaluate(
            Qrels({qid: dict(qrels[qid]) for qid in queries}),
            Run(full_run),
            names,
            return_mean=not per_query,
            make_comparable=True,
        )
    if len(names) == 1:
        result = {names[0]: result}
    out: dict[str, Any] = {}
    for metric, name in zip(metrics, names, strict=True):
        value = result[name]
        out[metric] = [float(v) for v in value] if per_query else float(value)
    return out


def _ranx_name(metric: str) -> str:
    if metric.startswith("hit@"):
        return "hit_rate@" + metric.split("@", 1)[1]
    return metric


# ---------------------------------------------------------------------- running


def beir_run(
    index: Index,
    queries: Mapping[str, str],
    mode: str,
    *,
    depth: int = _PASSAGE_DEPTH,
    on_query: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Document run for BEIR queries in ``mode``, and the per-query latency in seconds."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for number, (qid, text) in enumerate(queries.items(), start=1):
        started = time.perf_counter()
        passages = index.search(text, depth, mode=mode)
        latencies.append(time.perf_counter() - started)
        run[qid] = aggregate_documents([(p.source, p.score) for p in passages], depth)
        if on_query:
            on_query(number, len(queries))
    return run, latencies


def evaluate_beir(
    index: Index,
    dataset: BeirDataset,
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    metrics: Sequence[str] = METRICS,
) -> dict[str, dict[str, float]]:
    """Metrics per mode for a BEIR dataset already indexed in ``index``."""
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        run, latencies = beir_run(index, dataset.queries, mode)
        results[mode] = score_runs(dataset.qrels, run, metrics)
        results[mode]["query_ms_p50"] = _percentile(latencies, 50) * 1000
    return results


def qa_results(
    index: Index, items: Sequence[QaItem], mode: str, k: int = 10
) -> dict[str, list[Passage]]:
    """The top ``k`` passages for each QA item in ``mode``."""
    return {item.id: index.search(item.question, k, mode=mode) for item in items}


def evaluate_qa(
    index: Index,
    items: Sequence[QaItem],
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    metrics: Sequence[str] = METRICS,
    *,
    k: int = 10,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int | None]]]:
    """Metrics per mode for a QA set, and per mode the rank of the first right passage."""
    results: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int | None]] = {}
    for mode in modes:
        found = qa_results(index, items, mode, k)
        triples = {qid: [(p.source, p.text, p.page) for p in ps] for qid, ps in found.items()}
        qrels, run = qa_judgement(items, triples)
        results[mode] = score_runs(qrels, run, metrics)
        ranks[mode] = {
            item.id: next(
                (
                    r
                    for r, (s, t, p) in enumerate(triples[item.id], 1)
                    if passage_matches(s, t, p, item)
                ),
                None,
            )
            for item in items
        }
    return results, ranks


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


# ---------------------------------------------------------------------- reporting


def format_table(
    results: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = METRICS
) -> str:
    """A plain-text table: one row per system or mode, one column per metric."""
    names = list(results)
    width = max([len("mode"), *(len(n) for n in names)])
    header = "  ".join([f"{'mode':<{width}}", *(f"{m:>10}" for m in metrics)])
    lines = [header, "-" * len(header)]
    for name in names:
        row = results[name]
        cells = [f"{row[m]:>10.4f}" if m in row else f"{'-':>10}" for m in metrics]
        lines.append("  ".join([f"{name:<{width}}", *cells]))
    return "\n".join(lines)
