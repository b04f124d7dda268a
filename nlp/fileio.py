"""Atomic file writes: a reader never sees a half-written output, and a failed write leaves the old file alone."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import UsageError

#: A leftover without an owner in its name (made before names carried one) is stale once untouched this long.
LEGACY_STALE_SECONDS = 24 * 3600
_OWNER = re.compile(r"\.(\d+)@([^.]*)\.")


def owner_token() -> str:
    """``PID@HOST`` for names of temporary files and folders, so that a later run can tell a leftover of a killed
    process (gone) from one in use (alive)."""
    return f"{os.getpid()}@{socket.gethostname().replace('.', '_')}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_stale(path: Path) -> bool:
    """Whether a temporary file or folder is a leftover of ours: owned by this user, and named by a process of this
    host that is gone (or, named before names carried one, untouched for LEGACY_STALE_SECONDS)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if info.st_uid != os.getuid() or stat.S_ISLNK(info.st_mode):
        return False
    owner = _OWNER.search(path.name)
    if owner is None:
        return time.time() - info.st_mtime > LEGACY_STALE_SECONDS
    pid, host = int(owner.group(1)), owner.group(2)
    return host == owner_token().split("@", 1)[1] and not _alive(pid)


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove the leftovers (:func:`is_stale`) matching ``pattern`` in ``folder``; what cannot go stays."""
    try:
        entries = list(Path(folder).glob(pattern))
    except OSError:
        return
    for entry in entries:
        if not is_stale(entry):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                entry.unlink()
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (with the usual permissions)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target}: is a folder, not a file name")
    if not target.parent.exists():
        raise UsageError(f"{target.parent}: folder does not exist")
    remove_stale(target.parent, f".{glob_escape(target.name)}.*.tmp")  # left by a killed run
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{owner_token()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` so that it shows as text (OWASP's
    advice); anything else unchanged. Numbers stay numbers: only text can smuggle a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(frame) -> str:
    """``frame.to_csv()`` with every text cell, row label and column name neutralised (:func:`neutralise_cell`):
    document titles, issuers and group names come from the documents, and a CSV export is opened in spreadsheets."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_cell)
    out.index = out.index.map(neutralise_cell)
    out.columns = out.columns.map(neutralise_cell)
    return out.to_csv()
