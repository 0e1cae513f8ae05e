"""What each ``tpd-qa`` command does, given its parsed arguments; returns the exit status."""

from __future__ import annotations

import argparse
import difflib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import tpd_qa.api as api
from tpd_qa.cli.output import (
    document_dicts,
    document_lines,
    parse_citation,
    passage_lines,
    rebuild_line,
    report_dict,
    report_lines,
    show_lines,
    write_json,
    write_lines,
)
from tpd_qa.cli.status import EXIT_OK, EXIT_SKIPPED
from tpd_qa.errors import ConfigError, QueryError
from tpd_qa.export import export, passage_rows
from tpd_qa.records import DocumentInfo

__all__ = ["folders", "run", "unknown_sources"]


def run(args: argparse.Namespace) -> int:
    """Run the command ``args`` names."""
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "index": _index,
        "ask": _ask,
        "docs": _docs,
        "show": _show,
        "serve": _serve,
        "watch": _watch,
        "eval": _eval,
    }
    return handlers[args.command](args)


def _eval(args: argparse.Namespace) -> int:
    from tpd_qa.cli.evaluate import run_eval_command  # ranx loads only for `eval`

    return run_eval_command(args)


def folders(args: argparse.Namespace) -> dict[str, Path]:
    """The folders the command works in, by the option that chose them (written first)."""
    found: dict[str, Path] = {}
    if args.command in ("index", "ask", "docs", "serve", "watch", "show"):
        found["--index"] = args.index or api.default_index_dir()
    if args.command == "show" and args.page_image is not None:
        found["--page-image"] = args.page_image
    if args.command in ("index", "serve", "watch", "show"):
        found["--corpus"] = args.corpus or api.default_corpus_dir()
    if args.command == "eval":
        for option, value in (("--index-cache", args.index_cache), ("--corpus", args.corpus)):
            if value is not None:
                found[option] = value
        found["--index"] = args.index or api.default_index_dir()
        found["dataset"] = args.dataset
    return found


def _index(args: argparse.Namespace) -> int:
    corpus = args.corpus or api.default_corpus_dir()
    index_dir = args.index or api.default_index_dir()
    progress = not args.quiet and sys.stderr.isatty()
    if args.ray_workers is not None and args.ray is None:
        raise ConfigError("--ray-workers needs --ray")
    report = api.build_index(
        corpus,
        index_dir,
        full=args.full,
        progress=progress,
        backend=args.backend,
        milvus_uri=args.milvus_uri,
        ocr=args.ocr,
        ray=args.ray,
        ray_workers=args.ray_workers,
        sentences=args.sentences,
    )
    if args.json:
        write_json(report_dict(report), ascii_only=True)
    else:
        write_lines(report_lines(report, corpus, index_dir))
    return EXIT_SKIPPED if report.skipped else EXIT_OK


def _existing_index(args: argparse.Namespace) -> Path:
    """``--index`` for reading: a file there is a clear error, not ``NotADirectoryError``."""
    index_dir: Path = args.index or api.default_index_dir()
    if index_dir.exists() and not index_dir.is_dir():
        raise ConfigError(f"{index_dir} is a file, not an index folder; choose another --index")
    return index_dir


def _ask(args: argparse.Namespace) -> int:
    index_dir = _existing_index(args)
    if args.source:
        unknown = unknown_sources(args.source, api.list_documents(index_dir))
        if unknown:
            raise QueryError(unknown)
    passages = api.retrieve(
        args.question, args.k, index_dir=index_dir, mode=args.mode, sources=args.source
    )
    if args.format == "json":
        write_json(passage_rows(passages))
    elif args.format in ("markdown", "csv"):
        sys.stdout.write(export(passages, args.format, question=args.question))
    else:
        write_lines(passage_lines(passages))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    index_dir = _existing_index(args)
    source, start, end = parse_citation(args.citation)
    start = args.start if args.start is not None else start
    end = args.end if args.end is not None else end
    document = api.load_index(index_dir).document(source)
    if start is None or end is None:
        if args.start is not None or args.end is not None:
            raise QueryError("give both --start and --end (or a citation with chars START–END)")
        start, end = 0, 0
    if not 0 <= start <= end <= len(document.text):
        raise QueryError(f"chars {start}–{end} are not within {source!r} (0–{len(document.text)})")
    write_lines(show_lines(document, start, end, args.context))
    if args.page_image is not None:
        if document.kind != "pdf":
            raise QueryError(f"--page-image needs a PDF; {source!r} is {document.kind}")
        page = document.page_at(start) or 1
        png = api.render_page(
            document.source,
            page,
            [(start, end)] if end > start else [],
            corpus_dir=args.corpus or api.default_corpus_dir(),
            index_dir=index_dir,
        )
        args.page_image.write_bytes(png)
        write_lines([f"page {page} written to {args.page_image}"])
    return EXIT_OK


def unknown_sources(wanted: Sequence[str], documents: Sequence[DocumentInfo]) -> str:
    """A one-line message naming the ``--source`` values that are not indexed (with close
    names, from the indexed sources and their duplicates' paths), or "" when all are."""
    known = {doc.source for doc in documents}
    known.update(alias for doc in documents for alias in doc.duplicates)
    missing = [name for name in dict.fromkeys(wanted) if name not in known]
    if not missing:
        return ""
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    noun = "a document that is" if len(missing) == 1 else "documents that are"
    return (
        f"--source names {noun} not in the index: {', '.join(parts)}; "
        "`tpd-qa docs` lists the indexed documents"
    )


def _docs(args: argparse.Namespace) -> int:
    documents = api.list_documents(_existing_index(args))
    if args.json:
        write_json(document_dicts(documents))
    else:
        write_lines(document_lines(documents))
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from tpd_qa.web import serve

    serve(
        corpus_dir=args.corpus or api.default_corpus_dir(),
        index_dir=args.index or api.default_index_dir(),
        host=args.host,
        port=args.port,
        allow_upload=args.allow_upload,
        watch=args.watch,
    )
    return EXIT_OK


def _watch(args: argparse.Namespace) -> int:
    from tpd_qa.watch import CorpusWatcher, Rebuild

    corpus = args.corpus or api.default_corpus_dir()
    index_dir = args.index or api.default_index_dir()

    closed: list[BrokenPipeError] = []

    def show(rebuild: Rebuild) -> None:
        try:
            if not rebuild.ok:
                write_lines([rebuild_line(rebuild, watcher.error_retry)], sys.stderr)
                sys.stderr.flush()
            elif rebuild.changed_anything or not args.quiet:
                write_lines([rebuild_line(rebuild)])
                sys.stdout.flush()
        except BrokenPipeError as exc:  # nobody reads any more (`| head -3`): stop
            closed.append(exc)
            watcher.stop()

    watcher = CorpusWatcher(
        corpus, index_dir, progress=not args.quiet and sys.stderr.isatty(), on_report=show
    )
    if not args.quiet:
        write_lines([f"watching {corpus} -> {index_dir} (Ctrl-C to stop)"])
        sys.stdout.flush()
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: watcher.stop())
    try:
        ended = watcher.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if closed:
        raise closed[0]
    if not args.quiet:
        how = " (Ctrl-C)" if ended == "interrupted" else ""
        write_lines([f"stopped watching {corpus}{how}"], sys.stderr)
    return EXIT_OK
