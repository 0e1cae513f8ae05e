"""Watch mode: keep an index current while its corpus changes.

``watcher`` (:class:`CorpusWatcher`: the file system watch, settling and rebuilds) and
``status`` (:class:`WatchStatus` and :class:`Rebuild`: what the watcher is doing and
what its rebuilds did, for the command line and the web UI). Sits above :mod:`tpd_qa.api`
(it rebuilds with ``api.build_index``) and below the front ends.
"""

from __future__ import annotations

from tpd_qa.watch.status import CHANGE_KINDS, Rebuild, WatchState, WatchStatus
from tpd_qa.watch.watcher import CorpusWatcher, is_ignored

__all__ = [
    "CHANGE_KINDS",
    "CorpusWatcher",
    "Rebuild",
    "WatchState",
    "WatchStatus",
    "is_ignored",
]
