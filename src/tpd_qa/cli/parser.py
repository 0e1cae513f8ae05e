"""The argument parser of ``tpd-qa``: commands, options, help and usage errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from tpd_qa.cli.evaluate import add_eval_arguments
from tpd_qa.cli.status import EXIT_STATUS_HELP, EXIT_USAGE, WATCH_HELP
from tpd_qa.errors import TpdQaError
from tpd_qa.export import EXPORT_FORMATS
from tpd_qa.index.cluster import check_address
from tpd_qa.limits import DEFAULT_K
from tpd_qa.modes import BACKENDS, MODE_ALIASES, MODES, normalise_mode
from tpd_qa.query import check_k

__all__ = ["build_parser"]


T = TypeVar("T")


def _usage_checked(check: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` from a library check: its error becomes a usage error, so
    the option obeys the same rule, with the same message, as every other way in."""

    def convert(value: str) -> T:
        try:
            return check(value)
        except TpdQaError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__
    return convert


def _at_least(least: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number of at least ``least``."""

    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = least - 1
        if number < least:
            raise argparse.ArgumentTypeError(
                f"expected a whole number of at least {least}, got {value!r}"
            )
        return number

    return convert


_k = _usage_checked(check_k)  # -k: a whole number of at least 1
_mode = _usage_checked(normalise_mode)  # --mode: any accepted name or alias
_ray_address = _usage_checked(check_address)  # --ray: checked before any work starts
_offset = _at_least(0)  # --start, --end, --context: character offsets and counts
_positive = _at_least(1)  # --ray-workers


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``tpd-qa: error: ...``, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"tpd-qa: error: {message} (see `{self.prog} --help`)\n")


def _folders(sub: argparse.ArgumentParser, *, corpus: bool) -> None:
    if corpus:
        sub.add_argument(
            "--corpus", type=Path, help="documents folder (default: $TPD_QA_CORPUS or ./corpus)"
        )
    sub.add_argument("--index", type=Path, help="index folder (default: $TPD_QA_INDEX or ./index)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``tpd-qa`` command."""
    parser = _Parser(
        prog="tpd-qa",
        description="Ask questions of a document collection; get cited passages back.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, *, corpus: bool, **options: Any) -> argparse.ArgumentParser:
        """A subcommand with --index (and --corpus when it reads the corpus)."""
        sub = commands.add_parser(name, **options)
        _folders(sub, corpus=corpus)
        return sub

    index = command(
        "index",
        help="(re)build the index from the corpus, incrementally",
        description="Embed new and changed documents, drop removed ones, reuse the rest.",
        corpus=True,
    )
    index.add_argument("--full", action="store_true", help="rebuild everything from scratch")
    index.add_argument(
        "--no-ocr",
        dest="ocr",
        action="store_false",
        help="skip scanned PDF pages and images instead of reading them with Tesseract",
    )
    index.add_argument(
        "--sentences",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also embed each sentence of each passage, so a passage that answers in one "
        "sentence ranks higher (about twice the embedding work; default: what the index "
        "has, on for a new one)",
    )
    index.add_argument("--json", action="store_true", help="print the report as JSON")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where search data lives: local (FAISS + bm25s, the default) or milvus "
        "(default: what the index was built with)",
    )
    index.add_argument(
        "--milvus-uri",
        metavar="URI",
        help="Milvus server (http://host:19530) or Milvus Lite file (*.db) for --backend milvus "
        "(default: $TPD_QA_MILVUS_URI)",
    )
    index.add_argument(
        "--ray",
        nargs="?",
        const="local",
        type=_ray_address,
        metavar="ADDRESS",
        help="read, chunk and embed new and changed documents on Ray: local (default; "
        "starts Ray on this machine), auto (the cluster this machine joined), "
        "ray://HOST:PORT or HOST:PORT; needs pip install 'tpd-qa[ray]'",
    )
    index.add_argument(
        "--ray-workers",
        type=_positive,
        metavar="N",
        help="Ray actors, each with its own model (default: one per CPU of the cluster)",
    )

    ask = command(
        "ask",
        help="answer a question with cited passages",
        description="Search the index.",
        corpus=False,
    )
    ask.add_argument("question", help="the question, in plain language")
    ask.add_argument(
        "-k", type=_k, default=DEFAULT_K, help=f"number of passages (default {DEFAULT_K})"
    )
    aliases = ", ".join(sorted(MODE_ALIASES))
    ask.add_argument(
        "--mode",
        type=_mode,
        choices=MODES,
        default="hybrid",
        help=f"retrieval mode (default hybrid: dense + BM25 fused; also accepted: {aliases})",
    )
    ask.add_argument(
        "--source", action="append", metavar="PATH", help="only search this document (repeatable)"
    )
    ask.add_argument(
        "--format",
        choices=("text", *EXPORT_FORMATS),
        default="text",
        help="output: readable text (default), json, markdown or csv",
    )
    ask.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )

    show = command(
        "show",
        help="print a passage with the text around it (and draw it on its PDF page)",
        description="Show a cited passage in its document. CITATION is a citation as "
        "`ask` prints it (source · … · chars START–END) or a document's source path with "
        "--start and --end.",
        corpus=True,
    )
    show.add_argument("citation", metavar="CITATION_OR_SOURCE")
    show.add_argument("--start", type=_offset, help="first character of the passage")
    show.add_argument("--end", type=_offset, help="character after the passage")
    show.add_argument(
        "--context", type=_offset, default=300, help="characters shown on each side (default 300)"
    )
    show.add_argument(
        "--page-image",
        type=Path,
        metavar="OUT.png",
        help="for a PDF: write its page with the passage highlighted (PNG)",
    )

    docs = command("docs", help="list the indexed documents", corpus=False)
    docs.add_argument("--json", action="store_true", help="print JSON")

    serve = command(
        "serve",
        help="serve the web UI (builds the index first if needed)",
        description="Serve the Gradio web UI; binds 127.0.0.1 unless --host says otherwise.",
        corpus=True,
    )
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--allow-upload", action="store_true", help="let visitors add documents to the corpus"
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="index new, changed and removed files on their own while serving",
    )

    watch = command(
        "watch",
        help="keep the index current while the corpus changes",
        description=(
            "Bring the index up to date, then rebuild it incrementally whenever files in\n"
            "the corpus are added, changed, renamed or removed, once they have stopped\n"
            "changing for a moment. Prints one line per rebuild until stopped."
        ),
        epilog=WATCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        corpus=True,
    )
    watch.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar or start line; rebuilds that changed nothing are not shown",
    )

    evaluate = commands.add_parser(
        "eval",
        help="score retrieval quality on a BEIR folder or a QA file",
        description="nDCG@10, MRR@10, recall@k and hit@k for each retrieval mode.",
    )
    add_eval_arguments(evaluate)
    return parser
