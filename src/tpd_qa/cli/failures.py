"""What an operating-system failure means for the user: one sentence naming the path and a fix.

The library raises ``OSError`` as the system reports it (``[Errno 13] Permission denied:
'idx/.gen-….partial'``). Here it becomes a line that says which folder (and which option
chose it) is the problem and what to do about it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["os_error_message"]

_PERMISSION = {errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _failing_path(exc: OSError) -> Path | None:
    name = exc.filename
    if isinstance(name, (str, bytes, os.PathLike)):
        return Path(os.fsdecode(name))
    return None


def _owner(path: Path | None, folders: Mapping[str, Path]) -> tuple[str, Path] | None:
    """The option whose folder holds ``path`` (the first folder when the path is unknown)."""
    if path is None:
        return next(iter(folders.items()), None)
    try:
        target = path.resolve()
        for option, folder in folders.items():
            root = folder.resolve()
            if target == root or root in target.parents:
                return option, folder
    except (OSError, RuntimeError):
        pass
    return None


def os_error_message(exc: OSError, folders: Mapping[str, Path]) -> str:
    """One line for ``exc``; ``folders`` maps the command's options to their folders, the
    folder the command writes to first (it is blamed when the system names no path)."""
    path = _failing_path(exc)
    owner = _owner(path, folders)
    folder = owner[1] if owner else (path.parent if path else None)
    choose = f"choose another {owner[0]}" if owner else "choose another path"
    what = str(path) if path else (f"in {folder}" if folder else "a file")
    code = exc.errno
    if code in _PERMISSION:
        fix = f"give your user access to {folder} or {choose}" if folder else choose
        return f"permission denied: {what}; {fix}"
    if code == errno.EROFS:
        return f"{folder or what} is on a read-only file system; {choose}"
    if code in _FULL:
        return (
            f"no space left on the device writing {what}; free some space and run the "
            "command again (an unfinished save is removed, the previous index is kept)"
        )
    if code == errno.ENOTDIR:
        return f"{what}: a part of this path is a file, not a folder; {choose}"
    if code == errno.ENOENT:
        return f"{what} does not exist (was it moved while tpd-qa ran?); check it and run again"
    if code in (errno.EMFILE, errno.ENFILE):
        return "too many open files; close other programs or raise `ulimit -n`, then run again"
    reason = exc.strerror or type(exc).__name__
    return f"{what}: {reason}; check it and run the command again"
