"""The ``tpd-qa`` command line: index, ask, docs, serve, watch, eval.

Exit status (also in ``tpd-qa --help``, defined in :mod:`tpd_qa.cli.status`):

* 0 success;
* 1 error: one ``tpd-qa: error: …`` line on stderr naming what failed and what to do
  (bad question or ``--source``, missing or damaged index, permission denied, disk full,
  a path that is not a folder, …);
* 2 bad usage (unknown option, ``-k 0``, unknown ``--mode``);
* 3 the index was built but some files were skipped (each listed with its reason);
* 130 interrupted (Ctrl-C): one line on stderr (``tpd-qa watch`` ends with 0 instead:
  Ctrl-C is how it is stopped);
* 141 stdout was closed early (``tpd-qa ask … | head -1``): stops quietly, without a
  message, like a tool that a shell's SIGPIPE ended.

Text output never sends a document's control or bidi characters to the terminal
(:mod:`tpd_qa.cli.output`); ``--json`` output is exact.

Modules: ``parser`` (arguments), ``commands`` (what each command does, ``watch`` with
:mod:`tpd_qa.watch`), ``evaluate``
(``tpd-qa eval``), ``output`` (everything printed), ``failures`` (OS errors as one
line), ``status`` (exit statuses).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from tpd_qa.cli.commands import folders, run
from tpd_qa.cli.failures import os_error_message
from tpd_qa.cli.output import error_message, write_error
from tpd_qa.cli.parser import build_parser
from tpd_qa.cli.status import ExitStatus
from tpd_qa.errors import TpdQaError

__all__ = ["ExitStatus", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tpd-qa`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        status = run(args)
        sys.stdout.flush()  # a reader that went away shows up here, not at exit
        return status
    # Every failure ends in one line on stderr (or, for a closed pipe, in silence).
    except TpdQaError as exc:
        write_error(error_message(exc))
        return ExitStatus.ERROR
    except BrokenPipeError:
        _silence_stdout()
        return ExitStatus.BROKEN_PIPE
    except OSError as exc:
        write_error(os_error_message(exc, folders(args)))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        write_error("interrupted; nothing half-written is kept: run the command again")
        return ExitStatus.INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # not a real file (tests capture stdout): nothing will be flushed to a pipe
