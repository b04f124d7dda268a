"""Annotation import/export (JSONL, spaCy DocBin, Hugging Face datasets), merging, and the retrain loop's data."""

from __future__ import annotations

import json

import pytest

from nlp.annotations import (AnnotationError, export_annotations, import_annotations, merge_annotations,
                             read_seed_annotations)
from nlp.cli import main


def _same(a, b):
    return a.id == b.id and a.text == b.text and a.title == b.title and \
        {k: sorted(v) for k, v in a.labels.items()} == {k: sorted(v) for k, v in b.labels.items()}


@pytest.mark.parametrize("name", ["units.jsonl", "units.spacy", "units_hf"])
def test_round_trip_in_every_format(codebook, seed_annotations, tmp_path, name):
    units = seed_annotations[:40]
    export_annotations(units, tmp_path / name, codebook)
    back = import_annotations(tmp_path / name, codebook)
    assert len(back) == len(units) and all(_same(a, b) for a, b in zip(units, back))


def test_unknown_labels_are_refused_naming_the_codebook(codebook, seed_annotations, tmp_path):
    import spacy
    from spacy.tokens import DocBin

    doc = spacy.blank("en").make_doc("A city boycotts a company.")
    doc.cats = {"boycotting": 1.0}
    DocBin(docs=[doc]).to_disk(tmp_path / "bad.spacy")
    with pytest.raises(AnnotationError, match=r"unknown label\(s\) 'boycotting' not in the codebook .*codebook.yaml"):
        import_annotations(tmp_path / "bad.spacy", codebook)
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "x", "text": "t", "domains": ["space"]}) + "\n")
    with pytest.raises(AnnotationError, match=r"unknown domains label\(s\) 'space' not in the codebook"):
        import_annotations(tmp_path / "bad.jsonl", codebook)
    (tmp_path / "junk.spacy").write_bytes(b"\x00\x01 not a docbin")
    with pytest.raises(AnnotationError, match="not a spaCy DocBin"):
        import_annotations(tmp_path / "junk.spacy", codebook)
    with pytest.raises(AnnotationError, match="cannot tell the format"):
        import_annotations(tmp_path, codebook)


def test_merge_deduplicates_by_text_and_reports_conflicts(seed_annotations):
    a = seed_annotations[:10]
    from dataclasses import replace

    relabelled = replace(a[3], id="mine", text="  " + a[3].text.upper() + " ", labels={"functions": ["twinning"],
                                                                                      "domains": []})
    report = merge_annotations(a, [a[0], relabelled])
    assert len(report.merged) == 10
    assert report.duplicates == [(a[0].id, a[0].id)]
    assert [(k, n) for k, n, *_ in report.conflicts] == [(a[3].id, "mine")]
    assert report.merged[3].labels == {"functions": ["twinning"], "domains": []}  # the later set wins


def test_cli_import_export_and_train_on_seed_plus_workspace(tmp_path, monkeypatch, capsys, seed_rows, codebook):
    monkeypatch.setenv("CDPD_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    rows = [dict(r) for r in seed_rows[:20]]
    rows[0]["functions"] = ["twinning"]  # relabels a seed unit
    rows.append({"id": "new", "text": "Our city signed a sister city agreement with Kyoto to exchange students.",
                 "functions": ["twinning", "exchange"], "domains": ["culture"]})
    src = tmp_path / "mine.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["annotations", "import", str(src), "--annotator", "alice"]) == 0
    assert capsys.readouterr().out.startswith("imported 21 annotation(s)")
    assert main(["annotations", "import", str(src)]) == 0  # again: nothing new
    assert capsys.readouterr().out.startswith("imported 0 annotation(s)")
    assert main(["annotations", "export", str(tmp_path / "out.spacy")]) == 0
    assert len(import_annotations(tmp_path / "out.spacy", codebook)) == 21
    assert main(["train", "-q"]) == 0
    ref = capsys.readouterr().out.strip()
    meta = json.loads((tmp_path / "models" / "linear" / ref.split("@")[1] / "meta.json").read_text())
    seed = read_seed_annotations(codebook)
    assert meta["training"]["path"] == "seed + workspace (21 annotations)"
    assert meta["training"]["n_units"] == len(merge_annotations(seed, []).merged) + 1  # one new text


def test_a_planted_label_error_is_flagged(tmp_path, capsys, seed_rows, monkeypatch):
    """A climate-plan unit relabelled from environment to peace is among the most suspect units cleanlab finds,
    in this process: a multiprocessing pool forked from a threaded process can deadlock (it hung CI once)."""
    import multiprocessing.pool

    def no_pool(*_args, **_kwargs):
        raise AssertionError("label_issues forked a multiprocessing pool")

    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", no_pool)
    pool = [dict(r) for r in seed_rows if r["sample"] == "random"]
    target = next(r for r in pool if r["domains"] == ["environment"] and r["text"].lower().count("climate") >= 3)
    rows = [r for r in pool if r is not target][:299] + [dict(target, domains=["peace"])]
    path = tmp_path / "planted.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["annotations", "issues", str(path), "--cv", "3", "--top", "10", "-q"]) == 0
    flagged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(flagged) == 10
    assert target["id"] in [f["id"] for f in flagged[:5]]
    hit = next(f for f in flagged if f["id"] == target["id"])
    assert hit["axis"] == "domains" and hit["given"] == ["peace"] and hit["suggested"] == ["environment"]


# ------------------------------------------------------------- issue 15: concurrent imports, a constraint


def test_two_imports_at_once_store_each_annotation_once(tmp_path, seed_rows):
    """Issue 15, audit defect 7: two `cdpd annotations import` of the same file at once stored duplicates (the
    dedup was a check before the inserts); it is a UNIQUE constraint now."""
    import os
    import subprocess
    import sys

    from nlp.workspace import Workspace

    src = tmp_path / "mine.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in seed_rows[:300]), encoding="utf-8")
    env = dict(os.environ, CDPD_HOME=str(tmp_path / "ws"), CDPD_MODELS=str(tmp_path / "models"))
    with Workspace(tmp_path / "ws"):
        pass  # made once, so that both imports race on the annotations, not on creating the schema
    procs = [subprocess.Popen([sys.executable, "-m", "nlp", "annotations", "import", str(src)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with Workspace(tmp_path / "ws") as ws:
        n = ws.conn.execute("SELECT count(*) FROM annotations").fetchone()[0]
        distinct = ws.conn.execute("SELECT count(DISTINCT text) FROM annotations").fetchone()[0]
    assert n == distinct > 0
    added = sorted(int(out.split()[1]) for out, _ in outs)
    assert sum(added) == n  # what each said it added is what was stored


def test_old_workspaces_get_the_constraint_and_lose_exact_duplicates(tmp_path):
    """Issue 15, audit defect 7: a workspace made before the constraint gets it on open, after its exact duplicates
    are removed (the earliest kept); same text with other labels, or by another annotator, is kept."""
    import sqlite3

    from nlp.workspace import Workspace

    with Workspace(tmp_path) as ws:
        first = ws.add_annotation("The mayor met the ambassador.", {"functions": ["listening"]}, "alice")
        assert ws.add_annotation("the  MAYOR met the ambassador.", {"functions": ["listening"]}, "alice") == first
    conn = sqlite3.connect(tmp_path / "cdpd.sqlite")
    conn.executescript("DROP INDEX annotations_dedup; ALTER TABLE annotations DROP COLUMN dedup_key;")
    rows = [("The mayor met the ambassador.", '{"functions": ["listening"]}', "alice"),
            ("The mayor met the ambassador.", '{"functions": ["advocacy"]}', "alice"),
            ("The mayor met the ambassador.", '{"functions": ["listening"]}', "bob"),
            ("The mayor met  the ambassador.", '{"functions": ["listening"]}', "alice")]
    conn.executemany("INSERT INTO annotations (text, labels, annotator, created_at) VALUES (?, ?, ?, 'now')", rows)
    conn.commit()
    conn.close()
    with Workspace(tmp_path) as ws:
        kept = [(r["annotation_id"], r["labels"], r["annotator"]) for r in ws.annotations()]
        assert kept == [(first, {"functions": ["listening"]}, "alice"), (first + 2, {"functions": ["advocacy"]},
                        "alice"), (first + 3, {"functions": ["listening"]}, "bob")]
        assert ws.conn.execute("SELECT count(*) FROM sqlite_master WHERE name='annotations_dedup'").fetchone()[0] == 1


def test_two_imports_interleaved_in_threads_store_each_annotation_once(tmp_path, seed_rows, codebook):
    """Issue 15, audit defect 7, the interleaving made certain: both imports read the workspace's annotations
    before either writes (as two `cdpd annotations import` at once can), then both insert what they found new."""
    import threading

    from nlp.workspace import Workspace

    src = tmp_path / "mine.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in seed_rows[:50]), encoding="utf-8")
    annotations = import_annotations(src, codebook)
    with Workspace(tmp_path / "ws"):
        pass
    both_read = threading.Barrier(2)
    errors = []

    def run():
        try:
            with Workspace(tmp_path / "ws") as ws:
                report = merge_annotations(ws.annotation_units(codebook), annotations)
                known = {d for d, _ in report.duplicates}
                both_read.wait(timeout=60)
                for ann in annotations:
                    if ann.id not in known:
                        ws.add_annotation(ann.text, ann.labels, "import")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with Workspace(tmp_path / "ws") as ws:
        assert len(ws.annotations()) == len(merge_annotations(annotations).merged)


def test_how_a_unit_was_drawn_is_kept_and_random_units_can_be_held_out(tmp_path, codebook):
    """An annotation remembers how its passage was drawn (a random queue's: ``random``), through edits and on a
    workspace made before the column existed; random workspace units take part in the held-out split, others not."""
    import sqlite3

    from nlp.annotations import heldout_split
    from nlp.workspace import Workspace

    with Workspace(tmp_path) as ws:
        ws.add_annotation("An old unit.", {"functions": []}, "alice")
    conn = sqlite3.connect(tmp_path / "cdpd.sqlite")
    conn.execute("ALTER TABLE annotations DROP COLUMN sample")  # as a workspace made before it
    conn.commit()
    conn.close()
    texts = [f"The mayor of town {i} met a delegation from Lyon." for i in range(40)]
    with Workspace(tmp_path) as ws:
        ids = [ws.add_annotation(t, {"functions": ["representation_protocol"], "domains": []}, "bob",
                                 sample="random" if i % 2 else "uncertainty") for i, t in enumerate(texts)]
        edited = ws.edit_annotation(ids[1], {"functions": [], "domains": []})
        units = {u.text: u for u in ws.annotation_units(codebook)}
    assert units["An old unit."].sample == ""
    assert [units[t].sample for t in texts[:4]] == ["uncertainty", "random", "uncertainty", "random"]
    assert units[texts[1]].id == f"workspace:{edited}" and units[texts[1]].labels["functions"] == []
    anns = list(units.values())
    _, test = heldout_split(anns, 0.5)
    assert test and all(anns[i].sample == "random" for i in test)  # only random units are ever scored


def test_an_exported_workspace_unit_read_back_keeps_its_document_source_date_and_sample(tmp_path, codebook):
    from nlp.annotations import document_key, period_of, read_annotations, source_of
    from nlp.schema import Document
    from nlp.workspace import Workspace

    with Workspace(tmp_path / "ws") as ws:
        ws.add_documents([Document(id="seoul-7", text="The Mayor of Seoul hosted the Consul General of Peru.",
                                   source="Seoul press releases", date="2019-05-02")])
        doc_id = ws.document_info("seoul-7")["doc_id"]
        ws.add_annotation("The Mayor of Seoul hosted the Consul General of Peru.",
                          {"functions": ["representation_protocol"], "domains": []}, "kim", doc_id=doc_id,
                          sample="random")
        units = ws.annotation_units(codebook)
    assert [period_of(u) for u in units] == ["2010s"]  # evaluations report a workspace's units per period too
    path = export_annotations(units, tmp_path / "out.jsonl", codebook, "jsonl")
    back = read_annotations(path, codebook)
    assert [(source_of(a), document_key(a), a.sample, period_of(a)) for a in back] == [
        ("Seoul press releases", "seoul-7", "random", "2010s")]
