"""The one writer of ``benchmarks/RESULTS.md``: each benchmark script replaces only its own section.

    from _results import write_section   # benchmarks/ is on sys.path when a script there runs
    write_section(path, section)          # the section's first line ("## Title (benchmarks/x.py)") is its heading

A section runs from its level-2 heading to the next level-2 heading (or the end of the file); a missing one is
appended. The file is rewritten atomically (a temporary file renamed over it) under an advisory lock, so two scripts
finishing at once do not lose each other's sections.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (what `lscpu` prints), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def git_commit(root: Path) -> str:
    """The short hash of HEAD in ``root``, or "?" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True).stdout.strip() or "?"
    except OSError:
        return "?"


HEADER = ("# Benchmarks\n\nOne section per benchmark script under `benchmarks/`; each script rewrites only its "
          "own section.\n")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        yield
        return
    # beside the temporary files, not the results: the file itself is replaced by a rename, and a lock file in
    # benchmarks/ would show up in git
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"cdpd-results-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def replace_section(text: str, section: str, heading: str | None = None) -> str:
    """``text`` with the section that starts with ``heading`` (default: the first line of ``section``) replaced by
    ``section``, or with ``section`` appended."""
    heading = (heading or section.lstrip("\n").splitlines()[0]).rstrip()
    if not heading.startswith("## "):
        raise ValueError(f"a results section starts with a level-2 heading ('## ...'), not {heading!r}")
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    block = section.strip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    return text.rstrip("\n") + "\n"


def publish(section: str, out: str | Path | None, heading: str | None = None) -> None:
    """A script's ending: the section on stdout, and unless ``out`` is None (``--no-write``) into that file, said
    on stderr."""
    import sys

    print(section)
    if out is not None:
        write_section(out, section, heading)
        print(f"wrote {out}", file=sys.stderr)


def write_section(path: str | Path, section: str, heading: str | None = None) -> None:
    """Replace (or add) one section of the results file ``path``, keeping every other section as it is."""
    path = Path(path)
    with _locked(path):
        text = path.read_text(encoding="utf-8") if path.exists() else HEADER
        new = replace_section(text, section, heading)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
