"""Evaluation datasets: BEIR folders (corpus, queries, qrels) and QA files (JSONL)."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpd_qa.errors import ConfigError
from tpd_qa.records import Document, Heading

__all__ = [
    "BeirDataset",
    "QaItem",
    "beir_document",
    "load_beir",
    "load_qa",
    "read_jsonl",
    "read_qrels",
]


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


def read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
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
    for _, record in read_jsonl(paths["queries"]):
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
    for number, record in read_jsonl(paths["corpus"]):
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
    for number, record in read_jsonl(path):
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
