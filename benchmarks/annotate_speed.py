#!/usr/bin/env python
"""Annotate page: time from a save (or a label toggle, a skip, an undo) to the next passage drawn, on a workspace.

    CDPD_HOME=/tmp/copy-of-workspace .venv/bin/python benchmarks/annotate_speed.py [--saves 15] [--existing 2000]

What it measures: one AppTest session on the Annotate page, as a browser tab is: the first run (the queue is
built: the model scores a pool of passages, once per model, strategy, size and workspace state, then cached), then
``--saves`` rounds of (toggle a label, save), each timed from the click to the end of the script run that draws
the next passage (the save is committed inside it), then skips and undos. Wall-clock medians and maxima. AppTest
runs the script as the server does, without the browser's share (a websocket message and React's redraw, tens of
milliseconds; the browser test checks it end to end).

``--existing N`` first adds N annotations of workspace passages (every other one by the benchmark's annotator, so
that its history holds N/2 rows), as a workspace after months of annotation would hold: the page reads them on
every run (history, counts, agreement).

The workspace is written to (annotations): run it on a copy, never on the user's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv=None) -> int:
    from streamlit.testing.v1 import AppTest

    from nlp.workspace import DB_FILE, Workspace, default_home

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=15)
    parser.add_argument("--existing", type=int, default=0)
    args = parser.parse_args(argv)
    home = default_home()
    if not (home / DB_FILE).exists():
        parser.error(f"no workspace at {home}: set CDPD_HOME to a copy of one")
    with Workspace(home, create=False) as ws:
        docs, passages = ws.count_documents(), ws.conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        rows = ws.candidate_passages(limit=args.existing, seed=99) if args.existing else []
        for i, (pid, _doc, start, end, text) in enumerate(rows):
            ws.add_annotation(text[start:end], {"functions": ["advocacy"] if i % 3 else [], "domains": []},
                              "benchmark" if i % 2 else "earlier", passage_id=pid)
        existing = ws.conn.execute("SELECT count(*) FROM annotations").fetchone()[0]
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("nlp/app/pages/annotate.py")
    first = timed(at.run)
    at.text_input(key="annotator").input("benchmark")
    timed(at.run)
    assert not at.exception, [e.value for e in at.exception]
    n = len(at.session_state["queue"])
    saves, toggles, skips, undos = [], [], [], []
    for i in range(min(args.saves, n - 2)):
        axis, label = ("domains", "peace") if i % 2 else ("functions", "advocacy")
        toggles.append(timed(at.button(key=f"annotate_label_{axis}_{label}").click().run))
        before = at.session_state["queue_pos"]
        saves.append(timed(at.button(key="annotate_save").click().run))
        assert at.session_state["queue_pos"] == before + 1 and not at.exception
    for _ in range(2):
        skips.append(timed(at.button(key="annotate_skip").click().run))
    for _ in range(3):
        undos.append(timed(at.button(key="annotate_undo").click().run))
    assert not at.exception

    def line(name, values):
        return f"{name:<32} {statistics.median(values):6.3f} s median, {max(values):6.3f} s max ({len(values)} runs)"

    print(f"workspace {home}: {docs:,} documents, {passages:,} passages, {existing:,} annotations before; "
          f"queue of {n}")
    print(f"{'first run (queue built)':<32} {first:6.3f} s")
    for name, values in (("save -> next passage", saves), ("toggle a label", toggles), ("skip", skips),
                         ("undo", undos)):
        print(line(name, values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
