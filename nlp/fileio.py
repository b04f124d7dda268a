"""Atomic file writes: a reader never sees a half-written output, and a failed write leaves the old file alone."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (with the usual permissions)."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{target}: is a folder, not a file name")
    if not target.parent.exists():
        raise ValueError(f"{target.parent}: folder does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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
