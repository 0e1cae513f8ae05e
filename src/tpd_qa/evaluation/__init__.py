"""Retrieval evaluation: BEIR folders, QA files and SQuAD files, scored per mode.

Three kinds of dataset:

* a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): the corpus is
  indexed in memory (or loaded from ``--index-cache``), chunk scores are aggregated per
  document (a document scores as its best chunk), and documents are judged by the qrels;
* a QA file (JSONL, one ``{"question", "source", "evidence", "page"?}`` per line), judged
  against an existing index: a passage is right when it comes from ``source`` (and
  ``page``, if given) and contains ``evidence`` (whitespace-insensitive);
* a SQuAD file (JSON with ``data`` articles and their ``paragraphs``): each article
  becomes a Markdown document, and a passage is right when it comes from the question's
  article and holds a gold answer (:mod:`tpd_qa.evaluation.squad`).

The parts: ``datasets`` (reading BEIR and QA files), ``metrics`` (judging, ranx scores,
tables), ``runs`` (an index over a dataset, per mode), ``squad``. The ``tpd-qa eval``
command around this library is :mod:`tpd_qa.cli.evaluate`. Heavy libraries (ranx,
numba) are imported inside functions: the CLI imports this package whenever it builds
its parser.
"""

from __future__ import annotations

from tpd_qa.evaluation.datasets import (
    BeirDataset,
    QaItem,
    beir_document,
    load_beir,
    load_qa,
    read_jsonl,
    read_qrels,
)
from tpd_qa.evaluation.metrics import (
    METRICS,
    aggregate_documents,
    format_table,
    passage_matches,
    qa_judgement,
    score_runs,
)
from tpd_qa.evaluation.runs import beir_run, evaluate_beir, evaluate_qa, qa_results
from tpd_qa.evaluation.squad import (
    MAX_PASSAGE_CHARS,
    SQUAD_METRICS,
    SquadDataset,
    SquadQuestion,
    evaluate_squad,
    first_hit,
    is_squad,
    load_squad,
    squad_hit,
    squad_markdown,
    squad_metrics,
)

__all__ = [
    "MAX_PASSAGE_CHARS",
    "METRICS",
    "SQUAD_METRICS",
    "BeirDataset",
    "QaItem",
    "SquadDataset",
    "SquadQuestion",
    "aggregate_documents",
    "beir_document",
    "beir_run",
    "evaluate_beir",
    "evaluate_qa",
    "evaluate_squad",
    "first_hit",
    "format_table",
    "is_squad",
    "load_beir",
    "load_qa",
    "load_squad",
    "passage_matches",
    "qa_judgement",
    "qa_results",
    "read_jsonl",
    "read_qrels",
    "score_runs",
    "squad_hit",
    "squad_markdown",
    "squad_metrics",
]
