"""Exit statuses of ``tpd-qa``: what each number means, in one place."""

from __future__ import annotations

import signal
from enum import IntEnum
from typing import Final

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SKIPPED",
    "EXIT_STATUS_HELP",
    "EXIT_USAGE",
    "WATCH_HELP",
    "ExitStatus",
]


class ExitStatus(IntEnum):
    """What ``tpd-qa`` returns to the shell."""

    OK = 0
    ERROR = 1  # one ``tpd-qa: error: …`` line on stderr says what failed and what to do
    USAGE = 2
    SKIPPED = 3  # the index was built, but some files were skipped (each with its reason)
    INTERRUPTED = 128 + int(signal.SIGINT)  # Ctrl-C, as shells report it
    BROKEN_PIPE = 128 + int(signal.SIGPIPE)  # stdout closed early (``… | head -1``), silent


EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SKIPPED, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = ExitStatus

#: The exit statuses as ``--help`` shows them.
EXIT_STATUS_HELP: Final = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_ERROR}    error: one `tpd-qa: error: ...` line on stderr names what failed and what to
       do (bad question or --source, missing or damaged index, permission denied,
       disk full, a path that is not a folder, ...)
  {EXIT_USAGE}    bad usage (unknown option, -k 0, unknown --mode)
  {EXIT_SKIPPED}    indexed, but some files were skipped (each listed with its reason)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); the index is left as it was or fully updated
       (`tpd-qa watch` ends with {EXIT_OK} instead: Ctrl-C is how it is stopped)
  {EXIT_BROKEN_PIPE}  stdout was closed early (e.g. `| head -1`); stops quietly
"""

#: How ``tpd-qa watch`` ends, as its ``--help`` shows it.
WATCH_HELP: Final = f"""\
stopping:
  Ctrl-C (or SIGTERM) stops watching with exit status {EXIT_OK}: it is the normal way to
  end. A rebuild cut short by Ctrl-C leaves the index as it was before it; SIGTERM
  lets a running rebuild finish first. A folder that is unusable at the start ends
  the command at once with status {EXIT_ERROR}; a rebuild that fails later is reported
  on stderr and tried again, and watching goes on.
"""
