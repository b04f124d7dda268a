"""Active learning: the queue proposes the most uncertain passages first, never annotated ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlp.cli import main
from nlp.queue import choose, margins
from nlp.schema import Document
from nlp.taggers.base import Tagger
from nlp.workspace import Workspace


class KnownScores(Tagger):
    """Scores passage i with ``table[i]`` on every label of every axis."""

    def __init__(self, codebook, table):
        super().__init__(codebook)
        self.table = np.asarray(table, dtype=float)
        self.thresholds_ = {axis: np.full(len(labs), 0.5) for axis, labs in self.labels.items()}  # born fitted

    def passage_proba(self, passages):
        n = len(passages)
        return {axis: np.tile(self.table[:n, None], (1, len(labs))) for axis, labs in self.labels.items()}


def test_margins_by_hand():
    scores = {"a": np.array([[0.5, 0.9], [0.2, 0.1]])}
    t = {"a": np.array([0.5, 0.5])}
    # passage 0: on the threshold of label 0 -> 0; passage 1: |0.2-0.5|/0.5 = 0.6 and |0.1-0.5|/0.5 = 0.8 -> 0.6
    assert margins(scores, t, ["a"]).tolist() == pytest.approx([0.0, 0.6])


def test_most_uncertain_first(codebook, processor):
    passages = [p for ps in processor.process([f"Passage number {i} about trade." for i in range(6)]) for p in ps]
    tagger = KnownScores(codebook, [0.99, 0.52, 0.05, 0.47, 0.7, 0.5])
    picked, margin, _ = choose(tagger, passages, 3)
    assert picked == [5, 1, 3]  # 0.5 sits on the threshold, then 0.52 and 0.47
    assert list(np.argsort(margin, kind="stable")[:3]) == picked
    random_pick, _, _ = choose(tagger, passages, 3, strategy="random", seed=1)
    assert sorted(random_pick) != picked or len(set(random_pick)) == 3
    diverse, _, _ = choose(tagger, passages, 2, strategy="diversity")
    assert len(diverse) == 2 and len(set(diverse)) == 2
    with pytest.raises(ValueError, match="unknown strategy"):
        choose(tagger, passages, 2, strategy="loudest")
    with pytest.raises(ValueError, match="unknown axis"):
        choose(tagger, passages, 2, axes=["colours"])


def test_cli_queue_on_a_workspace(tmp_path, capsys, classify_workspace, state_department, monkeypatch):
    home = tmp_path / "ws"
    docs = [Document.from_record(r) for r in state_department.head(40).to_dict("records")]
    with Workspace(home) as ws:
        ws.add_documents(docs)
    classify_workspace(home)
    out = tmp_path / "queue.jsonl"
    assert main(["queue", "--workspace", str(home), "-n", "5", "--model", "linear", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and rows == sorted(rows, key=lambda r: r["margin"])
    assert set(rows[0]) == {"passage_id", "document", "text", "margin", "suggested", "model", "sample"}
    assert rows[0]["sample"] == "uncertainty"
    # annotate the most uncertain passage: it is not proposed again
    with Workspace(home) as ws:
        ws.add_annotation(rows[0]["text"], {"functions": [], "domains": []}, "tester")
    assert main(["queue", "--workspace", str(home), "-n", "5", "--model", "linear", "-o", str(out)]) == 0
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["passage_id"] not in [r["passage_id"] for r in again]
    assert main(["queue", "--workspace", str(tmp_path / "none")]) == 2
    assert "no workspace" in capsys.readouterr().err


def test_cli_queue_from_one_source_and_its_annotations_keep_the_source(tmp_path, capsys, classify_workspace,
                                                                        state_department, king_county, codebook):
    """`cdpd queue --source`: passages of that source's documents only, the way to teach the model a source it never
    saw; what is annotated from them trains (and is reported) as that source."""
    home = tmp_path / "ws"
    docs = [Document.from_record(r) for r in state_department.head(20).to_dict("records")]
    docs += [Document.from_record(r) for r in king_county.head(20).to_dict("records")]
    city = str(king_county.source.iloc[0])
    with Workspace(home) as ws:
        ws.add_documents(docs)
    classify_workspace(home)
    out = tmp_path / "queue.jsonl"
    assert main(["queue", "--workspace", str(home), "-n", "8", "--model", "linear", "--source", city,
                 "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    city_ids = set(king_county.head(20).id)
    assert len(rows) == 8 and {r["document"] for r in rows} <= city_ids
    with Workspace(home) as ws:
        doc_id, passage_id = ws.conn.execute(
            "SELECT p.doc_id, p.passage_id FROM passages p WHERE p.passage_id = ?", (rows[0]["passage_id"],)).fetchone()
        ws.add_annotation(rows[0]["text"], {"functions": [], "domains": []}, "tester", doc_id=doc_id,
                          passage_id=passage_id)
        ws.add_annotation("A text annotated by hand, from no document.", {"functions": [], "domains": []}, "tester")
        units = ws.annotation_units(codebook)
    from nlp.annotations import source_of

    assert [source_of(u) for u in units] == [city, "unknown"]
    # for training, a shipped source is named as the shipped rounds name it; a source of one's own keeps its name
    from nlp.training import seed_and_workspace_annotations

    with Workspace(home) as ws:
        ws.add_documents([Document(id="seoul-1", text="The Mayor of Seoul met a delegation from Lyon.",
                                   source="Seoul press releases", issuer_type="city")])
        seoul = ws.document_info("seoul-1")["doc_id"]
        ws.add_annotation("The Mayor of Seoul met a delegation from Lyon.",
                          {"functions": ["representation_protocol"], "domains": []}, "tester", doc_id=seoul)
    merged, _ = seed_and_workspace_annotations(codebook, home)
    mine = {u.text: source_of(u) for u in merged if u.id.startswith("workspace:")}
    assert mine[rows[0]["text"]] == "king_county"
    assert mine["The Mayor of Seoul met a delegation from Lyon."] == "Seoul press releases"
    assert main(["queue", "--workspace", str(home), "--model", "linear", "--source", "Atlantis news"]) == 2
    err = capsys.readouterr().err
    assert "no source 'Atlantis news' in the workspace" in err and city in err


def test_cli_random_queue_of_a_source_labelled_and_imported_counts_as_that_source(tmp_path, capsys,
                                                                                 classify_workspace, king_county,
                                                                                 codebook):
    """The app-free path: `cdpd queue --source S --strategy random`, labels added to its lines, `cdpd annotations
    import`: the units are linked to their documents (source S) and recorded as drawn at random."""
    from nlp.annotations import source_of

    home = tmp_path / "ws"
    with Workspace(home) as ws:
        ws.add_documents([Document.from_record(r) for r in king_county.head(15).to_dict("records")])
    classify_workspace(home)
    city = str(king_county.source.iloc[0])
    out = tmp_path / "queue.jsonl"
    assert main(["queue", "--workspace", str(home), "-n", "4", "--model", "linear", "--source", city,
                 "--strategy", "random", "-o", str(out)]) == 0
    labelled = tmp_path / "labelled.jsonl"
    rows = [dict(json.loads(line), functions=[], domains=["health"]) for line in out.read_text().splitlines()]
    labelled.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["annotations", "import", str(labelled), "--workspace", str(home), "--annotator", "kim"]) == 0
    with Workspace(home) as ws:
        units = ws.annotation_units(codebook)
    assert len(units) == 4
    assert {source_of(u) for u in units} == {city} and {u.sample for u in units} == {"random"}
    assert {u.meta["document"] for u in units} == {r["document"] for r in rows}
