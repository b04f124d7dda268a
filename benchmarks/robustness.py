#!/usr/bin/env python
"""Robustness goals of issue 15, measured as a whole: malformed inputs, hostile model folders, markup, kill -9.

    .venv/bin/python benchmarks/robustness.py [--n 1000] [--seed 15] [--quick] [--kill-trials 20]
        [--kill-docs 1000] [--classify-alone-every 5] [--group 25] [--out benchmarks/RESULTS.md] [--no-write]

What it measures
  * **Malformed inputs** (about ``--n``, generated deterministically from ``--seed`` in families: empty and
    whitespace-only files of every supported suffix, binary junk, real PDF/DOCX/Parquet/gzip files (built from the
    shipped corpora) cut at random offsets, wrong extensions, text in Latin-1/cp1252/UTF-16/UTF-32 without BOM
    (GOOD inputs: they must be read), NUL bytes, lone-surrogate escapes and bad-typed rows in JSONL/CSV/Parquet
    tables, deeply nested JSON, gzip bombs, a DOCX zip bomb, a PDF flate bomb, HTML with very many tags or very
    deep nesting, huge single lines, file names that are not UTF-8, links out of a folder, FIFOs and links to
    devices). Each input is fed, in subprocesses (``python -m nlp``, a fresh ``CDPD_HOME``/``CDPD_MODELS``/
    ``CDPD_LOG`` and temporary folder), to
      - **alone**: every input once in ``cdpd ingest`` alone (a fresh workspace), and every
        ``--classify-alone-every``-th one also in ``cdpd classify --model lexicon`` alone (a classify process
        costs ~2 s of start-up; ingest ~0.5 s);
      - **between good files**: ``good bad good bad ... good`` with ``--group`` bad inputs per command, every
        input in one such ``classify`` command and one such ``ingest`` command (the goods are real documents
        from ``corpora/white_house.parquet`` as .txt, .pdf and .docx files);
      - **in folders**: n/40 folders, each holding ~12 inputs and 3 good files, given to both commands.
    Links out of a folder only exist inside folders: their "alone" run is a folder holding just the link.
    Each run has a 60 s timeout; peak RSS is the child's ``ru_maxrss`` (``os.wait4``), an 8 GiB address-space cap
    (``RLIMIT_AS``) only protects the machine (the goal is 2 GB of RSS). Checked per run: no ``Traceback`` on
    stderr, exit status in {0, 1, 2} (README), every good document has its output row (classify: a JSON line with
    its id; ingest: a row of ``documents``, read with a fresh SQLite connection), every bad input or bad table row
    exactly one stderr line naming it (its path or row id) with a reason (``skipped NAME: reason``), elapsed and
    peak RSS. An input whose outcome is legitimately open (a truncated PDF may keep readable pages, a cut gzip
    may yield its first rows) must get a row or one refusal line, never neither and never two lines. A table the
    product refuses whole by design (a first line that is not JSON, more blank lines than MAX_BLANK_LINES) counts its
    good rows apart ("rows in tables refused whole"), not as lost documents. A bad input
    that became a document instead is counted ("bad accepted"), not a goal failure, and listed.
  * **Model folders**: crafted folders in a temporary ``CDPD_MODELS`` (transformer config with ``auto_map`` and a
    Python file that writes a marker when imported, a folder holding only a ``.py`` file, state files linked to
    ``/dev/zero``, pickles named ``linear.safetensors``/``linear.skops``/``embedding.skops``, a ``meta.json`` naming
    ``../../x``, a model folder linked out of the registry, ``meta.json`` linked to ``/dev/zero``, an ACTIVE file
    naming ``../../x``), each loaded by ``cdpd classify --model NAME`` with "y" piped on stdin: marker files
    created (code run), tracebacks, refusals that are not one line (a one-line ``cdpd: warning:`` before the
    refusal, such as an ignored ACTIVE file, is counted apart).
  * **Markup**: hostile titles/ids/urls/texts (Markdown images and links, ``<script>``, ``<img onerror>``, a url
    breaking out of a link) through the app's own renderers, no browser: ``nlp.app.common.md_text`` rendered as
    Markdown (markdown-it, HTML on, as permissive as Streamlit), ``highlight`` (with evidence sentences holding the
    markup) and ``display_text`` + ``highlight`` as Annotate shows passages, ``plot_text``: live ``<img``,
    ``<script``, ``<a`` or other elements that survived are counted.
  * **kill -9**: (a) ``cdpd ingest --classify --model lexicon`` of a Parquet table of ``--kill-docs`` real
    documents, SIGKILLed after a seeded random delay within an uninterrupted run's time, then checked
    (``PRAGMA integrity_check``, FTS5 ``integrity-check`` of ``documents_fts``, no orphan passages, predictions,
    passage labels or classified rows, ``label_counts``/``group_counts`` equal to a recount and every rollup
    equal to its fine table's sums, no ``cdpd-ingest-*`` leftovers after the re-run), re-run to completion and
    compared with an uninterrupted run (documents table, predictions and counts); (b) a child that saves
    annotations one by one through ``Workspace.insert_annotation`` and prints each acknowledged id (flushed, to a
    file), SIGKILLed after a random delay: every acknowledged id must be in the workspace, and the checks hold.
    The trials of (b) share one workspace, so each kill lands on a bigger table.

The console gets the tables; ``--out`` gets a ``## Robustness (benchmarks/robustness.py)`` section (``_results.py``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import gzip  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _results import cpu_model, git_commit, write_section  # noqa: E402

from nlp import limits  # noqa: E402

SECTION = "## Robustness (benchmarks/robustness.py)"
TIMEOUT_S = 60.0
RSS_GOAL = 2 * 1024 ** 3
AS_CAP = 8 * 1024 ** 3
SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl", ".json", ".csv", ".parquet", ".jsonl.gz",
            ".csv.gz")
PY = sys.executable


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- real documents ----------------------------------------------------------------------------------------------
def corpus_texts(name: str, lo: int = 600, hi: int = 3000) -> list[tuple[str, str]]:
    """(title, text) of a corpus's English documents of lo-hi characters, distinct texts, in file order."""
    import pandas as pd

    frame = pd.read_parquet(ROOT / "corpora" / f"{name}.parquet", columns=["title", "text"])
    seen, out = set(), []
    for title, text in zip(frame["title"], frame["text"]):
        key = " ".join(str(text).split()).lower()
        if lo <= len(text) <= hi and key not in seen:
            seen.add(key)
            out.append((str(title or ""), str(text)))
    return out


def pdf_bytes(text: str) -> bytes:
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter)
    y = 750
    words, line = text.split(), ""
    for w in words:
        if len(line) + len(w) > 90:
            c.drawString(40, y, line)
            y -= 14
            line = ""
            if y < 50:
                c.showPage()
                y = 750
        line += w + " "
    c.drawString(40, y, line)
    c.save()
    return buf.getvalue()


def docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    for para in text.split("\n"):
        if para.strip():
            d.add_paragraph(para)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def csv_bytes(rows: list[dict]) -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


# -- cases -------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One malformed (or deliberately good) input. ``token`` (``cNNNN_``) is in its file name and its row ids, so
    output rows and stderr lines are matched to it. ``good_ids``: ids (exact, for table rows) that must come out;
    ``good_files``: 1 when the file itself is a good document (its id is its path); ``bad``: refusal lines
    expected; ``either``: a row or one refusal line, both legitimate."""
    idx: int
    family: str
    path: Path
    good_ids: list[str] = field(default_factory=list)
    good_file: int = 0
    bad: int = 0
    either: bool = False
    folder_only: bool = False
    note: str = ""
    #: good rows of a table that the product refuses whole, as documented (README: a table whose first line is not
    #: JSON is skipped; past MAX_BLANK_LINES "the file ... is refused"): not read, counted apart from lost documents
    rows_in_refused_table: int = 0

    @property
    def token(self) -> str:
        return f"c{self.idx:04d}_"


class Gen:
    def __init__(self, folder: Path, rng: random.Random, texts: list[tuple[str, str]]):
        self.folder, self.rng, self.texts = folder, rng, texts
        self.cases: list[Case] = []
        self._text_i = 0
        self._cache: dict[str, bytes] = {}

    def text(self) -> str:
        """A distinct real English document for each call (no two inputs share a text: ingest deduplicates)."""
        t = self.texts[self._text_i % len(self.texts)][1]
        self._text_i += 1
        return t

    def new(self, family: str, suffix: str, data: bytes | None, **kw) -> Case:
        idx = len(self.cases)
        name = kw.pop("name", None) or f"c{idx:04d}_{family}{suffix}"
        path = self.folder / name if isinstance(name, str) else Path(os.fsdecode(os.fsencode(self.folder) + b"/" + name))
        if data is not None:
            with open(os.fsencode(path), "wb") as fh:
                fh.write(data)
        case = Case(idx, family, path, **kw)
        self.cases.append(case)
        return case

    def rows(self, idx: int, n: int = 2) -> list[dict]:
        return [{"id": f"c{idx:04d}_g{j}", "text": self.text()} for j in range(n)]


def generate(folder: Path, n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    g = Gen(folder, rng, corpus_texts("state_department"))
    scale = n / 1000

    def k(base: int) -> int:
        return max(1, round(base * scale))

    # 1. empty and whitespace-only files of every suffix (compressed suffixes: gzip of nothing / of blanks)
    for s in SUFFIXES:
        data = gzip.compress(b"") if s.endswith(".gz") else b""
        g.new("empty", s, data, bad=1)
    blanks = [b" ", b"\n\n\n", b" \t \r\n  \n", b"\xc2\xa0\n", b"\n" * 5000]
    for i in range(k(48)):
        s, b = SUFFIXES[i % len(SUFFIXES)], blanks[i % len(blanks)]
        g.new("whitespace", s, gzip.compress(b) if s.endswith(".gz") else b, bad=1)
    # 2. binary junk of every suffix
    for i in range(k(96)):
        s = SUFFIXES[i % len(SUFFIXES)]
        g.new("binary", s, rng.randbytes(rng.choice([17, 512, 4096, 65536, 300_000])), bad=1)
    # 3. real files cut at random offsets
    for i in range(k(70)):
        whole = pdf_bytes(g.text())
        g.new("truncated_pdf", ".pdf", whole[:rng.randrange(1, len(whole))], either=True)
    for i in range(k(50)):
        whole = docx_bytes(g.text())
        g.new("truncated_docx", ".docx", whole[:rng.randrange(1, len(whole))], either=True)
    for i in range(k(40)):
        idx = len(g.cases)
        whole = parquet_bytes(g.rows(idx, 3))
        g.new("truncated_parquet", ".parquet", whole[:rng.randrange(1, len(whole))], either=True)
    for i in range(k(50)):
        idx = len(g.cases)
        rows = g.rows(idx, 3)
        s = ".jsonl.gz" if i % 2 else ".csv.gz"
        whole = gzip.compress(jsonl_bytes(rows) if s == ".jsonl.gz" else csv_bytes(rows))
        # a cut gzip may still yield its first rows before the stream breaks: rows plus at most one line
        g.new("truncated_gzip", s, whole[:rng.randrange(1, len(whole))], either=True)
    # 4. wrong extensions
    for i in range(k(60)):
        kind = i % 6
        if kind == 0:
            g.new("wrong_ext", ".docx", pdf_bytes(g.text()), either=True, note="PDF named .docx")
        elif kind == 1:
            g.new("wrong_ext", ".pdf", docx_bytes(g.text()), either=True, note="DOCX named .pdf")
        elif kind == 2:
            g.new("wrong_ext", ".txt", f"<html><body><p>{html.escape(g.text())}</p></body></html>".encode(),
                  good_file=1, note="HTML named .txt")
        elif kind == 3:
            g.new("wrong_ext", ".html", g.text().encode(), good_file=1, note="plain text named .html")
        elif kind == 4:
            idx = len(g.cases)
            g.new("wrong_ext", ".csv", parquet_bytes(g.rows(idx, 2)), either=True, note="Parquet named .csv")
        else:
            g.new("wrong_ext", ".txt", pdf_bytes(g.text()), either=True, note="PDF named .txt")
    # 5. encodings: GOOD inputs
    encodings = ["latin-1", "cp1252", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16", "utf-8-sig"]
    for i in range(k(80)):
        enc = encodings[i % len(encodings)]
        text = g.text().replace("'", "\u2019" if enc != "latin-1" else "'") + " Caf\u00e9 r\u00e9sum\u00e9 na\u00efve."
        if enc in ("latin-1",):
            text = text.encode("latin-1", "replace").decode("latin-1")
        s = (".txt", ".md", ".html")[i % 3]
        body = f"<html><body><p>{html.escape(text)}</p></body></html>" if s == ".html" else text
        g.new(f"encoding_{enc}", s, body.encode(enc, "replace"), good_file=1, note="must be read")
    # 6. NUL bytes: in plain files (binary: refused, or read) and in table rows (refused)
    for i in range(k(40)):
        t = g.text()
        if i % 2 == 0:
            cut = rng.randrange(len(t))
            g.new("nul_bytes", ".txt", (t[:cut] + "\x00" * rng.choice([1, 3, 200]) + t[cut:]).encode(), either=True)
        else:
            idx = len(g.cases)
            rows = g.rows(idx, 2) + [{"id": f"c{idx:04d}_b0", "text": "Peace talks \x00 resumed " + g.text()}]
            data = jsonl_bytes(rows) if i % 4 == 1 else csv_bytes(rows)
            g.new("nul_bytes", ".jsonl" if i % 4 == 1 else ".csv", data, good_ids=[r["id"] for r in rows[:2]],
                  bad=1)
    # 7. lone surrogates in JSONL
    for i in range(k(40)):
        idx = len(g.cases)
        good = g.rows(idx, 2)
        esc = rng.choice(["\\ud800", "\\udfff", "\\udc80 x \\ud83d"])
        bad_line = '{"id": "c%04d_b0", "text": "Trade %s mission ' % (idx, esc) + json.dumps(g.text())[1:-1] + '"}\n'
        data = jsonl_bytes(good[:1]) + bad_line.encode() + jsonl_bytes(good[1:])
        g.new("lone_surrogate", ".jsonl", data, good_ids=[r["id"] for r in good], bad=1)
    # 8. deeply nested JSON (a line of a table; a .json document)
    for i in range(k(40)):
        idx = len(g.cases)
        depth = rng.choice([150, 1000, 10_000, 100_000])
        good = g.rows(idx, 2)
        nested = '{"id": "c%04d_b0", "text": "x", "meta": ' % idx + "[" * depth + "]" * depth + "}\n"
        if i % 4 == 3:
            g.new("deep_json", ".json", ("[" * depth + "]" * depth).encode(), bad=1)
        else:
            data = jsonl_bytes(good[:1]) + nested.encode() + jsonl_bytes(good[1:])
            g.new("deep_json", ".jsonl", data, good_ids=[r["id"] for r in good], bad=1)
    # 9. bad-typed rows in tables
    typed = [("number", 12345), ("float", 3.25), ("boolean", True), ("null", None), ("nan", float("nan")),
             ("list", ["a", "b"]), ("object", {"a": 1}), ("empty", "")]
    for i in range(k(80)):
        idx = len(g.cases)
        label, value = typed[i % len(typed)]
        good = g.rows(idx, 2)
        fmt = (".jsonl", ".csv", ".parquet", ".json")[(i // len(typed)) % 4]
        bad_row = {"id": f"c{idx:04d}_b0", "text": value}
        if fmt == ".jsonl":
            data = ("".join(json.dumps(r) + "\n" for r in [good[0], bad_row, good[1]])).encode()
        elif fmt == ".json":
            data = json.dumps([good[0], bad_row, good[1]]).encode()
        elif fmt == ".csv":
            if label in ("list", "object"):
                value = json.dumps(value)
            cell = {"nan": "NaN", "null": ""}.get(label, str(value))
            data = csv_bytes([good[0], {"id": bad_row["id"], "text": cell}, good[1]])
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            buf = io.BytesIO()
            if label in ("number", "float", "boolean", "list", "object"):
                # a column has one type: the whole text column of the bad type; the file's rows are all refused
                vals = {"number": [1, 2, 3], "float": [1.5, 2.5, 3.5], "boolean": [True, False, True],
                        "list": [["a"], ["b"], ["c"]], "object": [{"a": 1}, {"a": 2}, {"a": 3}]}[label]
                ids = [f"c{idx:04d}_b{j}" for j in range(3)]
                pq.write_table(pa.table({"id": ids, "text": vals}), buf)
                g.new(f"typed_rows_{label}", fmt, buf.getvalue(), bad=3)
                continue
            if label == "nan":
                import pandas as pd
                frame = pd.DataFrame({"id": [good[0]["id"], bad_row["id"], good[1]["id"]],
                                      "text": [good[0]["text"], float("nan"), good[1]["text"]]})
                frame.to_parquet(buf)
            elif label == "null":
                pq.write_table(pa.table({"id": [good[0]["id"], bad_row["id"], good[1]["id"]],
                                         "text": [good[0]["text"], None, good[1]["text"]]}), buf)
            else:
                pq.write_table(pa.table({"id": [good[0]["id"], bad_row["id"], good[1]["id"]],
                                         "text": [good[0]["text"], "", good[1]["text"]]}), buf)
            data = buf.getvalue()
        g.new(f"typed_rows_{label}", fmt, data, good_ids=[r["id"] for r in good], bad=1)
    # Parquet bytes column (binary type): every row refused
    for i in range(k(8)):
        import pyarrow as pa
        import pyarrow.parquet as pq
        idx = len(g.cases)
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [f"c{idx:04d}_b{j}" for j in range(2)],
                                 "text": [g.text().encode(), g.text().encode()]}), buf)
        g.new("typed_rows_bytes", ".parquet", buf.getvalue(), good_ids=[f"c{idx:04d}_b{j}" for j in range(2)],
              note="UTF-8 bytes: decoded, read as text")
    # 10. malformed tables
    for i in range(k(60)):
        idx = len(g.cases)
        kind = i % 10
        if kind == 0:
            g.new("malformed_table", ".jsonl", b'{"id": "c%04d_u", "text": "unterminated\n{]\n' % idx, either=True)
        elif kind == 1:
            g.new("malformed_table", ".json", b'{"id": "c%04d_o", "text": "an object, not a list"}' % idx, either=True)
        elif kind == 2:
            g.new("malformed_table", ".json", b"[1, 2, 3]", bad=1)
        elif kind == 3:
            g.new("malformed_table", ".csv", b"id,body\n1,no text column here\n", bad=1)
        elif kind == 4:
            good = g.rows(idx, 2)
            data = csv_bytes(good) + b'c%04d_b0,"an unbalanced quote\n' % idx
            g.new("malformed_table", ".csv", data, either=True, note="unbalanced quote at the end")
        elif kind == 5:
            g.new("malformed_table", ".parquet", parquet_bytes([{"id": "a", "body": "no text column"}]), bad=1)
        elif kind == 6:
            good = g.rows(idx, 2)
            data = jsonl_bytes(good[:1]) + b"this line is not JSON\n" + jsonl_bytes(good[1:])
            g.new("malformed_table", ".jsonl", data, bad=1, good_ids=[r["id"] for r in good],
                  note="one line not JSON: that line refused, the rows around it read")
        elif kind == 7:
            good = g.rows(idx, 2)
            data = jsonl_bytes(good[:1]) + b'["a", "list", "line"]\n' + jsonl_bytes(good[1:])
            g.new("malformed_table", ".jsonl", data, bad=1, good_ids=[r["id"] for r in good],
                  note="one line a JSON list: that line refused, the rows around it read")
        elif kind == 8:
            g.new("malformed_table", ".csv", b"id,text\n" + b"c%04d_r,b,c,d,e\n" % idx * 3, either=True,
                  note="ragged")
        else:
            good = g.rows(idx, 2)
            data = jsonl_bytes(good[:1]) + b"\n" * (limits.MAX_BLANK_LINES + 10) + jsonl_bytes(good[1:])
            g.new("malformed_table", ".jsonl", data, bad=1, rows_in_refused_table=2,
                  note="more blank lines in a row than MAX_BLANK_LINES: refused whole (documented bound)")
    # 11. HTML: many tags, deep nesting, a huge text node
    for i in range(k(24)):
        kind = i % 4
        t = g.text()
        if kind == 0:  # under the tag bound: a good page
            body = "<span></span>" * 150_000
            g.new("html_many_tags", ".html", f"<html><body><p>{html.escape(t)}</p>{body}</body></html>".encode(),
                  good_file=1, note="150,000 tags (bound 200,000)")
        elif kind == 1:  # over the bound: refused
            body = "<b></b>" * (limits.MAX_HTML_TAGS + 50_000)
            g.new("html_many_tags", ".html", f"<html><body><p>{html.escape(t)}</p>{body}</body></html>".encode(),
                  bad=1, note="over MAX_HTML_TAGS")
        elif kind == 2:
            depth = rng.choice([300, 2000, 20_000])
            g.new("html_deep", ".html", ("<div>" * depth + html.escape(t) + "</div>" * depth).encode(),
                  good_file=1, note="deep nesting: linear pass")
        else:
            g.new("html_huge_text", ".htm", (f"<html><body><p>{html.escape(t)} " + "word " * 2_200_000
                                             + "</p></body></html>").encode(), either=True,
                  note="an 11 MB text node")
    # 12. huge single lines
    for i in range(k(8)):
        kind = i % 4
        if kind == 0:
            g.new("huge_line", ".txt", (g.text().replace("\n", " ") + " " + "diplomacy " * 600_000).encode(),
                  good_file=1, note="a 6 MB line")
        elif kind == 1:
            g.new("huge_line", ".txt", b"a" * (limits.MAX_FILE_BYTES + 1024), bad=1, note="over 50 MiB")
        elif kind == 2:
            idx = len(g.cases)
            good = g.rows(idx, 2)
            line = b'{"id": "c%04d_b0", "text": "' % idx + b"x" * (limits.MAX_FILE_BYTES + 10) + b'"}\n'
            g.new("huge_line", ".jsonl", jsonl_bytes(good[:1]) + line + jsonl_bytes(good[1:]),
                  good_ids=[r["id"] for r in good], bad=1, note="a JSONL line over 50 MiB")
        else:
            g.new("huge_line", ".md", ("# " + g.text().replace("\n", " ") + " ").encode() * 3 + b"z" * 2_000_000,
                  either=True, note="a 2 MB word")
    # 13. compression bombs (a few MB compressed, far past MAX_DECOMPRESSED_BYTES)
    size = limits.MAX_DECOMPRESSED_BYTES + 64 * 1024 * 1024
    bomb_kinds = [("zeros", b"\x00"), ("newlines", b"\n"), ("one_line", b"a"), ("spaces", b" ")]
    bombs: dict[str, bytes] = {}
    for name, unit in bomb_kinds:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunk = unit * (8 * 1024 * 1024)
        parts = [comp.compress(chunk) for _ in range(size // len(chunk))]
        bombs[name] = b"".join(parts) + comp.flush()
    for i in range(k(12)):
        name, _ = bomb_kinds[i % 4]
        g.new(f"gzip_bomb_{name}", (".jsonl.gz", ".csv.gz")[(i // 4) % 2], bombs[name], bad=1)
    # DOCX zip bomb and entity bomb; PDF flate bomb
    for i in range(k(4)):
        g.new("docx_bomb", ".docx", docx_zip_bomb(i % 2), either=True)
    for i in range(k(4)):
        g.new("pdf_flate_bomb", ".pdf", pdf_flate_bomb(g.text()), either=True)
    # 14. file names that are not UTF-8 (refused by design: "rename the file")
    for i in range(k(20)):
        idx = len(g.cases)
        name = b"c%04d_nonutf8_" % idx + rng.choice([b"\xff", b"\xe9t\xe9", b"\x80\x81"]) + b".txt"
        g.new("name_not_utf8", ".txt", g.text().encode(), name=name, bad=1)
    # 15. links out of a folder (folder-only), FIFOs and links to devices
    outside = folder / "outside_good.txt"
    outside.write_text(corpus_texts("ungdc_sample", 600, 5000)[0][1])
    targets = ["/etc/passwd", str(outside), "/nonexistent/target.txt", "/dev/zero"]
    for i in range(k(20)):
        case = g.new("link_out_of_folder", ".txt", None, bad=1, folder_only=True)
        os.symlink(targets[i % len(targets)], case.path)
    for i in range(k(12)):
        s = (".txt", ".pdf", ".jsonl", ".csv.gz")[i % 4]
        case = g.new("fifo", s, None, bad=1)
        os.mkfifo(case.path)
    for i in range(k(8)):
        s = (".txt", ".jsonl", ".pdf", ".html")[i % 4]
        case = g.new("link_to_device", s, None, bad=1)
        os.symlink(("/dev/zero", "/dev/urandom")[i % 2], case.path)
    # 16. random mutations of good small files (bit flips): open outcome
    for i in range(max(0, n - len(g.cases))):
        s = rng.choice([".pdf", ".docx", ".parquet", ".jsonl.gz"])
        t = g.text()
        idx = len(g.cases)
        whole = {".pdf": lambda: pdf_bytes(t), ".docx": lambda: docx_bytes(t),
                 ".parquet": lambda: parquet_bytes([{"id": f"c{idx:04d}_m0", "text": t}]),
                 ".jsonl.gz": lambda: gzip.compress(jsonl_bytes([{"id": f"c{idx:04d}_m0", "text": t}]))}[s]()
        b = bytearray(whole)
        for _ in range(rng.choice([1, 4, 32])):
            b[rng.randrange(len(b))] = rng.randrange(256)
        g.new("bit_flips", s, bytes(b), either=True)
    return g.cases


def docx_zip_bomb(kind: int) -> bytes:
    """A DOCX whose document.xml inflates to ~600 MB of one text run (kind 0), or an XML entity bomb (kind 1)."""
    base = docx_bytes("A short cover paragraph about diplomacy.")
    src = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                if kind == 0:
                    head, _, tail = data.partition(b"A short cover paragraph about diplomacy.")
                    with z.open(item.filename, "w", force_zip64=True) as fh:
                        fh.write(head)
                        chunk = b"a" * (8 * 1024 * 1024)
                        for _ in range(75):
                            fh.write(chunk)
                        fh.write(tail)
                    continue
                lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollol">'
                       + b"".join(b'<!ENTITY lol%d "%s">' % (j, (b"&lol%d;" % (j - 1) if j > 1 else b"&lol;") * 10)
                                  for j in range(1, 10)) + b"]>")
                data = lol + data.split(b"?>", 1)[1].replace(b"A short cover paragraph about diplomacy.",
                                                             b"&lol9;")
            z.writestr(item, data)
    return out.getvalue()


def pdf_flate_bomb(text: str) -> bytes:
    """A one-page PDF whose content stream inflates to ~600 MB (one text line, then spaces)."""
    words = " ".join(text.split()[:40]).replace("(", "").replace(")", "").replace("\\", "")
    comp = zlib.compressobj(9)
    content = comp.compress(f"BT /F1 12 Tf 40 700 Td ({words}) Tj ET\n".encode())
    chunk = b" " * (8 * 1024 * 1024)
    content += b"".join(comp.compress(chunk) for _ in range(75)) + comp.flush()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


# -- running commands --------------------------------------------------------------------------------------------
@dataclass
class Run:
    kind: str            # classify | ingest
    context: str         # alone | group | folder
    cases: list[Case]
    goods: list[str]     # tokens of good companion files
    rc: int | None = None
    elapsed: float = 0.0
    rss: int = 0
    timed_out: bool = False
    traceback: bool = False
    stderr: str = ""
    ids: list[str] = field(default_factory=list)


def _limit_as() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_CAP, AS_CAP))
    os.setsid()


def run_child(args: list, env: dict, cwd: Path, stdin_bytes: bytes | None = None,
              timeout: float = TIMEOUT_S) -> tuple[int | None, float, int, bool, bytes, bytes]:
    """(status, seconds, peak RSS bytes, timed out, stdout, stderr): the child's own ru_maxrss via os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if stdin_bytes is not None:
            inp.write(stdin_bytes)
            inp.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdin=inp if stdin_bytes is not None else subprocess.DEVNULL, stdout=out,
                                stderr=err, env=env, cwd=cwd, preexec_fn=_limit_as)
        timed_out, status, usage = False, None, None
        while True:
            pid, wstatus, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(wstatus)
                break
            if time.perf_counter() - start > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, wstatus, usage = os.wait4(proc.pid, 0)
                status = os.waitstatus_to_exitcode(wstatus)
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        proc.returncode = status
        out.seek(0)
        err.seek(0)
        return status, elapsed, usage.ru_maxrss * 1024, timed_out, out.read(), err.read()


class Runner:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.models = tmp / "models"
        self.models.mkdir(exist_ok=True)
        self.n = 0

    def env(self, home: Path) -> dict:
        env = dict(os.environ)
        env.update(CDPD_HOME=str(home), CDPD_MODELS=str(self.models), CDPD_LOG=str(self.tmp / "cdpd.log"),
                   TMPDIR=str(self.tmp / "childtmp"), PYTHONPATH=str(ROOT))
        (self.tmp / "childtmp").mkdir(exist_ok=True)
        return env

    def go(self, run: Run, paths: list) -> Run:
        self.n += 1
        home = self.tmp / f"ws{self.n}"
        cmd = [PY, "-m", "nlp", run.kind, "-q"] + (["--model", "lexicon"] if run.kind == "classify" else [])
        cmd += [os.fsencode(p) for p in paths]
        status, elapsed, rss, timed_out, out, err = run_child(cmd, self.env(home), ROOT)
        run.rc, run.elapsed, run.rss, run.timed_out = status, elapsed, rss, timed_out
        run.stderr = err.decode("utf-8", "backslashreplace")
        run.traceback = "Traceback" in run.stderr
        if run.kind == "classify":
            for line in out.decode("utf-8", "replace").splitlines():
                try:
                    run.ids.append(str(json.loads(line)["id"]))
                except (ValueError, KeyError, TypeError):
                    pass
        else:
            db = home / "cdpd.sqlite"
            if db.exists():
                con = sqlite3.connect(db)
                try:
                    run.ids = [r[0] for r in con.execute("SELECT id FROM documents")]
                finally:
                    con.close()
        shutil.rmtree(home, ignore_errors=True)
        return run


# -- judging runs ------------------------------------------------------------------------------------------------
REFUSAL = re.compile(r"^skipped (.+?): \S")
SUMMARY = re.compile(r"^(classified \d|added \d|run `cdpd run`|cdpd (classify|ingest): error: no document)")


@dataclass
class Verdict:
    crash: bool = False
    over_time: bool = False
    over_mem: bool = False
    goods_lost: list[str] = field(default_factory=list)      # tokens / ids of good documents without a row
    not_one_line: list[str] = field(default_factory=list)    # case tokens with 0 (and no row) or too many lines
    no_reason: list[str] = field(default_factory=list)       # lines naming a case without the "NAME: reason" form
    row_only: int = 0                                        # refusal lines naming a row id but not the file
    bad_accepted: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)           # stderr lines that are neither refusals nor summaries


def judge(run: Run) -> Verdict:
    v = Verdict()
    v.crash = run.traceback or run.timed_out or run.rc not in (0, 1, 2)
    v.over_time, v.over_mem = run.elapsed > TIMEOUT_S or run.timed_out, run.rss > RSS_GOAL
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    claimed = set()
    for tok in run.goods:
        if not any(tok in i for i in run.ids):
            v.goods_lost.append(tok)
    for case in run.cases:
        tok = case.token
        mine = [(j, ln) for j, ln in enumerate(lines) if tok in ln and not ln.startswith("flagged ")]
        claimed.update(j for j, _ in mine)
        rows = [i for i in run.ids if tok in i]
        for gid in case.good_ids:
            if gid not in rows:
                v.goods_lost.append(gid)
        if case.good_file and not rows:
            v.goods_lost.append(tok)
        for _, ln in mine:
            if not REFUSAL.match(ln):
                v.no_reason.append(tok)
            elif tok + case.family not in ln and not case.family.startswith("name_not_utf8") and \
                    os.path.basename(os.fsdecode(case.path))[:6] not in ln.split(":")[0].replace(tok, ""):
                v.row_only += 1
        extra_rows = len(rows) - len(case.good_ids) - case.good_file
        if case.either:
            if len(mine) > max(1, case.bad) or (not mine and not rows):
                v.not_one_line.append(tok)
        else:
            if extra_rows > 0 and case.bad:
                v.bad_accepted.append(tok)
            if len(mine) > case.bad or (len(mine) < case.bad and len(mine) + max(0, extra_rows) < case.bad):
                v.not_one_line.append(tok)
    for j, ln in enumerate(lines):
        if j not in claimed and not SUMMARY.match(ln) and not ln.startswith("flagged "):
            v.noise.append(ln[:200])
    return v


def feed(cases: list[Case], goods: list[tuple[str, Path]], tmp: Path, args, rng: random.Random) -> list[tuple[Run, Verdict]]:
    runner = Runner(tmp)
    results = []
    total_start = time.perf_counter()

    def do(run: Run, paths: list) -> None:
        runner.go(run, paths)
        v = judge(run)
        results.append((run, v))
        if v.crash or v.goods_lost or v.over_time or v.over_mem:
            log(f"  ! {run.kind} {run.context} {[c.token + c.family for c in run.cases][:4]} rc={run.rc} "
                f"{run.elapsed:.1f}s lost={v.goods_lost[:4]} tb={run.traceback} timeout={run.timed_out}")
        if len(results) % 50 == 0:
            log(f"  {len(results)} runs, {time.perf_counter() - total_start:.0f} s")

    # alone
    for case in cases:
        if case.folder_only:
            f = tmp / "alone_folders" / case.token
            f.mkdir(parents=True)
            os.symlink(os.readlink(case.path), f / case.path.name)
            do(Run("ingest", "alone", [case], []), [f])
            if case.idx % args.classify_alone_every == 0:
                do(Run("classify", "alone", [case], []), [f])
            continue
        do(Run("ingest", "alone", [case], []), [case.path])
        if case.idx % args.classify_alone_every == 0:
            do(Run("classify", "alone", [case], []), [case.path])
    # between good files
    cli = [c for c in cases if not c.folder_only]
    order = cli[:]
    rng.shuffle(order)
    for start in range(0, len(order), args.group):
        group = order[start:start + args.group]
        picked = rng.sample(goods, len(group) + 1)
        paths, toks = [picked[0][1]], [picked[0][0]]
        for case, (tok, gp) in zip(group, picked[1:]):
            paths += [case.path, gp]
            toks.append(tok)
        for kind in ("classify", "ingest"):
            do(Run(kind, "group", group, toks), paths)
    # folders
    n_folders = max(2, round(len(cases) / 40))
    eligible = cases[:]
    rng.shuffle(eligible)
    per = max(1, min(12, len(eligible) // n_folders))
    for f_i in range(n_folders):
        chosen = eligible[f_i * per:(f_i + 1) * per] or rng.sample(eligible, per)
        folder = tmp / "folders" / f"folder{f_i:02d}"
        folder.mkdir(parents=True)
        for case in chosen:
            src = os.fsencode(case.path)
            dst = os.fsencode(folder) + b"/" + os.path.basename(src)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            elif not os.path.isfile(src):
                os.mkfifo(dst)
            else:
                os.link(src, dst)
        picked = rng.sample(goods, 3)
        for tok, gp in picked:
            os.link(gp, folder / gp.name)
        for kind in ("classify", "ingest"):
            do(Run(kind, "folder", chosen, [t for t, _ in picked]), [folder])
    return results


def make_goods(folder: Path, count: int) -> list[tuple[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts("white_house", 800, 4000)
    goods = []
    for i in range(count):
        title, text = texts[i]
        tok = f"g{i:03d}_"
        kind = i % 6
        if kind == 4:
            p = folder / f"{tok}good.pdf"
            p.write_bytes(pdf_bytes(text))
        elif kind == 5:
            p = folder / f"{tok}good.docx"
            p.write_bytes(docx_bytes(text))
        else:
            p = folder / f"{tok}good.txt"
            p.write_text(text, encoding="utf-8")
        goods.append((tok, p))
    return goods


# -- model folders -----------------------------------------------------------------------------------------------
def model_probes(tmp: Path, good: Path) -> list[dict]:
    from nlp.codebook import load_codebook
    from nlp.models import save_model
    from nlp.taggers import get_tagger_class

    reg = tmp / "registry"
    reg.mkdir()
    marker = tmp / "MARKER_CODE_RAN"
    cb = load_codebook(None)
    info = save_model(get_tagger_class("lexicon")(cb).fit([], {}), "lexbase", folder=reg)
    base = json.loads((info.path / "meta.json").read_text())
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    pickle_payload = (b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")

    def folder(name: str, tagger: str, version: str = "v1", meta_name: str | None = None) -> Path:
        p = reg / name / version
        p.mkdir(parents=True)
        meta = dict(base, name=meta_name or name, version=version, tagger=tagger, params={})
        (p / "meta.json").write_text(json.dumps(meta))
        return p

    probes = []
    p = folder("tf_auto_map", "transformer")
    (p / "config.json").write_text(json.dumps({"model_type": "bert", "auto_map": {"AutoModel": "evil.EvilModel",
                                                                                   "AutoConfig": "evil.EvilConfig"}}))
    (p / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["evil.Tok", None]}}))
    (p / "evil.py").write_text(evil)
    (p / "transformer.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    probes.append({"name": "tf_auto_map", "what": "transformer config.json + tokenizer_config.json with auto_map, "
                   "evil.py beside"})
    p = folder("tf_py_file", "transformer")
    (p / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (p / "modeling_evil.py").write_text(evil)
    probes.append({"name": "tf_py_file", "what": "transformer folder holding a .py file (no auto_map)"})
    p = folder("state_dev_zero", "linear")
    os.symlink("/dev/zero", p / "linear.safetensors")
    probes.append({"name": "state_dev_zero", "what": "linear.safetensors -> /dev/zero"})
    p = folder("pickle_safetensors", "linear")
    (p / "linear.safetensors").write_bytes(pickle_payload)
    probes.append({"name": "pickle_safetensors", "what": "a pickle (os.system) named linear.safetensors"})
    p = folder("pickle_skops", "linear")
    (p / "linear.skops").write_bytes(pickle_payload)
    probes.append({"name": "pickle_skops", "what": "a pickle named linear.skops (legacy state path)"})
    p = folder("pickle_embedding", "embedding")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("schema.json", json.dumps({"__class__": "system", "__module__": "os", "__loader__": "ObjectNode",
                                              "content": {"__class__": "str", "__module__": "builtins",
                                                          "__loader__": "none", "content": f"touch {marker}"},
                                              "protocol": 2, "_skops_version": "0.9"}))
    (p / "embedding.skops").write_bytes(zbuf.getvalue())
    probes.append({"name": "pickle_embedding", "what": "embedding.skops naming os.system as its type"})
    p = folder("dotdot_name", "lexicon", meta_name="../../x")
    probes.append({"name": "dotdot_name", "what": "meta.json with name '../../x'"})
    elsewhere = tmp / "elsewhere" / "v1"
    elsewhere.mkdir(parents=True)
    (elsewhere / "meta.json").write_text(json.dumps(dict(base, name="linked_out", version="v1")))
    (reg / "linked_out").mkdir()
    os.symlink(elsewhere, reg / "linked_out" / "v1")
    probes.append({"name": "linked_out", "what": "model version folder linked out of the registry"})
    p = reg / "meta_dev_zero" / "v1"
    p.mkdir(parents=True)
    os.symlink("/dev/zero", p / "meta.json")
    probes.append({"name": "meta_dev_zero", "what": "meta.json -> /dev/zero"})
    probes.append({"name": "../../x", "what": "--model ../../x"})
    probes.append({"name": None, "what": "ACTIVE file naming ../../x, classify without --model", "active": "../../x"})
    probes.append({"name": None, "what": "ACTIVE -> /dev/zero, classify without --model", "active_link": "/dev/zero"})
    env = dict(os.environ, CDPD_MODELS=str(reg), CDPD_HOME=str(tmp / "mws"), CDPD_LOG=str(tmp / "m.log"),
               PYTHONPATH=str(ROOT))
    for probe in probes:
        active = reg / "ACTIVE"
        if active.exists() or active.is_symlink():
            active.unlink()
        if probe.get("active"):
            active.write_text(probe["active"] + "\n")
        if probe.get("active_link"):
            os.symlink(probe["active_link"], active)
        cmd = [PY, "-m", "nlp", "classify", "-q"] + (["--model", probe["name"]] if probe["name"] else []) + [str(good)]
        status, elapsed, rss, timed_out, out, err = run_child(cmd, env, ROOT, stdin_bytes=b"y\ny\ny\n")
        text = err.decode("utf-8", "replace")
        # a one-line warning before the refusal ("cdpd: warning: ACTIVE names ..., ignored") is not the refusal
        warned = [ln for ln in text.splitlines() if ln.startswith("cdpd: warning: ")]
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("cdpd: warning: ")]
        probe.update(rc=status, elapsed=elapsed, rss=rss, timed_out=timed_out, traceback="Traceback" in text,
                     lines=len(lines), warnings=len(warned), first=(lines[0][:160] if lines else ""),
                     code_ran=marker.exists(),
                     outputs=len(out.splitlines()))
        if marker.exists():
            marker.unlink()
    return probes


# -- markup ------------------------------------------------------------------------------------------------------
HOSTILE = [
    "![tracker](https://evil.example/pixel.png)",
    "[click me](https://evil.example/phish)",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<b>bold</b> <iframe src=https://evil.example></iframe>",
    "https://ok.example/a) ![x](https://evil.example/y.png",
    "[![nested](https://evil.example/i.png)](https://evil.example)",
    "<a href=\"javascript:alert(1)\">link</a>",
    "\n\n<img src=https://evil.example/after-blank-line.png>\n\n![md](https://evil.example/md.png)",
    "<svg onload=alert(1)>",
    "&lt;script&gt; entity &#60;img src=x&#62;",
    "[ref]: https://evil.example/ref\n\n[ref] [ref][]",
]


def markup_probe() -> dict:
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    from nlp.app.common import highlight, md_text, plot_text
    from nlp.display import display_text

    md = MarkdownIt("commonmark", {"html": True})

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    def tags(s: str) -> list[str]:
        p = Tags()
        p.feed(s)
        p.close()
        return p.tags

    live = defaultdict(list)
    checks = 0
    for h in HOSTILE:
        for variant in (h, f"Embassy statement {h} on trade", h.replace("evil", "remote")):
            checks += 1
            rendered = md.render(md_text(variant))
            bad = [t for t in tags(rendered) if t not in ("p",)]
            if bad:
                live["md_text (title, issuer, url, id as Markdown)"].append((variant, bad))
            text = f"The ambassador spoke. {variant} The council agreed to a ceasefire."
            out = highlight(text, {"advocacy": [variant], "peacebuilding": ["The council agreed to a ceasefire."]})
            bad = [t for t in tags(out) if t not in ("div", "mark", "p", "em")]
            # st.markdown(unsafe_allow_html) renders the HTML block as Markdown too: nothing may become Markdown
            md_bad = [t for t in tags(md.render(out)) if t not in ("div", "mark", "p", "em")]
            if bad or md_bad:
                live["highlight (document text with evidence)"].append((variant, bad + md_bad))
            shown = highlight(display_text(text, variant), [])
            bad = [t for t in tags(md.render(shown)) if t not in ("div", "mark", "p", "em")]
            if bad:
                live["display_text + highlight (Annotate passage)"].append((variant, bad))
            if "<" in plot_text(variant):
                live["plot_text (chart names)"].append((variant, ["<"]))
    return {"checks": checks, "renderers": 4, "live": {k: v for k, v in live.items()}}


# -- kill -9 -----------------------------------------------------------------------------------------------------
def check_workspace(db: Path) -> list[str]:
    """Problems found in a workspace with a fresh connection (empty list: consistent)."""
    problems = []
    con = sqlite3.connect(db)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchall()
        if ok != [("ok",)]:
            problems.append(f"integrity_check: {ok[:3]}")
        try:
            con.execute("INSERT INTO documents_fts(documents_fts) VALUES('integrity-check')")
        except sqlite3.DatabaseError as exc:
            problems.append(f"fts: {exc}")
        orphans = {
            "passages": "SELECT count(*) FROM passages WHERE doc_id NOT IN (SELECT doc_id FROM documents)",
            "predictions": "SELECT count(*) FROM predictions WHERE doc_id NOT IN (SELECT doc_id FROM documents)",
            "classified": "SELECT count(*) FROM classified WHERE doc_id NOT IN (SELECT doc_id FROM documents)",
            "passage_labels": "SELECT count(*) FROM passage_labels WHERE passage_id NOT IN "
                              "(SELECT passage_id FROM passages)",
            "fts rows": "SELECT (SELECT count(*) FROM documents_fts) - (SELECT count(*) FROM documents)",
        }
        for name, sql in orphans.items():
            n = con.execute(sql).fetchone()[0]
            if n:
                problems.append(f"orphan {name}: {n}")
        key = "d.source, d.issuer_type, d.issuer, d.country, d.city, substr(d.date, 1, 7)"
        recount_labels = sorted(con.execute(
            f"SELECT p.model, p.axis, p.label, {key}, count(*) FROM predictions p JOIN documents d "
            f"ON d.doc_id = p.doc_id WHERE p.selected = 1 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9").fetchall())
        stored = sorted(con.execute("SELECT model, axis, label, source, issuer_type, issuer, country, city, month, "
                                    "documents FROM label_counts").fetchall())
        if recount_labels != stored:
            problems.append(f"label_counts differ from a recount ({len(stored)} vs {len(recount_labels)} rows)")
        recount_groups = sorted(con.execute(
            f"SELECT c.model, {key}, count(*) FROM classified c JOIN documents d ON d.doc_id = c.doc_id "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7").fetchall())
        stored = sorted(con.execute("SELECT model, source, issuer_type, issuer, country, city, month, documents "
                                    "FROM group_counts").fetchall())
        if recount_groups != stored:
            problems.append("group_counts differ from a recount")
        from nlp.workspace import ROLLUP_TABLES
        for table in ROLLUP_TABLES:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] != "documents"]
            fine = "label_counts" if table.startswith("labels") else "group_counts"
            a = sorted(con.execute(f"SELECT {', '.join(cols)}, documents FROM {table}").fetchall())
            b = sorted(con.execute(f"SELECT {', '.join(cols)}, sum(documents) FROM {fine} "
                                   f"GROUP BY {', '.join(cols)}").fetchall())
            if a != b:
                problems.append(f"{table} differs from {fine}'s sums")
    finally:
        con.close()
    return problems


def snapshot(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {"documents": sorted(con.execute("SELECT id, source, issuer, issuer_type, country, city, date, title, "
                                                "url, text_key, lang, n_words FROM documents").fetchall()),
                "passages": con.execute("SELECT count(*) FROM passages").fetchone()[0],
                "predictions": sorted(con.execute("SELECT d.id, p.label, p.selected, round(p.score, 6) FROM "
                                                  "predictions p JOIN documents d USING (doc_id)").fetchall()),
                "label_counts": sorted(con.execute("SELECT * FROM label_counts").fetchall())}
    finally:
        con.close()


def kill_ingest(tmp: Path, trials: int, n_docs: int, rng: random.Random) -> dict:
    import pandas as pd

    frames = []
    for name in ("state_department", "white_house", "nyc_council"):
        frames.append(pd.read_parquet(ROOT / "corpora" / f"{name}.parquet"))
    table = pd.concat(frames, ignore_index=True).head(n_docs)
    src = tmp / "kill_table.parquet"
    table.to_parquet(src)
    env_base = dict(os.environ, CDPD_MODELS=str(tmp / "kmodels"), CDPD_LOG=str(tmp / "k.log"), PYTHONPATH=str(ROOT))
    cmd = [PY, "-m", "nlp", "ingest", "-q", "--classify", "--model", "lexicon", str(src)]
    ref_home = tmp / "kill_ref"
    t0 = time.perf_counter()
    ref = subprocess.run(cmd, env=dict(env_base, CDPD_HOME=str(ref_home)), capture_output=True, cwd=ROOT)
    ref_s = time.perf_counter() - t0
    ref_snap = snapshot(ref_home / "cdpd.sqlite")
    out = {"docs": n_docs, "stored": len(ref_snap["documents"]), "ref_s": ref_s, "ref_rc": ref.returncode,
           "trials": 0, "killed": 0, "inconsistent_after_kill": [], "rerun_failed": [], "rerun_differs": [],
           "inconsistent_after_rerun": [], "leftovers": 0, "docs_at_kill": []}
    for t in range(trials):
        home = tmp / f"kill_ws{t}"
        childtmp = tmp / f"kill_tmp{t}"
        childtmp.mkdir()
        env = dict(env_base, CDPD_HOME=str(home), TMPDIR=str(childtmp))
        delay = rng.uniform(0.2, ref_s)
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            out["killed"] += 1
        out["trials"] += 1
        db = home / "cdpd.sqlite"
        if db.exists():
            probs = check_workspace(db)
            if probs:
                out["inconsistent_after_kill"].append((t, probs))
            con = sqlite3.connect(db)
            out["docs_at_kill"].append(con.execute("SELECT count(*) FROM documents").fetchone()[0])
            con.close()
        else:
            out["docs_at_kill"].append(0)
        rerun = subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT, timeout=600)
        if rerun.returncode not in (0, 1) or b"Traceback" in rerun.stderr:
            out["rerun_failed"].append((t, rerun.returncode, rerun.stderr.decode("utf-8", "replace")[-300:]))
            continue
        probs = check_workspace(db)
        if probs:
            out["inconsistent_after_rerun"].append((t, probs))
        snap = snapshot(db)
        if snap != ref_snap:
            diff = [k for k in snap if snap[k] != ref_snap[k]]
            out["rerun_differs"].append((t, diff))
        out["leftovers"] += sum(1 for p in childtmp.iterdir() if p.name.startswith("cdpd-ingest-"))
        shutil.rmtree(home, ignore_errors=True)
        log(f"  ingest kill trial {t + 1}/{trials}: delay {delay:.1f}s, {out['docs_at_kill'][-1]} docs at kill")
    return out


ANNOTATOR_CHILD = r"""
import sys, random
from nlp.workspace import Workspace
home, trial = sys.argv[1], int(sys.argv[2])
rng = random.Random(trial)
labels = ["advocacy", "peacebuilding", "exchange", "representation_protocol"]
with Workspace(home) as ws:
    print("ready", flush=True)
    i = 0
    while True:
        text = f"Trial {trial} save {i}: the delegation discussed {rng.random()} with the council."
        aid, new = ws.insert_annotation(text, {"functions": [rng.choice(labels)], "domains": []}, "bench")
        print(aid, flush=True)
        i += 1
"""


def kill_annotations(tmp: Path, trials: int, rng: random.Random) -> dict:
    home = tmp / "ann_ws"
    env = dict(os.environ, CDPD_HOME=str(home), CDPD_LOG=str(tmp / "a.log"), PYTHONPATH=str(ROOT))
    out = {"trials": 0, "acked": 0, "lost": 0, "inconsistent": [], "not_ready": 0}
    for t in range(trials):
        ack = tmp / f"ack{t}.txt"
        with open(ack, "wb") as fh:
            proc = subprocess.Popen([PY, "-c", ANNOTATOR_CHILD, str(home), str(t)], env=env, cwd=ROOT, stdout=fh,
                                    stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            while time.time() < deadline and b"ready" not in ack.read_bytes():
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        data = ack.read_bytes()
        if b"ready" not in data:
            out["not_ready"] += 1
        lines = data.split(b"\n")[:-1]  # a last line without its newline was not acknowledged
        ids = [int(x) for x in lines if x.strip().isdigit()]
        con = sqlite3.connect(home / "cdpd.sqlite")
        have = {r[0] for r in con.execute("SELECT annotation_id FROM annotations")}
        con.close()
        out["trials"] += 1
        out["acked"] += len(ids)
        out["lost"] += sum(1 for i in ids if i not in have)
        probs = check_workspace(home / "cdpd.sqlite")
        if probs:
            out["inconsistent"].append((t, probs))
    con = sqlite3.connect(home / "cdpd.sqlite")
    out["rows"] = con.execute("SELECT count(*) FROM annotations").fetchone()[0]
    con.close()
    return out


# -- reporting ---------------------------------------------------------------------------------------------------
def family_group(family: str) -> str:
    return family


def summarise(cases: list[Case], results: list[tuple[Run, Verdict]]) -> tuple[list[list], dict]:
    fam_cases = defaultdict(set)
    for c in cases:
        fam_cases[c.family].add(c.idx)
    rows = {}
    for fam in fam_cases:
        rows[fam] = {"inputs": len(fam_cases[fam]), "runs": 0, "crashes": 0, "lost": 0, "over": 0, "rss": 0,
                     "max_s": 0.0, "not_one": 0, "no_reason": 0, "row_only": 0, "accepted": set()}
    tot = {"runs": len(results), "crashes": 0, "lost": 0, "over_time": 0, "over_mem": 0, "rss": 0, "max_s": 0.0,
           "not_one": 0, "no_reason": 0, "row_only": 0, "accepted": set(), "noise": [], "lost_detail": [],
           "crash_detail": [], "not_one_detail": []}
    by_token = {c.token: c for c in cases}
    for run, v in results:
        fams = {c.family for c in run.cases}
        tot["crashes"] += v.crash
        tot["lost"] += len(v.goods_lost)
        tot["over_time"] += v.over_time
        tot["over_mem"] += v.over_mem
        tot["rss"] = max(tot["rss"], run.rss)
        tot["max_s"] = max(tot["max_s"], run.elapsed)
        tot["not_one"] += len(v.not_one_line)
        tot["no_reason"] += len(v.no_reason)
        tot["row_only"] += v.row_only
        tot["accepted"].update(v.bad_accepted)
        tot["noise"] += v.noise
        if v.goods_lost:
            tot["lost_detail"].append((run.kind, run.context, [c.token + c.family for c in run.cases][:6],
                                       v.goods_lost[:6], run.rc))
        if v.crash:
            tot["crash_detail"].append((run.kind, run.context, [c.token + c.family for c in run.cases][:6], run.rc,
                                        run.timed_out, run.stderr[-400:]))
        for tok in v.not_one_line:
            c = by_token[tok]
            lines = [ln for ln in run.stderr.splitlines() if tok in ln]
            tot["not_one_detail"].append((run.kind, run.context, tok + c.family, c.note, lines[:3],
                                          [i for i in run.ids if tok in i][:3]))
        for fam in fams:
            r = rows[fam]
            r["runs"] += 1
            r["crashes"] += v.crash
            r["over"] += v.over_time or v.over_mem
            r["rss"] = max(r["rss"], run.rss)
            r["max_s"] = max(r["max_s"], run.elapsed)
        for c in run.cases:
            r = rows[c.family]
            r["lost"] += sum(1 for g in v.goods_lost if g.startswith(c.token))
            r["not_one"] += sum(1 for t in v.not_one_line if t == c.token)
            r["no_reason"] += sum(1 for t in v.no_reason if t == c.token)
            if c.token in v.bad_accepted:
                r["accepted"].add(c.token)
        # goods lost that are companion files: charged to every family of the run
        comp = [g for g in v.goods_lost if g.startswith("g")]
        for fam in fams:
            rows[fam]["lost"] += len(comp)
    table = []
    for fam, r in rows.items():
        table.append([fam, r["inputs"], r["runs"], r["crashes"], r["lost"], r["over"], f"{r['rss'] / 2**20:,.0f}",
                      f"{r['max_s']:.1f}", r["not_one"], r["no_reason"], len(r["accepted"])])
    return table, tot


def fmt_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="malformed inputs (about)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="--n 200, 5 kill trials of each kind on 300 documents")
    parser.add_argument("--kill-trials", type=int, default=20)
    parser.add_argument("--kill-docs", type=int, default=1000)
    parser.add_argument("--classify-alone-every", type=int, default=5,
                        help="every K-th input is also run alone through classify (all are, alone, through ingest)")
    parser.add_argument("--group", type=int, default=25, help="bad inputs per 'good bad good ...' command")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: inputs,models,markup,kill")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.kill_trials, args.kill_docs = min(args.n, 200), min(args.kill_trials, 5), min(args.kill_docs, 300)
    skip = set(filter(None, args.skip.split(",")))
    rng = random.Random(args.seed)
    started = time.perf_counter()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="cdpd-robust-"))
    report: list[str] = []
    goals: list[list] = []
    try:
        summary_rows, tot, cases = [], None, []
        if "inputs" not in skip:
            log("generating inputs ...")
            cases = generate(tmp / "inputs", args.n, args.seed) if (tmp / "inputs").mkdir() is None else []
            goods = make_goods(tmp / "goods", 40)
            log(f"{len(cases)} inputs in {len({c.family for c in cases})} families; running ...")
            results = feed(cases, goods, tmp, args, rng)
            summary_rows, tot = summarise(cases, results)
        probes = model_probes(tmp, make_goods(tmp / "mgood", 1)[0][1]) if "models" not in skip else []
        markup = markup_probe() if "markup" not in skip else None
        kill_i = kill_ingest(tmp, args.kill_trials, args.kill_docs, rng) if "kill" not in skip else None
        kill_a = kill_annotations(tmp, args.kill_trials, rng) if "kill" not in skip else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started

    header = ["family", "inputs", "runs", "crashes / tracebacks", "good docs lost", "runs > 60 s or > 2 GB",
              "peak RSS max (MiB)", "slowest run (s)", "refusals not one line", "refusals without a reason",
              "bad accepted (info)"]
    if tot is not None:
        summary_rows.sort(key=lambda r: r[0])
        summary_rows.append(["**all**", len(cases), tot["runs"], tot["crashes"], tot["lost"],
                             tot["over_time"] + tot["over_mem"], f"{tot['rss'] / 2**20:,.0f}", f"{tot['max_s']:.1f}",
                             tot["not_one"], tot["no_reason"], len(tot["accepted"])])
        report.append(fmt_table(header, summary_rows))
        goals += [["malformed inputs: crashes (traceback, status outside 0-2, killed)", "0", tot["crashes"]],
                  ["malformed inputs: good documents lost", "0", tot["lost"]],
                  ["malformed inputs: runs past 60 s", "0", tot["over_time"]],
                  ["malformed inputs: runs past 2 GB peak RSS", "0", tot["over_mem"]],
                  ["refusals: one line naming the file (or row) and the reason", "0 exceptions",
                   tot["not_one"] + tot["no_reason"]]]
    if probes:
        prow = [[p["what"], p["rc"], "yes" if p["code_ran"] else "no", "yes" if p["traceback"] else "no", p["lines"],
                 f"{p['elapsed']:.1f}", p["first"].replace("|", "\\|")] for p in probes]
        report.append(fmt_table(["model folder", "status", "code ran", "traceback", "stderr lines", "s",
                                 "refusal"], prow))
        goals.append(["model folders: code run", "0", sum(p["code_ran"] for p in probes)])
        goals.append(["model folders: tracebacks or refusals not one line", "0",
                      sum(p["traceback"] or p["lines"] != 1 or p["rc"] != 2 for p in probes)])
    if markup is not None:
        n_live = sum(len(v) for v in markup["live"].values())
        goals.append(["markup or remote content rendered from a document", "0", n_live])
    if kill_i is not None:
        goals.append(["kill -9 during ingest: workspace inconsistent (after kill or re-run)", "0",
                      len(kill_i["inconsistent_after_kill"]) + len(kill_i["inconsistent_after_rerun"])])
        goals.append(["kill -9 during ingest: re-run fails or differs from an uninterrupted run", "0",
                      len(kill_i["rerun_failed"]) + len(kill_i["rerun_differs"])])
        goals.append(["kill -9 during annotation: acknowledged saves lost", "0", kill_a["lost"]])
        goals.append(["kill -9 during annotation: workspace inconsistent", "0", len(kill_a["inconsistent"])])
    grows = [[g, t, m, "pass" if str(m) in ("0", "0 exceptions") or m == 0 else "FAIL"] for g, t, m in goals]
    goals_md = fmt_table(["goal", "target", "measured", "result"], grows)

    details = []
    if tot is not None:
        for d in tot["crash_detail"][:15]:
            details.append(f"- crash: `{d[0]}` ({d[1]}) {d[2]}: status {d[3]}, timed out {d[4]}: `{d[5][-200:]!r}`")
        for d in tot["lost_detail"][:15]:
            details.append(f"- good lost: `{d[0]}` ({d[1]}) {d[2]}: lost {d[3]}, status {d[4]}")
        for d in tot["not_one_detail"][:25]:
            details.append(f"- refusal not one line: `{d[0]}` ({d[1]}) {d[2]} ({d[3]}): lines {d[4]!r}, rows {d[5]}")
        details.append(f"- refusal lines that name a table row (its id, line number) but not the table's file: "
                       f"{tot['row_only']} (\"skipped ROW_ID: line N: reason\"; with two tables in one command the "
                       f"file is not said)")
        by_design = [c for c in cases if c.rows_in_refused_table]
        if by_design:
            details.append(f"- good rows in tables the product refuses whole, as documented (more blank lines in a row "
                           f"than MAX_BLANK_LINES): {sum(c.rows_in_refused_table for c in by_design)} rows in "
                           f"{len(by_design)} tables, not counted as lost")
        acc = sorted(tot["accepted"])
        if acc:
            fams = defaultdict(int)
            for t in acc:
                fams[next(c.family for c in cases if c.token == t)] += 1
            details.append(f"- bad inputs accepted as documents (info): {dict(fams)}")
        if tot["noise"]:
            uniq = sorted(set(tot["noise"]))
            details.append(f"- stderr lines that are neither a refusal naming an input nor a summary: {len(tot['noise'])}"
                           f" ({len(uniq)} distinct), e.g. " + "; ".join(f"`{u[:120]}`" for u in uniq[:6]))
    if markup is not None:
        details.append(f"- markup: {markup['checks']} hostile strings x {markup['renderers']} renderers; live: "
                       + (json.dumps({k: v[:3] for k, v in markup["live"].items()})[:800] or "none"))
    if kill_i is not None:
        details.append(f"- kill -9 ingest: {kill_i['trials']} trials ({kill_i['killed']} killed before the end) of "
                       f"`cdpd ingest --classify --model lexicon` on {kill_i['docs']} documents ({kill_i['stored']} "
                       f"stored; uninterrupted {kill_i['ref_s']:.1f} s); documents in the workspace at the kill: "
                       f"{sorted(kill_i['docs_at_kill'])}; inconsistent after kill {kill_i['inconsistent_after_kill']}, "
                       f"after re-run {kill_i['inconsistent_after_rerun']}; re-run failed {kill_i['rerun_failed']}, "
                       f"differs {kill_i['rerun_differs']}; `cdpd-ingest-*` left after re-runs: {kill_i['leftovers']}")
        details.append(f"- kill -9 annotation: {kill_a['trials']} trials in one workspace, {kill_a['acked']:,} "
                       f"acknowledged saves, {kill_a['lost']} lost, {kill_a['rows']:,} rows at the end; "
                       f"inconsistent {kill_a['inconsistent']}")
    load_after = os.getloadavg()
    cmdline = "python benchmarks/robustness.py " + " ".join(argv if argv is not None else sys.argv[1:])
    n_alone_i = len(cases)
    n_alone_c = sum(1 for c in cases if c.idx % args.classify_alone_every == 0)
    section = "\n".join([
        SECTION, "",
        f"`{cmdline.strip()}` at commit `{git_commit(ROOT)}`, {dt.date.today().isoformat()}; {cpu_model()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (the cores were shared); {elapsed / 60:.1f} min in all.", "",
        f"{len(cases)} malformed inputs (seed {args.seed}), each run alone through `cdpd ingest` ({n_alone_i} "
        f"runs; links out of a folder in a folder of their own) and, every {args.classify_alone_every}th, alone "
        f"through `cdpd classify --model lexicon` ({n_alone_c} runs); every input once more in a `classify` and an "
        f"`ingest` command of the form `good bad good bad ... good` ({args.group} bad inputs per command, real "
        f".txt/.pdf/.docx goods), and about 12 per folder in {max(2, round(len(cases) / 40))} folders with 3 goods "
        f"each, both commands. 60 s timeout per run, peak RSS from `ru_maxrss`. Per family (a run counts for every "
        f"family it holds; a good companion file lost in a mixed run is charged to each family of the run):", "",
        report[0] if tot is not None else "(inputs skipped)", "",
        "Goals (issue 15):", "", goals_md, "",
        *(report[1:2] and ["Crafted model folders (`cdpd classify --model NAME`, \"y\" piped on stdin):", "",
                            report[1], ""] if probes else []),
        "Details:", "", *details, ""])
    print(section)
    if not args.no_write:
        write_section(args.out, section)
        log(f"wrote the section to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
