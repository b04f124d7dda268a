"""The ``cdpd`` command line, run in-process through ``nlp.cli.main`` (and once as ``python -m nlp``) on real
documents from the shipped corpus. Models and workspaces live in temporary folders only."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import nlp.cli
import nlp.models
from nlp.cli import main
from nlp.codebook import DEFAULT_CODEBOOK
from nlp.pipeline import DocumentTagger
from nlp.schema import Document
from nlp.workspace import Workspace

KEYS = ["id", "functions", "domains", "scores", "evidence", "model"]
SANCTIONS_ID = "state-d7ac595c1ec0"
FRENCH = (
    "Le conseil municipal de Lyon a approuvé hier soir un accord de coopération avec la ville de Montréal. "
    "Les deux villes veulent partager leurs expériences en matière de transports publics et de logement social. "
    "La maire a rappelé que ce partenariat existe depuis plus de trente ans."
)


def run_cli(capsys, *argv):
    """(exit status, stdout lines, stderr lines) of ``cdpd ARGV``."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def records(lines):
    return [json.loads(line) for line in lines]


def check_record(rec, codebook, model_pattern=r"linear@[0-9a-f]{8}"):
    assert list(rec) == KEYS
    assert re.fullmatch(model_pattern, rec["model"]), rec["model"]
    assert list(rec["scores"]) == ["functions", "domains"]
    assert list(rec["scores"]["functions"]) == codebook.labels("functions")
    assert list(rec["scores"]["domains"]) == codebook.labels("domains")
    for axis in ("functions", "domains"):
        assert all(0.0 <= s <= 1.0 for s in rec["scores"][axis].values())
        assert set(rec[axis]) <= set(codebook.labels(axis))
        assert rec[axis] == [lab for lab in codebook.labels(axis) if lab in rec[axis]]  # codebook order
    assert set(rec["evidence"]) == set(rec["functions"]) | set(rec["domains"])
    assert all(1 <= len(v) <= 3 and all(isinstance(s, str) and s for s in v) for v in rec["evidence"].values())


@pytest.fixture(scope="module")
def sample_docs(state_department, king_county):
    """Six real documents: the Ortega sanctions release, two more State Department releases, three King County."""
    sd = state_department
    picked = pd.concat([sd[sd.id == SANCTIONS_ID], sd[sd.text.str.len() < 3000].head(2), king_county.head(3)])
    return [Document(id=r.id, text=r.text, title=r.title, issuer_type=r.issuer_type) for r in picked.itertuples()]


@pytest.fixture
def fast_linear(monkeypatch, linear_model, codebook):
    """Serve the session's already-loaded linear model to the CLI (loading it takes ~2 s a time); any other
    model or codebook still goes through nlp.models.load_model."""
    original = nlp.models.load_model

    def load(ref, cb, **kwargs):
        if ref in (None, "linear") and cb.label_sets() == codebook.label_sets():
            return linear_model
        return original(ref, cb, **kwargs)

    monkeypatch.setattr(nlp.models, "load_model", load)
    return linear_model


def share_rows(out: list[str], n_groups: int) -> dict[str, list[str]]:
    """The label-share table printed by ``summary``/``run``: label -> its printed percentages, in table order."""
    start = next(i for i, line in enumerate(out) if line.startswith("Share of documents per label"))
    rows = {}
    for line in out[start + 1 :]:
        tokens = line.split()
        if tokens and tokens[-1].endswith("%"):
            rows[tokens[-n_groups - 1]] = tokens[-n_groups:]
    return rows


def write_jsonl(path: Path, docs) -> Path:
    path.write_text("".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n" for d in docs),
                    encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------- classify


def test_classify_folder_of_text_files(capsys, tmp_path, sample_docs, codebook, trained_linear):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, d in enumerate(sample_docs):
        (folder / f"{i:02d}_{d.id}.txt").write_text(d.text, encoding="utf-8")
    code, out, err = run_cli(capsys, "classify", folder, "-q")  # the real model, loaded from CDPD_MODELS
    assert code == 0, err
    recs = records(out)
    assert [r["id"] for r in recs] == [f"{i:02d}_{d.id}.txt" for i, d in enumerate(sample_docs)]
    for rec in recs:
        check_record(rec, codebook)
        assert rec["model"] == trained_linear.ref
    assert "coercive_measures" in recs[0]["functions"]
    assert any("sanction" in s.lower() for s in recs[0]["evidence"]["coercive_measures"])
    assert err == [f"classified 6 document(s) with {trained_linear.ref}"]


def test_classify_jsonl_matches_the_library(capsys, tmp_path, sample_docs, codebook, processor, fast_linear):
    tagger, info = fast_linear
    path = write_jsonl(tmp_path / "docs.jsonl", sample_docs)
    code, out, err = run_cli(capsys, "classify", path, "-q")
    assert code == 0, err
    recs = records(out)
    assert [r["id"] for r in recs] == [d.id for d in sample_docs]
    expected = [t.to_record(tagger.labels, info.ref) for t in DocumentTagger(tagger, processor).tag(sample_docs)]
    assert recs == json.loads(json.dumps(expected))
    for rec in recs:
        check_record(rec, codebook)


def test_classify_stdin_json_lines(capsys, monkeypatch, sample_docs, codebook, fast_linear):
    lines = [json.dumps({"id": d.id, "title": d.title, "text": d.text}) for d in sample_docs[:3]]
    lines.insert(1, "{not json")
    lines.insert(3, json.dumps({"id": "no-text", "title": "nothing"}))
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = run_cli(capsys, "classify", "-", "-q")
    assert code == 1  # some were skipped
    recs = records(out)
    assert [r["id"] for r in recs] == [d.id for d in sample_docs[:3]]
    for rec in recs:
        check_record(rec, codebook)
    assert err[0] == "skipped stdin:2: line 2: malformed JSON (Expecting property name enclosed in double quotes)"
    assert err[1] == "skipped no-text: line 4: no 'text' field"
    assert err[2].startswith("classified 3 document(s) with linear@") and err[2].endswith("; skipped 2")


def test_classify_output_file_is_written_atomically(capsys, tmp_path, sample_docs, codebook, fast_linear):
    src = write_jsonl(tmp_path / "in.jsonl", sample_docs)
    outdir = tmp_path / "out"
    outdir.mkdir()
    target = outdir / "tags.jsonl"
    target.write_text("old content\n")
    code, out, err = run_cli(capsys, "classify", src, "--output", target, "-q")
    assert code == 0 and out == []
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sample_docs)
    assert [json.loads(x)["id"] for x in lines] == [d.id for d in sample_docs]
    assert sorted(p.name for p in outdir.iterdir()) == ["tags.jsonl"]  # no leftover temporary file
    # a run that fails leaves the previous output untouched and no temporary file behind
    code, out, err = run_cli(capsys, "classify", src, tmp_path / "missing.txt", "--output", target, "-q")
    assert code == 2
    assert len(target.read_text(encoding="utf-8").splitlines()) == len(sample_docs)
    assert sorted(p.name for p in outdir.iterdir()) == ["tags.jsonl"]
    code, out, err = run_cli(capsys, "classify", src, "--output", outdir, "-q")
    assert code == 2 and len(err) == 1 and "--output needs a file name" in err[0]
    code, out, err = run_cli(capsys, "classify", src, "--output", tmp_path / "nowhere" / "x.jsonl", "-q")
    assert code == 2 and len(err) == 1


def test_output_onto_a_link_or_a_fifo_writes_through_and_replaces_nothing(capsys, tmp_path, sample_docs,
                                                                           fast_linear):
    """Atomic replacement is for regular files: a symbolic link keeps being a link (its target gets the output), a
    FIFO keeps being a FIFO (its reader gets the output): ``-o /dev/null`` as root must not replace /dev/null."""
    import os
    import stat
    import threading

    src = write_jsonl(tmp_path / "in.jsonl", sample_docs)
    real = tmp_path / "real.jsonl"
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    code, out, err = run_cli(capsys, "classify", src, "-o", link, "-q")
    assert code == 0 and link.is_symlink() and link.resolve() == real
    assert [json.loads(x)["id"] for x in real.read_text(encoding="utf-8").splitlines()] == [d.id for d in sample_docs]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.extend(open(fifo, encoding="utf-8").read().splitlines()))
    reader.start()
    code, out, err = run_cli(capsys, "classify", src, "-o", fifo, "-q")
    reader.join(timeout=60)
    assert code == 0 and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [json.loads(x)["id"] for x in received] == [d.id for d in sample_docs]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "link.jsonl", "pipe", "real.jsonl"]
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        code, out, err = run_cli(capsys, "classify", src, "-o", locked / "x.jsonl", "-q")
        assert code == 2 and len(err) == 1 and "permission denied" in err[0]


def test_classify_with_nothing_classified_keeps_the_previous_output(capsys, tmp_path):
    (tmp_path / "fr.txt").write_text(FRENCH, encoding="utf-8")
    target = tmp_path / "tags.jsonl"
    target.write_text('{"id": "earlier"}\n', encoding="utf-8")
    code, out, err = run_cli(capsys, "classify", tmp_path / "fr.txt", "--model", "lexicon", "--output", target, "-q")
    assert code == 2 and err[-1] == "cdpd classify: error: no document could be classified"
    assert target.read_text(encoding="utf-8") == '{"id": "earlier"}\n'


def test_bad_file_in_a_folder_is_reported_and_skipped(capsys, tmp_path, sample_docs, codebook, fast_linear):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(sample_docs[0].text, encoding="utf-8")
    (folder / "b.txt").write_bytes(b"\x00\x01\x02binary\xff\xfe\x00" * 50)
    (folder / "c.txt").write_text(sample_docs[3].text, encoding="utf-8")
    (folder / "d.xyz").write_text("not a supported type")
    code, out, err = run_cli(capsys, "classify", folder, "-q")
    assert code == 1  # some were skipped
    assert [r["id"] for r in records(out)] == ["a.txt", "c.txt"]
    assert len(err) == 3
    assert err[0].startswith(f"skipped {folder / 'b.txt'}: binary file")
    assert err[1] == f"skipped {folder / 'd.xyz'}: unsupported file type '.xyz'"
    assert err[2].endswith("; skipped 2")


def _truncated_pdf(path: Path, text: str) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 720, text)
    pdf.save()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_classify_files_named_one_by_one_skips_the_bad_ones(capsys, tmp_path, sample_docs, codebook, fast_linear):
    """Issue 15, audit defect 5: good and bad files named on the command line (not in a folder): every good file
    has a row, every bad one a one-line reason on stderr, exit status 1 (some skipped); no traceback."""
    good = []
    for i, doc in enumerate(sample_docs[:3]):
        good.append(tmp_path / f"good{i}.txt")
        good[-1].write_text(doc.text, encoding="utf-8")
    bad = {
        "empty.txt": b"",
        "binary.txt": b"\x00\x01\x02binary\xff\xfe\x00" * 50,
        "nothing.html": b"<html><head><title>T</title><script>var x = 1;</script></head><body></body></html>",
        "junk.html": bytes(range(256)) * 8,
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    truncated = _truncated_pdf(tmp_path / "cut.pdf", "Readout of the meeting with the mayor of Lyon.")
    bad_paths = [tmp_path / name for name in bad] + [truncated]
    argv = [good[0], *bad_paths[:3], good[1], *bad_paths[3:], good[2]]
    code, out, err = run_cli(capsys, "classify", *argv, "-q")
    assert code == 1, err
    assert [r["id"] for r in records(out)] == [str(p) for p in good]
    assert not any("Traceback" in line for line in err)
    for path in bad_paths:
        lines = [line for line in err if line.startswith(f"skipped {path}: ")]
        assert len(lines) == 1, (path, err)
    assert err[-1].endswith(f"; skipped {len(bad_paths)}")
    # only bad ones: nothing usable, exit status 2; all good: 0
    code, out, err = run_cli(capsys, "classify", *bad_paths, "-q")
    assert code == 2 and out == [] and err[-1] == "cdpd classify: error: no document could be classified"
    code, out, err = run_cli(capsys, "classify", *good, "-q")
    assert code == 0 and len(records(out)) == 3


def test_ingest_files_named_one_by_one_skips_the_bad_ones(capsys, tmp_path, sample_docs):
    good = tmp_path / "good.txt"
    good.write_text(sample_docs[0].text, encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    ws = tmp_path / "ws"
    code, out, err = run_cli(capsys, "ingest", empty, good, "--workspace", ws, "-q")
    assert code == 1, err
    assert out[0].startswith("added 1 document(s)") and "1 rejected" in out[0]
    assert err[0] == f"skipped {empty}: empty document (no text after conversion)"
    code, out, err = run_cli(capsys, "ingest", empty, "--workspace", ws, "-q")
    assert code == 2 and err[-1] == "cdpd ingest: error: no document could be read (1 rejected)"


@pytest.mark.parametrize("make, needle", [
    (lambda tmp: tmp / "does-not-exist.txt", "no such file or directory"),
    (lambda tmp: (tmp / "table.xlsx").write_bytes(b"PK\x03\x04") and tmp / "table.xlsx", "unsupported file type"),
])
def test_unusable_input_exits_2_with_one_line(capsys, tmp_path, make, needle):
    path = make(tmp_path)
    code, out, err = run_cli(capsys, "classify", path, "--model", "lexicon", "-q")
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith(f"cdpd classify: error: {path}: ") and needle in err[0]


def test_non_english_document_is_skipped_unless_any_language(capsys, tmp_path, sample_docs, codebook):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "en.txt").write_text(sample_docs[3].text, encoding="utf-8")
    (folder / "fr.txt").write_text(FRENCH, encoding="utf-8")
    code, out, err = run_cli(capsys, "classify", folder, "--model", "lexicon", "-q")
    assert code == 1 and [r["id"] for r in records(out)] == ["en.txt"]  # 1: one was skipped
    assert err[0] == "skipped fr.txt: not English (detected 'fr'); use --any-language to tag it"
    code, out, err = run_cli(capsys, "classify", folder, "--model", "lexicon", "--any-language", "-q")
    assert code == 0 and [r["id"] for r in records(out)] == ["en.txt", "fr.txt"]
    # nothing left to classify is an error
    code, out, err = run_cli(capsys, "classify", folder / "fr.txt", "--model", "lexicon", "-q")
    assert code == 2 and out == [] and err[-1] == "cdpd classify: error: no document could be classified"


def test_lexicon_model_needs_no_training(capsys, monkeypatch, tmp_path, sample_docs, codebook):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "no-models-here"))
    path = write_jsonl(tmp_path / "docs.jsonl", sample_docs)
    code, out, err = run_cli(capsys, "classify", path, "--model", "lexicon", "-q")
    assert code == 0, err
    recs = records(out)
    assert len(recs) == len(sample_docs)
    for rec in recs:
        check_record(rec, codebook, model_pattern=f"lexicon@{codebook.fingerprint()[:8]}")
    assert "coercive_measures" in recs[0]["functions"]
    assert not (tmp_path / "no-models-here").exists()


def test_unknown_model_exits_2_naming_it(capsys, tmp_path, sample_docs):
    path = write_jsonl(tmp_path / "docs.jsonl", sample_docs[:1])
    code, out, err = run_cli(capsys, "classify", path, "--model", "nope", "-q")
    assert code == 2 and out == []
    assert len(err) == 1 and "no model named 'nope'" in err[0] and "cdpd train" in err[0]


def test_codebook_with_other_labels_than_the_model_exits_2(capsys, tmp_path, sample_docs, trained_linear):
    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    for label in data["functions"]:
        if label["id"] == "twinning":
            label["id"] = "sister_cities"
    cb = tmp_path / "other.yaml"
    cb.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    path = write_jsonl(tmp_path / "docs.jsonl", sample_docs[:1])
    code, out, err = run_cli(capsys, "classify", path, "--codebook", cb, "-q")
    assert code == 2 and out == [] and len(err) == 1
    assert "twinning" in err[0] and "sister_cities" in err[0] and str(cb) in err[0] and "'linear'" in err[0]


def test_python_dash_m_nlp(tmp_path, sample_docs, codebook):
    lines = "".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in sample_docs[:2])
    env = dict(os.environ, CDPD_MODELS=str(tmp_path / "models"), CDPD_HOME=str(tmp_path / "ws"))
    proc = subprocess.run([sys.executable, "-m", "nlp", "classify", "-", "--model", "lexicon", "-q"], input=lines,
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    recs = records(proc.stdout.splitlines())
    assert [r["id"] for r in recs] == [d.id for d in sample_docs[:2]]
    for rec in recs:
        check_record(rec, codebook, model_pattern=r"lexicon@[0-9a-f]{8}")
    assert proc.stderr.strip().splitlines() == [f"classified 2 document(s) with lexicon@{codebook.fingerprint()[:8]}"]
    assert list(tmp_path.iterdir()) == []  # wrote nothing


#: Libraries `cdpd classify` with the linear model has no use for (other commands' and tiers'): seconds to import.
HEAVY = {"torch", "transformers", "tokenizers", "sentence_transformers", "datasets", "plotly", "streamlit",
         "matplotlib", "pandas", "pyarrow", "dask", "sklearn", "skops"}


def test_classify_with_the_linear_model_imports_no_heavy_library(tmp_path, sample_docs, trained_linear):
    """Startup time (benchmarks/startup.py): classify needs spaCy, NumPy and SciPy only. spaCy is imported without
    torch (thinc would import it), the saved linear model is plain arrays (no skops, no scikit-learn), and the
    tiers and tables of other commands are not imported; torch still imports normally afterwards."""
    doc = tmp_path / "doc.txt"
    doc.write_text(sample_docs[0].text, encoding="utf-8")
    code = (f"import sys\nfrom nlp.cli import main\nstatus = main(['classify', '-q', {str(doc)!r}])\n"
            f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r}))\n"
            "print('imported:', *heavy, file=sys.stderr)\nimport torch\nassert torch.ones(2).sum().item() == 2\n"
            "sys.exit(status)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1].strip() == "imported:", proc.stderr
    assert records(proc.stdout.splitlines())[0]["model"] == trained_linear.ref


def test_models_list_imports_no_spacy(trained_linear):
    """The registry's commands read JSON files: no spaCy (tiers are registered without importing them)."""
    code = ("import sys\nfrom nlp.cli import main\nstatus = main(['models', 'list'])\n"
            f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY | {'spacy'})!r}))\n"
            "print('imported:', *heavy, file=sys.stderr)\nsys.exit(status)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1].strip() == "imported:", proc.stderr
    assert trained_linear.ref in proc.stdout


# ------------------------------------------------------------------------------------------- train, evaluate


def test_train_then_evaluate(capsys, monkeypatch, tmp_path, small_seed_rows, codebook):
    models = tmp_path / "models"
    monkeypatch.setenv("CDPD_MODELS", str(models))
    ann = tmp_path / "small.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in small_seed_rows), encoding="utf-8")
    code, out, err = run_cli(capsys, "train", "--annotations", ann, "--name", "small")
    assert code == 0, err
    assert err[0] == f"read {len(small_seed_rows)} annotated units from {ann}"
    assert any(line.startswith("  held-out functions: micro-F1") for line in err)
    assert err[-2].startswith(f"saved model {out[0]}")
    assert err[-1] == f"active model: {out[0]}"  # the first model trained becomes the active one
    assert len(out) == 1 and re.fullmatch(r"small@[0-9a-f]{8}", out[0])
    meta = json.loads((models / "small" / out[0].split("@")[1] / "meta.json").read_text())
    assert meta["version"] == out[0].split("@")[1] and meta["training"]["n_units"] == len(small_seed_rows)
    assert set(meta["metrics"]["heldout"]) == {"functions", "domains"}
    n_random = sum(r["sample"] == "random" for r in small_seed_rows)
    from nlp.annotations import heldout_share

    held = [r for r in small_seed_rows if r["sample"] == "random" and heldout_share(r["doc_id"]) < 0.25]
    assert meta["metrics"]["heldout_units"] == len(held) > 0  # the fixed split: a quarter of the documents
    heldout = meta["metrics"]["heldout"]["functions"]
    assert set(heldout["by_source"]) == {r["corpus"] for r in held}  # figures per source
    assert sum(s["n_units"] for s in heldout["by_source"].values()) == len(held)
    assert heldout["empty_units"] == sum(not r["functions"] for r in held)

    code, out, err = run_cli(capsys, "evaluate", "--annotations", ann, "--model", "small", "--json", "-q")
    assert code == 0, err
    report = json.loads("\n".join(out))
    assert report["model"] == meta["name"] + "@" + meta["version"] and report["n_units"] == len(small_seed_rows)
    assert "optimistic" in err[0]  # evaluated on its own training data
    for axis in ("functions", "domains"):
        r = report["axes"][axis]
        assert set(r["micro"]) == {"precision", "recall", "f1"} and 0 < r["micro"]["f1"] <= 1
        assert 0 < r["macro_f1"] <= 1 and r["n_units"] == len(small_seed_rows)
        assert list(r["labels"]) == codebook.labels(axis)
        for label, m in r["labels"].items():
            assert set(m) == {"precision", "recall", "f1", "support"}
            assert m["support"] == sum(label in row[axis] for row in small_seed_rows)
    code, out, err = run_cli(capsys, "evaluate", "--annotations", ann, "--model", "small", "--json",
                             "--random-only", "-q")
    assert json.loads("\n".join(out))["n_units"] == n_random
    code, out, err = run_cli(capsys, "evaluate", "--annotations", ann, "--model", "small", "-q")
    assert out[0] == f"model {report['model']} on {len(small_seed_rows)} units of {ann}"
    assert any(line.startswith("functions: micro P") for line in out)
    assert any(line.split()[:1] == ["coercive_measures"] for line in out)
    empty = sum(not r["functions"] for r in small_seed_rows)
    assert any(line.strip().endswith(f"of the {empty} units without a label were given one") for line in out)
    sources = sorted({r["corpus"] for r in small_seed_rows})
    per_source = [line.split() for line in out if line.split()[:1] and line.split()[0] in sources]
    assert [row[0] for row in per_source] == sources * 2  # a per-source table under each axis
    assert [int(row[1]) for row in per_source[:len(sources)]] == [
        sum(r["corpus"] == s for r in small_seed_rows) for s in sources]
    code, out, err = run_cli(capsys, "models")
    assert len(out) == 1 and out[0].startswith("* " + report["model"] + "\tlinear\t") and "functions micro-F1" in out[0]


def test_annotation_file_with_unknown_label_exits_2(capsys, monkeypatch, tmp_path, small_seed_rows):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    rows = [dict(r) for r in small_seed_rows[:5]]
    rows[3]["functions"] = ["advocacy", "espionage"]
    ann = tmp_path / "bad.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for argv in (["train", "--annotations", ann], ["evaluate", "--annotations", ann, "--model", "lexicon"]):
        code, out, err = run_cli(capsys, *argv, "-q")
        assert code == 2 and out == [] and len(err) == 1
        assert "'espionage'" in err[0] and str(DEFAULT_CODEBOOK) in err[0] and "line 4" in err[0], err
    assert not (tmp_path / "models").exists()
    code, out, err = run_cli(capsys, "train", "--annotations", tmp_path / "absent.jsonl", "-q")
    assert code == 2 and "annotation file not found" in err[0]


def test_train_quietly(capsys, monkeypatch, tmp_path, small_seed_rows):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    ann = tmp_path / "small.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in small_seed_rows[:40]), encoding="utf-8")
    code, out, err = run_cli(capsys, "train", "--annotations", ann, "--name", "quiet", "-q")
    assert code == 0 and len(out) == 1 and out[0].startswith("quiet@") and err == []


def test_annotation_file_with_a_byte_order_mark(capsys, tmp_path, small_seed_rows):
    ann = tmp_path / "bom.jsonl"
    ann.write_text("\ufeff" + "".join(json.dumps(r) + "\n" for r in small_seed_rows[:10]), encoding="utf-8")
    code, out, err = run_cli(capsys, "evaluate", "--annotations", ann, "--model", "lexicon", "--json", "-q")
    assert code == 0, err
    assert json.loads("\n".join(out))["n_units"] == 10


# --------------------------------------------------------------------------------- ingest, summary, search


def test_ingest_then_summary_and_search(capsys, tmp_path, sample_docs, codebook):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, d in enumerate(sample_docs):
        (folder / f"{i}.txt").write_text(d.text, encoding="utf-8")
    (folder / "copy.txt").write_text(sample_docs[0].text.upper(), encoding="utf-8")
    (folder / "fr.txt").write_text(FRENCH, encoding="utf-8")
    ws = tmp_path / "ws"
    code, out, err = run_cli(capsys, "ingest", folder, "--workspace", ws, "--source", "mine", "--issuer-type",
                             "city", "-q")
    assert code == 0, err
    assert out == [f"added 7 document(s) to {ws / 'cdpd.sqlite'}; 1 duplicate(s), 0 rejected, "
                   "1 flagged non-English"]
    assert "skipped copy.txt: duplicate, same text as 0.txt" in err
    assert "flagged fr.txt: not English (detected 'fr'); stored but not tagged" in err
    code, out, err = run_cli(capsys, "summary", "--workspace", ws)
    assert code == 0
    assert out[0] == "Documents per source" and "No classified documents yet: run `cdpd run`." in out
    assert re.search(r"^mine\s+city\s+7\s+1$", "\n".join(out), re.M)
    # again, with classification: everything is a duplicate now, and the 6 English documents get tagged
    code, out, err = run_cli(capsys, "ingest", folder, "--workspace", ws, "--classify", "--model", "lexicon", "-q")
    assert code == 0 and out[0].startswith("added 0 document(s)") and out[0].endswith("8 duplicate(s), 0 rejected, "
                                                                                      "0 flagged non-English")
    with Workspace(ws) as w:
        ref = w.latest_model()
        assert ref.startswith("lexicon@") and w.count_unclassified(ref) == 0
        shares = w.label_shares(ref)
    code, out, err = run_cli(capsys, "summary", "--workspace", ws)
    text = "\n".join(out)
    assert f"Share of documents per label by issuer_type (model {ref})" in text
    assert out[out.index(f"Share of documents per label by issuer_type (model {ref})") + 1].split() == [
        "issuer_type", "city"]
    rows = share_rows(out, 1)
    assert list(rows) == codebook.labels("functions") + codebook.labels("domains")
    for (axis, label), value in shares["city"].items():
        assert rows[label] == [f"{value * 100:.1f}%"]
    assert rows["coercive_measures"] == ["16.7%"]  # 1 of the 6 English documents: the Ortega sanctions release
    code, out, err = run_cli(capsys, "search", "Ortega", "--workspace", ws)
    assert code == 0 and out[0].startswith("0.txt\tmine\t") and "[Ortega]" in out[1]
    code, out, err = run_cli(capsys, "search", '"unclosed', "--workspace", ws)
    assert code == 2 and len(err) == 1 and "cannot search for" in err[0]
    assert "SELECT" not in err[0] and "documents_fts" not in err[0]  # SQLite's reason, not our SQL
    for limit in ("-1", "0", "99999999999999999999999", "x"):  # bounded, a one-line usage error, no traceback
        with pytest.raises(SystemExit) as exit_:
            run_cli(capsys, "search", "Ortega", "--limit", limit, "--workspace", ws)
        assert exit_.value.code == 2 and "--limit" in capsys.readouterr().err
    code, out, err = run_cli(capsys, "search", " OR ".join(f"w{i}" for i in range(4000)), "--workspace", ws)
    assert code == 2 and len(err) == 1 and "too long" in err[0]
    code, out, err = run_cli(capsys, "summary", "--workspace", tmp_path / "nothing")
    assert code == 2 and "no workspace at" in err[0] and not (tmp_path / "nothing").exists()


# ------------------------------------------------------------------------------------------------------- run


@pytest.fixture
def small_corpus(tmp_path, monkeypatch, king_county, state_department):
    """CORPORA pointed at a folder with one parquet of 40 real rows: 20 city (King County), 20 national."""
    city = king_county[king_county.text.str.len() < 2500].head(20)
    national = state_department[state_department.text.str.len() < 2500].head(20)
    folder = tmp_path / "corpora"
    folder.mkdir()
    pd.concat([city, national]).to_parquet(folder / "mini.parquet", index=False)
    monkeypatch.setattr(nlp.cli._util, "CORPORA", folder)
    return folder


def test_run_end_to_end_on_a_small_corpus(capsys, tmp_path, small_corpus, fast_linear, trained_linear, codebook):
    ws = tmp_path / "ws"
    code, out, err = run_cli(capsys, "run", "--workspace", ws, "-q")
    assert code == 0, err
    text = "\n".join(out)
    assert out[0] == "Documents per source"
    assert re.search(r"^King County \(WA\) city news posts\s+city\s+20\s+0$", text, re.M)
    assert re.search(r"^U\.S\. Department of State press releases \(RSS archive\)\s+national\s+20\s+0$", text, re.M)
    assert f"Share of documents per label by issuer_type (model {trained_linear.ref})" in text
    header = out[out.index(f"Share of documents per label by issuer_type (model {trained_linear.ref})") + 1]
    assert header.split()[-2:] == ["city", "national"]
    with Workspace(ws) as w:
        assert w.count_documents() == 40 and w.count_unclassified(trained_linear.ref) == 0
        shares = w.label_shares(trained_linear.ref)
        per_source = w.documents_per_source()
    assert per_source.documents.sum() == 40 and set(per_source.issuer_type) == {"city", "national"}
    rows = share_rows(out, 2)
    assert list(rows) == codebook.labels("functions") + codebook.labels("domains")
    for (axis, label), values in shares.iterrows():
        assert rows[label] == [f"{values[g] * 100:.1f}%" for g in ("city", "national")]
    # real differences between the two kinds of issuer show up: the State Department releases are about peace
    assert shares.loc[("domains", "peace"), "national"] > shares.loc[("domains", "peace"), "city"]
    assert err[-1].startswith("done in") and str(ws) in err[-1]
    assert any(line.startswith("mini.parquet: 40 added, 0 duplicate(s) skipped") for line in err)
    # a second run imports nothing and classifies nothing
    code, out2, err2 = run_cli(capsys, "run", "--workspace", ws, "-q")
    assert code == 0 and out2 == out
    assert not any("mini.parquet" in line for line in err2)
    assert f"every document is already classified with {trained_linear.ref}" in err2


def test_run_with_the_lexicon_model(capsys, tmp_path, small_corpus):
    code, out, err = run_cli(capsys, "run", "--workspace", tmp_path / "ws", "--model", "lexicon", "-q")
    assert code == 0, err
    assert any(line.startswith("Share of documents per label by issuer_type (model lexicon@") for line in out)


def test_embedding_train_and_classify_use_the_workspace_cache(capsys, monkeypatch, tmp_path, small_seed_rows):
    """`train --model embedding` and `classify` with an embedding model keep their embeddings in the workspace's
    cache: a second train encodes nothing (the encoder is never called, the cache gains no row)."""
    import sqlite3

    from nlp import embeddings

    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    home = tmp_path / "ws"
    cache = home / embeddings.CACHE_FILE
    rows = small_seed_rows[:30]
    ann = tmp_path / "tiny.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def count() -> int:
        with sqlite3.connect(cache) as conn:
            return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]

    code, out, err = run_cli(capsys, "train", "--annotations", ann, "--model", "embedding", "--params",
                              '{"encoder": "minilm"}', "--workspace", home, "-q")
    assert code == 0, err
    first, n_rows = out[0], count()
    assert n_rows >= len(rows)  # every unit's passages, and the labels' prototype texts

    def no_encoding(*_a, **_k):
        raise AssertionError("the encoder was called although every text is cached")

    monkeypatch.setattr(embeddings, "embed", no_encoding)
    code, out, err = run_cli(capsys, "train", "--annotations", ann, "--model", "embedding", "--params",
                              '{"encoder": "minilm"}', "--workspace", home, "-q")
    assert code == 0, err
    assert out == [first] and count() == n_rows  # same data, same settings: same version, nothing encoded
    monkeypatch.undo()
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))

    # classify: the first pass stores what it embeds (passages, evidence sentences), the second reads them back
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows[:3]), encoding="utf-8")
    code, out1, err = run_cli(capsys, "classify", docs, "--model", "embedding", "--workspace", home, "-q")
    assert code == 0, err
    grown = count()
    monkeypatch.setattr(embeddings, "embed", no_encoding)
    code, out2, err = run_cli(capsys, "classify", docs, "--model", "embedding", "--workspace", home, "-q")
    assert code == 0, err
    assert out2 == out1 and count() == grown
    # without --workspace the cache is $CDPD_HOME's
    monkeypatch.setenv("CDPD_HOME", str(home))
    args = nlp.cli.build_parser().parse_args(["classify", str(docs)])
    assert nlp.cli._util.embedding_cache(args) == cache


def test_search_output_shows_control_characters_as_spaces():
    """A title with ANSI escapes or a carriage return cannot recolour or rewrite the terminal."""
    from nlp.cli._util import printable as _printable

    assert _printable("Evil\x1b[2J\x1b[31mred\rX\x9b") == "Evil [2J [31mred X "
    assert _printable("Égalité — “quoted”") == "Égalité — “quoted”" and _printable(None) == ""


def test_nul_byte_in_a_file_name_is_a_one_line_usage_error(capsys, tmp_path):
    """Issue 15, audit defect 6: a NUL byte in a file name is a reason naming the argument, not "embedded null
    byte" (or a traceback)."""
    for argv, where in ((["classify", "a\x00b.txt"], "an input"),
                        (["classify", "/etc/hostname", "-o", tmp_path / "x\x00.jsonl"], "--output"),
                        (["ingest", "/etc/hostname", "--workspace", tmp_path / "w\x00s"], "--workspace")):
        code, out, err = run_cli(capsys, *argv, "--model", "lexicon", "-q")
        assert code == 2 and out == [] and len(err) == 1, err
        assert err[0].startswith(f"cdpd {argv[0]}: error: {where} contains a NUL byte (")


# -------------------------------------------------------------------------------------- issue 15: leftovers


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_killed_runs_are_removed_on_the_next_start(monkeypatch, tmp_path):
    """Issue 15, audit defect 14: a killed ingest left its cdpd-ingest-* cache in the temporary folder (29 GB in
    the audit), a killed `classify -o` its .tmp beside the output. Their names carry PID@HOST now, and the next run
    removes ours whose process is gone (and, for names from before, those untouched for a day); never one in use."""
    import tempfile
    import time

    import nlp.ingest
    from nlp.fileio import atomic_path, owner_token

    host = owner_token().split("@", 1)[1]
    dead, alive = f"{_dead_pid()}@{host}", owner_token()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = tmp_path / f"cdpd-ingest-.{dead}.abcd1234"
    running = tmp_path / f"cdpd-ingest-.{alive}.efgh5678"
    legacy_old, legacy_new = tmp_path / "cdpd-ingest-old12345", tmp_path / "cdpd-ingest-new12345"
    for folder in (killed, running, legacy_old, legacy_new):
        folder.mkdir()
        (folder / "data.arrow").write_bytes(b"x" * 100)
    os.utime(legacy_old, (time.time() - 2 * 86400,) * 2)
    table = tmp_path / "rows.jsonl"
    table.write_text(json.dumps({"id": "a", "text": "The mayor met the ambassador."}) + "\n", encoding="utf-8")
    nlp.ingest._remove_stale_caches.cache_clear()
    assert [d.id for d in nlp.ingest.read_table(table)] == ["a"]
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cdpd-ingest-"))
    assert left == sorted([running.name, legacy_new.name])  # and this run's own cache is gone too
    out = tmp_path / "out"
    out.mkdir()
    stale, in_use = out / f".tags.jsonl.{dead}.x1.tmp", out / f".tags.jsonl.{alive}.x2.tmp"
    stale.write_text("half", encoding="utf-8")
    in_use.write_text("half", encoding="utf-8")
    with atomic_path(out / "tags.jsonl") as tmp:
        assert tmp.name.startswith(f".tags.jsonl.{alive}.")
        tmp.write_text("done\n", encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == sorted(["tags.jsonl", in_use.name])


def test_library_noise_goes_to_the_log_not_to_stderr(tmp_path):
    """Issue 15, audit defect 14: pypdf's "EOF marker not found" reached stderr before the one-line reason."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(tmp_path / "cut.pdf"))
    pdf.drawString(72, 720, "Readout of the meeting with the mayor of Lyon.")
    pdf.save()
    data = (tmp_path / "cut.pdf").read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 2])
    (tmp_path / "good.txt").write_text("The mayor met the ambassador of France to discuss the partnership.",
                                       encoding="utf-8")
    log = tmp_path / "cdpd.log"
    env = {**os.environ, "CDPD_LOG": str(log), "CDPD_MODELS": str(tmp_path / "no-models")}
    proc = subprocess.run([sys.executable, "-m", "nlp", "classify", "cut.pdf", "good.txt", "--model", "lexicon",
                           "-q"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[0].startswith("skipped cut.pdf: not a readable PDF")
    assert len(proc.stderr.splitlines()) == 2 and "EOF marker" not in proc.stderr
    assert "EOF marker not found" in log.read_text(encoding="utf-8")


def test_sigterm_unwinds_the_cli_but_forked_children_die_at_once(monkeypatch):
    """Issue 15, audit defect 14: SIGTERM raises SystemExit in cdpd (so temporary files are removed), but a child
    forked meanwhile (a multiprocessing pool's worker, e.g. cleanlab's, which its pool ends with SIGTERM) dies at
    once as before, instead of unwinding and hanging its pool."""
    import signal
    import time

    monkeypatch.setattr(nlp.cli, "_MAIN_PID", os.getpid())
    previous = signal.signal(signal.SIGTERM, nlp.cli._terminate)
    try:
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: says it is past fork (which drops signals pending then), then waits
            try:
                os.write(ready_w, b"x")
                time.sleep(30)
            finally:
                os._exit(3)
        os.read(ready_r, 1)
        os.close(ready_r)
        os.close(ready_w)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        with pytest.raises(SystemExit) as exited:
            nlp.cli._terminate(signal.SIGTERM, None)
        assert exited.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ingest_keeps_the_rows_around_a_broken_jsonl_line(capsys, tmp_path, sample_docs):
    """A table whose writer crashed mid-line (or was edited by hand) loses that line, not its other rows."""
    table = tmp_path / "releases.jsonl"
    rows = [json.dumps({"id": d.id, "text": d.text}) for d in sample_docs[:3]]
    table.write_text(f"{rows[0]}\n{rows[1][:40]}\n{rows[2]}\n", encoding="utf-8")
    ws = tmp_path / "ws"
    code, out, err = run_cli(capsys, "ingest", table, "--workspace", ws, "-q")
    assert code == 1, err
    assert out[0].startswith("added 2 document(s)") and "1 rejected" in out[0]
    assert err[0].startswith("skipped releases:2: line 2: malformed JSON (")
    assert err[0].endswith(f"fix or remove the line (in {table})")
    with Workspace(ws) as w:
        assert w.count_documents() == 2 and w.get_document(sample_docs[1].id) is None
        assert w.get_document(sample_docs[2].id).text == sample_docs[2].text
