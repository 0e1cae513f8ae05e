"""The ``tpd-qa`` command line: index, ask, docs, serve, eval.

Exit status: 0 success; 1 error (one line on stderr); 2 bad usage; 3 the index was
built but some files were skipped (each listed with its reason).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tpd_qa import api
from tpd_qa.errors import TpdQaError
from tpd_qa.records import BuildReport, Passage

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_SKIPPED"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``tpd-qa: error: ...``, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"tpd-qa: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tpd-qa",
        description="Ask questions of a document collection; get cited passages back.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 indexed but some files were skipped.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def dirs(sub: argparse.ArgumentParser, corpus: bool) -> None:
        if corpus:
            sub.add_argument(
                "--corpus", type=Path, help="documents folder (default: $TPD_QA_CORPUS or ./corpus)"
            )
        sub.add_argument(
            "--index", type=Path, help="index folder (default: $TPD_QA_INDEX or ./index)"
        )

    index = commands.add_parser(
        "index",
        help="(re)build the index from the corpus, incrementally",
        description="Embed new and changed documents, drop removed ones, reuse the rest.",
    )
    dirs(index, corpus=True)
    index.add_argument("--full", action="store_true", help="rebuild everything from scratch")
    index.add_argument("--json", action="store_true", help="print the report as JSON")
    index.add_argument("--quiet", action="store_true", help="no progress bar")

    ask = commands.add_parser(
        "ask", help="answer a question with cited passages", description="Search the index."
    )
    ask.add_argument("question", help="the question, in plain language")
    dirs(ask, corpus=False)
    ask.add_argument("-k", type=_positive_int, default=5, help="number of passages (default 5)")
    ask.add_argument(
        "--mode",
        choices=["hybrid", "dense", "bm25"],
        default="hybrid",
        help="retrieval mode (default hybrid: dense + BM25 fused)",
    )
    ask.add_argument(
        "--source", action="append", metavar="PATH", help="only search this document (repeatable)"
    )
    ask.add_argument("--json", action="store_true", help="print a JSON list of passages")

    docs = commands.add_parser("docs", help="list the indexed documents")
    dirs(docs, corpus=False)
    docs.add_argument("--json", action="store_true", help="print JSON")

    serve = commands.add_parser(
        "serve",
        help="serve the web UI (builds the index first if needed)",
        description="Serve the Gradio web UI; binds 127.0.0.1 unless --host says otherwise.",
    )
    dirs(serve, corpus=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument(
        "--allow-upload", action="store_true", help="let visitors add documents to the corpus"
    )

    from tpd_qa.evaluation import add_eval_arguments

    evaluate = commands.add_parser(
        "eval",
        help="score retrieval quality on a BEIR folder or a QA file",
        description="nDCG@10, MRR@10, recall@k and hit@k for each retrieval mode.",
    )
    add_eval_arguments(evaluate)
    return parser


def _print_report(report: BuildReport, corpus: Path, index_dir: Path) -> None:
    out = sys.stdout
    headline = "Full rebuild" if report.full else "Incremental update"
    if report.full_reason:
        headline += f" ({report.full_reason})"
    print(f"{headline}: {corpus} -> {index_dir}", file=out)
    for outcome in report.outcomes:
        if outcome.status == "unchanged":
            continue
        detail = (
            f" ({outcome.chunks} chunks)" if outcome.chunks and outcome.status != "skipped" else ""
        )
        reason = f" - {outcome.reason}" if outcome.reason else ""
        print(f"  {outcome.status:<9} {outcome.source}{detail}{reason}", file=out)
    counts = ", ".join(f"{n} {name}" for name, n in report.counts().items())
    print(
        f"{report.documents} documents, {report.chunks} chunks "
        f"({report.embedded_chunks} embedded now) in {report.seconds:.1f} s. {counts}.",
        file=out,
    )


def _print_passages(passages: list[Passage]) -> None:
    if not passages:
        print("No passages matched the question.")
        return
    width = min(100, max(60, _terminal_width() - 4))
    for rank, passage in enumerate(passages, start=1):
        print(f"[{rank}] {passage.citation}  (score {passage.score:.4f})")
        if passage.title:
            print(f"    {passage.title}")
        body = " ".join(passage.text.split())
        print(textwrap.fill(body, width=width, initial_indent="    ", subsequent_indent="    "))
        print()


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _run(args: argparse.Namespace) -> int:
    if args.command == "index":
        corpus = args.corpus or api.default_corpus_dir()
        index_dir = args.index or api.default_index_dir()
        report = api.build_index(
            corpus, index_dir, full=args.full, progress=not args.quiet and sys.stderr.isatty()
        )
        if args.json:
            print(json.dumps(_report_dict(report), indent=2))
        else:
            _print_report(report, corpus, index_dir)
        return EXIT_SKIPPED if report.skipped else EXIT_OK
    if args.command == "ask":
        passages = api.retrieve(
            args.question, args.k, index_dir=args.index, mode=args.mode, sources=args.source
        )
        if args.json:
            rows = [{"rank": rank, **p.to_dict()} for rank, p in enumerate(passages, start=1)]
            print(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            _print_passages(passages)
        return EXIT_OK
    if args.command == "docs":
        documents = api.list_documents(args.index)
        if args.json:
            from dataclasses import asdict

            print(json.dumps([asdict(d) for d in documents], indent=2, ensure_ascii=False))
        else:
            for doc in documents:
                pages = f", {doc.pages} pages" if doc.pages else ""
                print(f"{doc.source}  [{doc.kind}{pages}, {doc.chunks} chunks]  {doc.title}")
        return EXIT_OK
    if args.command == "serve":
        from tpd_qa.web import serve

        serve(
            corpus_dir=args.corpus or api.default_corpus_dir(),
            index_dir=args.index or api.default_index_dir(),
            host=args.host,
            port=args.port,
            allow_upload=args.allow_upload,
        )
        return EXIT_OK
    if args.command == "eval":
        from tpd_qa.evaluation import run_eval_command

        return run_eval_command(args)
    raise AssertionError(args.command)


def _report_dict(report: BuildReport) -> dict[str, object]:
    return {
        "full": report.full,
        "full_reason": report.full_reason,
        "documents": report.documents,
        "chunks": report.chunks,
        "embedded_chunks": report.embedded_chunks,
        "seconds": round(report.seconds, 3),
        "counts": report.counts(),
        "files": [
            {"source": o.source, "status": o.status, "reason": o.reason, "chunks": o.chunks}
            for o in report.outcomes
        ],
    }


def _error_line(exc: TpdQaError) -> str:
    """The error as the CLI prints it: the message, then its remedy as a command to run."""
    remedies = {
        "build": ": run `tpd-qa index` first",
        "rebuild": ": run `tpd-qa index` to rebuild it for this model",
        "rebuild_full": ": run `tpd-qa index --full`",
        "wait": "; try again when it finishes",
        "choose_index": "; choose another --index",
        "choose_corpus": "; choose another --corpus",
    }
    return f"tpd-qa: error: {exc}{remedies.get(exc.remedy or '', '')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tpd-qa`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return _run(args)
    except TpdQaError as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("tpd-qa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
