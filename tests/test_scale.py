"""Scaling out: the Dask backend gives what the in-process path gives (files and workspace), survives a worker that
dies mid-run (Dask retries its partition; or the run stops and a re-run completes it), the pre-aggregated label
counts always equal a GROUP BY over the predictions, trends() on a small real workspace, and the v1 -> v2
migration of an old workspace."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import socket
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nlp.analysis.tables import Filters, group_totals, label_table, trends
from nlp.cli import main
from nlp.schema import Document
from nlp.workspace import DB_FILE, ROLLUP_TABLES, ROLLUPS, Workspace, WorkspaceError

from nlp import distributed as nd  # works without Dask; only connect() needs it

HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason="the dask extra is not installed (pip install 'cdpd[dask]')")

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
# a few hundred real documents: dated to the day, to the month (UN speeches), and not at all (climate contracts)
SAMPLE = [("state_department", 80), ("nyc_council", 80), ("ccc", 60), ("king_county", 30), ("ungdc_sample", 30),
          ("white_house", 20)]
PARTITION = 16


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model_ref(small_linear):
    """The small linear model (every label learnt from ~120 seed units) registered as ``small``."""
    from nlp.models import save_model

    return save_model(small_linear, "small").ref


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    frames = [pd.read_parquet(CORPORA / f"{name}.parquet").head(n) for name, n in SAMPLE]
    path = tmp_path_factory.mktemp("scale") / "sample.jsonl"
    pd.concat(frames).to_json(path, orient="records", lines=True, force_ascii=False)
    return path


@pytest.fixture(scope="module")
def dask_client():
    """A LocalCluster of 2 worker processes with one thread each, started as ``--dask local:2`` starts it."""
    with nd.connect(nd.parse_target("local:2")) as client:
        assert len(client.nthreads()) == 2 and set(client.nthreads().values()) == {1}
        yield client


@pytest.fixture
def doomed_client():
    """A LocalCluster of its own for a test that kills workers: deaths (and the nanny restarts after them) must not
    leave the module's cluster short of workers for the tests that follow."""
    with nd.connect(nd.parse_target("local:2")) as client:
        yield client


@pytest.fixture(scope="module")
def address(dask_client) -> str:
    return dask_client.scheduler.address


@pytest.fixture(scope="module")
def in_process_ws(tmp_path_factory, corpus_file, model_ref) -> Path:
    """The reference: the sample imported and classified in this process (`cdpd ingest --classify`)."""
    home = tmp_path_factory.mktemp("ws_in_process")
    assert main(["ingest", str(corpus_file), "--classify", "--model", model_ref, "--workspace", str(home), "-q"]) == 0
    return home


def snapshot(home: Path) -> dict[str, list[tuple]]:
    """Every stored result of a workspace, by document id (doc_ids are internal), sorted."""
    con = sqlite3.connect(home / DB_FILE)
    try:
        q = {
            "predictions": "SELECT d.id, p.model, p.axis, p.label, p.score, p.selected, p.evidence FROM predictions p "
                           "JOIN documents d USING (doc_id)",
            "classified": "SELECT d.id, c.model FROM classified c JOIN documents d USING (doc_id)",
            "passages": "SELECT d.id, p.idx, p.start, p.end, p.n_words FROM passages p JOIN documents d USING (doc_id)",
            "passage_labels": "SELECT d.id, ps.idx, pl.model, pl.label, pl.score FROM passage_labels pl "
                              "JOIN passages ps USING (passage_id) JOIN documents d USING (doc_id)",
            "label_counts": "SELECT * FROM label_counts",
            "group_counts": "SELECT * FROM group_counts",
            **{table: f"SELECT * FROM {table}" for table in ROLLUP_TABLES},
        }
        return {name: sorted(con.execute(sql).fetchall()) for name, sql in q.items()}
    finally:
        con.close()


def assert_consistent(home: Path, model: str, n_docs: int | None = None) -> None:
    """No duplicates, no gaps: every classified document has one prediction per label and vice versa, and the
    pre-aggregated counts equal a GROUP BY over the predictions."""
    with Workspace(home, create=False) as ws:
        n_labels = sum(len(v) for v in ws._labels(model).values())
        con = ws.conn
        classified = con.execute("SELECT count(*) FROM classified WHERE model = ?", (model,)).fetchone()[0]
        per_doc = tuple(con.execute("SELECT count(*), count(DISTINCT doc_id) FROM predictions WHERE model = ?",
                                    (model,)).fetchone())
        assert per_doc == (classified * n_labels, classified)
        assert con.execute("SELECT count(*) FROM (SELECT doc_id FROM predictions WHERE model = ? GROUP BY doc_id "
                           "HAVING count(*) != ?)", (model, n_labels)).fetchone()[0] == 0
        orphans = con.execute("SELECT count(*) FROM classified c WHERE c.model = ? AND NOT EXISTS (SELECT 1 FROM "
                              "predictions p WHERE p.model = c.model AND p.doc_id = c.doc_id)", (model,)).fetchone()[0]
        assert orphans == 0
        if n_docs is not None:
            assert classified == n_docs
        assert_counts_match(ws)


def assert_counts_match(ws: Workspace) -> None:
    expected_labels = ws.conn.execute(
        "SELECT p.model, p.axis, p.label, d.source, d.issuer_type, d.issuer, d.country, d.city, "
        "substr(d.date, 1, 7) AS month, count(*) FROM predictions p JOIN documents d ON d.doc_id = p.doc_id "
        "WHERE p.selected = 1 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9").fetchall()
    stored_labels = ws.conn.execute("SELECT * FROM label_counts ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9").fetchall()
    assert [tuple(r) for r in stored_labels] == [tuple(r) for r in expected_labels]
    expected_groups = ws.conn.execute(
        "SELECT c.model, d.source, d.issuer_type, d.issuer, d.country, d.city, substr(d.date, 1, 7), count(*) "
        "FROM classified c JOIN documents d ON d.doc_id = c.doc_id GROUP BY 1, 2, 3, 4, 5, 6, 7 "
        "ORDER BY 1, 2, 3, 4, 5, 6, 7").fetchall()
    stored_groups = ws.conn.execute("SELECT * FROM group_counts ORDER BY 1, 2, 3, 4, 5, 6, 7").fetchall()
    assert [tuple(r) for r in stored_groups] == [tuple(r) for r in expected_groups]
    # the rollups (by month; by country, issuer, city) equal the same GROUP BY, coarser
    rollups = {}
    for name, extra in ROLLUPS.items():
        kept = [f"d.{extra}"] if extra else []
        rollups[f"labels_by_{name}"] = (
            ["p.model", "p.axis", *kept, "p.label", "d.source", "d.issuer_type", "substr(d.date, 1, 7)"],
            "predictions p JOIN documents d ON d.doc_id = p.doc_id WHERE p.selected = 1")
        rollups[f"groups_by_{name}"] = (["c.model", *kept, "d.source", "d.issuer_type", "substr(d.date, 1, 7)"],
                                        "classified c JOIN documents d ON d.doc_id = c.doc_id")
    assert sorted(rollups) == sorted(ROLLUP_TABLES)
    for table, (columns, relation) in rollups.items():
        key, order = ", ".join(columns), ", ".join(str(i) for i in range(1, len(columns) + 1))
        expected = ws.conn.execute(f"SELECT {key}, count(*) FROM {relation} GROUP BY {order} ORDER BY {order}")
        stored = ws.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        assert [tuple(r) for r in stored] == [tuple(r) for r in expected], table


def kill_once(plugin: str, shard: bytes, *, marker: str, victim: str):
    """A task that kills its worker process the first time it meets the partition holding ``victim``."""
    if any(doc.id == victim for doc in nd.decode_shard(shard)) and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(3)
    return nd.tag_shard(plugin, shard)


def kill_once_in_workspace(plugin: str, home: str, model: str, doc_ids: list[int], identity: str | None = None, *,
                           marker: str, victim: int, after_commit: bool):
    """The shared-workspace task, killing its worker the first time it meets the partition holding doc_id
    ``victim``: before it saves anything, or just after its transaction committed (a retry then saves it again)."""
    first = victim in doc_ids and not os.path.exists(marker)
    if first and not after_commit:
        Path(marker).write_text(str(os.getpid()))
        os._exit(3)
    result = nd.tag_workspace_partition(plugin, home, model, doc_ids, identity)
    if first:
        Path(marker).write_text(str(os.getpid()))
        os._exit(3)
    return result


def killing_task(home: Path, victim: str, marker: Path, *, shared: bool, after_commit: bool = False) -> dict:
    """DaskTagger keyword arguments that make the task of the partition holding ``victim`` kill its worker once."""
    if not shared:
        return {"task": functools.partial(kill_once, marker=str(marker), victim=victim)}
    with Workspace(home) as ws:
        doc_id = ws.conn.execute("SELECT doc_id FROM documents WHERE id = ?", (victim,)).fetchone()[0]
    return {"workspace_task": functools.partial(kill_once_in_workspace, marker=str(marker), victim=doc_id,
                                                after_commit=after_commit)}


def fresh_copy(corpus_file: Path, home: Path, partition: int) -> str:
    """An imported, unclassified workspace of the sample; returns the id of the first document of partition
    number ``partition`` (counted from 0) of a run with partitions of PARTITION documents."""
    assert main(["ingest", str(corpus_file), "--workspace", str(home), "-q"]) == 0
    with Workspace(home) as ws:
        return ws.conn.execute("SELECT id FROM documents WHERE lang IN ('en', 'und') ORDER BY doc_id LIMIT 1 "
                               "OFFSET ?", (partition * PARTITION,)).fetchone()[0]


def dask_tagger(client, model_ref, **kw):
    from nlp.codebook import load_codebook
    from nlp.models import load_model

    codebook = load_codebook()
    tagger, info = load_model(model_ref, codebook)
    kw.setdefault("partition_size", PARTITION)
    return nd.DaskTagger(client, tagger, info, codebook, **kw)


# -------------------------------------------------------------------------------------------- target and errors
def test_dask_targets_are_parsed():
    assert nd.parse_target("local") == nd.DaskTarget()
    assert nd.parse_target("local:3") == nd.DaskTarget(workers=3)
    assert nd.parse_target(" tcp://10.0.0.5:8786 ") == nd.DaskTarget(address="tcp://10.0.0.5:8786")
    assert nd.parse_target("tls://scheduler.example.org:8786").address == "tls://scheduler.example.org:8786"
    for bad in ("", "local:0", "local:two", "10.0.0.5:8786", "tcp://host", "tcp://host:99999", "http://h:1"):
        with pytest.raises(nd.DaskError, match="--dask"):
            nd.parse_target(bad)
    assert list(nd.chunked(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    # partitions shrink as the work left shrinks: about a quarter of it each with two workers, 16 at the least
    sizes = [len(p) for p in nd.guided(iter(range(1000)), 1000, workers=2)]
    assert sizes == [128, 128, 128, 128, 122, 92, 69, 52, 39, 29, 22, 16, 16, 16, 15]
    assert [len(p) for p in nd.guided(range(197), 197, workers=2)][:4] == [50, 37, 28, 21]
    # a wrong estimate only changes sizes: nothing is lost or repeated
    assert [x for p in nd.guided(range(500), 100, workers=2) for x in p] == list(range(500))
    assert [len(p) for p in nd.guided(range(5), 0, workers=4, largest=3, smallest=2)] == [2, 2, 1]
    with pytest.raises(ValueError):
        next(nd.guided(range(5), 5, workers=0))
    with pytest.raises(SystemExit):  # argparse: a usage error, exit status 2
        main(["classify", "x.jsonl", "--dask", "local:1", "--partition-size", "0"])
    docs = [Document(id="a", text="Peace.\nNow é", title="T"), Document(id="b", text="x")]
    assert nd.decode_shard(nd.encode_shard(docs)) == docs


@needs_dask
def test_bad_scheduler_and_missing_dask_are_one_line_errors(corpus_file, model_ref, capsys, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["classify", str(corpus_file), "--model", model_ref, "-q", "--dask", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0] and "Traceback" not in err[0]
    assert main(["classify", str(corpus_file), "-q", "--dask", "yarn"]) == 2
    assert "expected local, local:N or a scheduler address" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    assert main(["classify", str(corpus_file), "--model", model_ref, "-q", "--dask", "local:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'cdpd[dask]'" in err[0]


# ------------------------------------------------------------------------------------------ same results as in-process
@needs_dask
def test_dask_classify_matches_in_process(tmp_path, corpus_file, model_ref, address, dask_client):
    local, remote = tmp_path / "local.jsonl", tmp_path / "dask.jsonl"
    assert main(["classify", str(corpus_file), "--model", model_ref, "-q", "-o", str(local)]) == 0
    assert main(["classify", str(corpus_file), "--model", model_ref, "-q", "-o", str(remote), "--dask", address,
                 "--partition-size", str(PARTITION)]) == 0
    lines = local.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 250  # a few hundred documents (non-English ones are skipped by both)
    assert remote.read_text(encoding="utf-8").splitlines() == lines  # same records, same (input) order
    # each worker loaded the model once, for all of its partitions
    loads = [n.get(model_ref, 0) for n in dask_client.run(nd.model_loads).values()]
    assert sorted(loads) == [1, 1]


@needs_dask
def test_dask_workspace_matches_in_process(tmp_path, corpus_file, model_ref, address, in_process_ws, capsys):
    """A scheduler reached by address whose workers run on this machine: they see the workspace, so they read
    and write it themselves, as a LocalCluster's do."""
    home = tmp_path / "ws"
    assert main(["ingest", str(corpus_file), "--classify", "--model", model_ref, "--workspace", str(home),
                 "--dask", address, "--partition-size", str(PARTITION)]) == 0
    assert "the workers see this workspace" in capsys.readouterr().err
    expected, got = snapshot(in_process_ws), snapshot(home)
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table
    assert len(expected["predictions"]) > 5000 and len(expected["label_counts"]) > 0
    assert_consistent(home, model_ref)


@needs_dask
def test_workers_sharing_the_workspace_match_in_process(tmp_path, corpus_file, model_ref, dask_client,
                                                        in_process_ws):
    """On a LocalCluster the workers read their partition's documents from the workspace and save them
    themselves, two writers side by side: the same rows as in-process, counts included."""
    home = tmp_path / "ws"
    fresh_copy(corpus_file, home, partition=0)
    with Workspace(home) as ws, dask_tagger(dask_client, model_ref, partition_size=None) as runner:
        assert runner.shares_workspace(home)  # a LocalCluster: chosen by default
        ws.register_model(model_ref, *model_ref.split("@"), "linear", runner.labels)
        # no size given: partitions shrink toward the end (a few hundred documents: a quarter of them at first)
        sizes = [len(p) for p in runner.workspace_partitions(ws)]
        total = ws.count_unclassified(model_ref)
        assert sum(sizes) == total and sizes[0] == -(-total // 4) and sizes == sorted(sizes, reverse=True)
        assert "up to 128 documents" in runner.describe()
        saved = nd.classify_workspace(ws, runner)
    assert saved == len(snapshot(in_process_ws)["classified"])
    assert snapshot(home) == snapshot(in_process_ws)
    assert_consistent(home, model_ref)


@needs_dask
def test_workers_that_do_not_see_the_workspace_do_not_write_it(tmp_path, corpus_file, model_ref, address):
    """Sharing is decided by the file the workers see (kernel, device, inode), not by its path: a copy at
    another path is another file, a worker that sees another file refuses its partition, and a scheduler whose
    workers cannot see the workspace gets the texts shipped."""
    home = tmp_path / "ws"
    fresh_copy(corpus_file, home, partition=0)
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    mine = nd.workspace_identity(home)
    assert mine is not None and nd.workspace_identity(home) == mine
    assert nd.workspace_identity(copy) != mine and nd.workspace_identity(tmp_path / "none") is None
    with Workspace(home) as ws:
        ws.register_model(model_ref, *model_ref.split("@"), "linear", ["x"])
        ids = next(ws.unclassified_ids(model_ref, batch_size=4))
    with pytest.raises(nd.DaskError, match="does not see the workspace"):
        nd.tag_workspace_partition("no-plugin", str(copy), model_ref, ids, mine)
    with Workspace(copy) as ws:
        assert ws.conn.execute("SELECT count(*) FROM classified").fetchone()[0] == 0
    with nd.connect(address) as client, dask_tagger(client, model_ref) as runner:
        assert runner.shares_workspace(home)  # workers on this machine, though reached by address
        assert not runner.shares_workspace(tmp_path / "none")


@needs_dask
def test_ingest_on_a_local_cluster_from_the_command_line(tmp_path, corpus_file, model_ref, in_process_ws, capsys):
    home = tmp_path / "ws"
    assert main(["ingest", str(corpus_file), "--classify", "--model", model_ref, "--workspace", str(home),
                 "--dask", "local:1"]) == 0
    assert "the workers see this workspace: they read and write it" in capsys.readouterr().err
    assert snapshot(home) == snapshot(in_process_ws)


# ------------------------------------------------------------------------------------------------- a worker dies
@needs_dask
@pytest.mark.parametrize("mode", ["client writes", "workers write, die before saving",
                                  "workers write, die after saving"])
def test_a_killed_worker_is_retried_and_the_run_completes(tmp_path, corpus_file, model_ref, doomed_client,
                                                          in_process_ws, mode):
    home = tmp_path / "ws"
    victim = fresh_copy(corpus_file, home, partition=3)
    marker = tmp_path / "killed"
    shared = mode != "client writes"
    task = killing_task(home, victim, marker, shared=shared, after_commit="after" in mode)
    with Workspace(home) as ws, dask_tagger(doomed_client, model_ref, **task) as runner:
        ws.register_model(model_ref, *model_ref.split("@"), "linear", runner.labels)
        saved = nd.classify_workspace(ws, runner, shared=shared)
    assert marker.exists()  # a worker process did die
    assert saved == len(snapshot(in_process_ws)["classified"])
    assert snapshot(home) == snapshot(in_process_ws)  # after a retry of a committed partition, too
    assert_consistent(home, model_ref)


@needs_dask
@pytest.mark.parametrize("shared", [False, True], ids=["client writes", "workers write"])
def test_a_run_stopped_by_a_dead_worker_resumes(tmp_path, corpus_file, model_ref, doomed_client, in_process_ws,
                                                address, shared):
    home = tmp_path / "ws"
    victim = fresh_copy(corpus_file, home, partition=5)
    marker = tmp_path / "killed"
    task = killing_task(home, victim, marker, shared=shared)
    scheduler = doomed_client.cluster.scheduler
    allowed = scheduler.allowed_failures
    scheduler.allowed_failures = 0  # no retry: the death stops the run
    try:
        with Workspace(home) as ws, dask_tagger(doomed_client, model_ref, max_in_flight=1, **task) as runner:
            ws.register_model(model_ref, *model_ref.split("@"), "linear", runner.labels)
            with pytest.raises(nd.DaskError, match="run the command again to resume"):
                nd.classify_workspace(ws, runner, shared=shared)
    finally:
        scheduler.allowed_failures = allowed
    assert marker.exists()
    with Workspace(home) as ws:  # the five partitions before the victim were committed whole, nothing else
        assert ws.conn.execute("SELECT count(*) FROM classified").fetchone()[0] == 5 * PARTITION
    assert_consistent(home, model_ref, n_docs=5 * PARTITION)
    # the same command again: the duplicates are skipped, only the missing documents are tagged
    assert main(["ingest", str(corpus_file), "--classify", "--model", model_ref, "--workspace", str(home), "-q",
                 "--dask", address, "--partition-size", str(PARTITION)]) == 0
    assert snapshot(home) == snapshot(in_process_ws)
    assert_consistent(home, model_ref)


# ------------------------------------------------------------------------------------- pre-aggregated label counts
def test_counts_follow_inserts_resaves_updates_and_deletes(tmp_path, in_process_ws, model_ref, small_linear,
                                                           processor):
    from nlp.pipeline import DocumentTagger

    home = tmp_path / "ws"
    shutil.copytree(in_process_ws, home)
    with Workspace(home) as ws:
        assert_counts_match(ws)
        before = snapshot(home)
        rows = ws.conn.execute("SELECT doc_id, id FROM documents WHERE doc_id IN (SELECT doc_id FROM classified) "
                               "ORDER BY doc_id LIMIT 12").fetchall()
        docs = [ws.get_document(r["id"]) for r in rows]
        tagged = list(DocumentTagger(small_linear, processor).tag(docs))
        items = [(r["doc_id"], t) for r, t in zip(rows, tagged)]
        ws.save_predictions(model_ref, items, small_linear.thresholds_)  # the same results again
        ws.save_predictions(model_ref, items, small_linear.thresholds_)
        assert snapshot(home)["label_counts"] == before["label_counts"]
        assert snapshot(home)["group_counts"] == before["group_counts"]
        # re-saved with other labels: counts move, never double
        labels = small_linear.labels
        for _doc_id, t in items[:6]:
            t.selected = {axis: labs[: 3] if not t.selected[axis] else [] for axis, labs in labels.items()}
        ws.save_predictions(model_ref, items[:6], small_linear.thresholds_)
        assert_counts_match(ws)
        assert snapshot(home)["label_counts"] != before["label_counts"]
        # metadata edited, documents deleted: the counts follow
        with ws.transaction() as conn:
            conn.execute("UPDATE documents SET source = 'moved', date = '1999-12-31' WHERE doc_id IN (?, ?)",
                         (rows[6]["doc_id"], rows[7]["doc_id"]))
            conn.execute("UPDATE documents SET country = 'XXX' WHERE doc_id = ?", (rows[8]["doc_id"],))
            conn.execute("DELETE FROM documents WHERE doc_id IN (?, ?)", (rows[9]["doc_id"], rows[10]["doc_id"]))
        assert_counts_match(ws)
        assert ws.conn.execute("SELECT sum(documents) FROM group_counts WHERE source = 'moved'").fetchone()[0] == 2
        assert ws.conn.execute("SELECT count(*) FROM label_counts WHERE documents <= 0").fetchone()[0] == 0
        kept = snapshot(home)
        ws.rebuild_counts()
        assert snapshot(home) == kept


def test_tables_read_from_counts_equal_the_scan(in_process_ws, model_ref):
    with Workspace(in_process_ws, create=False) as ws:
        for filters in (None, Filters.parse(["source=U.S. Department of State press releases"]),
                        Filters(date_from="2014", date_to="2021-06"), Filters.parse(["year=2014,2021"])):
            assert (filters or Filters()).aggregable
            for by in ("issuer_type", "source", "year", "country"):
                via_counts = label_table(ws, model_ref, axis="functions", by=by, filters=filters)
                totals = group_totals(ws, model_ref, by=by, filters=filters)
                where, params = (filters or Filters()).sql()
                column = "substr(d.date, 1, 4)" if by == "year" else f"d.{by}"
                scan = pd.read_sql_query(
                    f"SELECT p.label, {column} AS grp, count(*) AS n FROM predictions p JOIN documents d "
                    f"ON d.doc_id = p.doc_id WHERE p.model = ? AND p.axis = 'functions' AND p.selected = 1 AND "
                    f"{where} GROUP BY 1, 2", ws.conn, params=[model_ref, *params])
                for row in scan.itertuples():
                    assert via_counts.loc[row.label, row.grp] == row.n
                assert via_counts.to_numpy().sum() == scan.n.sum()
                assert list(via_counts.columns) == list(totals.index)
        # a bound to the day cannot use the monthly counts: the scan answers
        assert not Filters(date_from="2021-05-21").aggregable and not Filters.parse(["lang=en"]).aggregable
        day = Filters(date_from="2021-05-21", date_to="2021-05-21")
        table = label_table(ws, model_ref, by="source", filters=day)
        scan = pd.read_sql_query(
            "SELECT p.label, d.source, count(*) AS n FROM predictions p JOIN documents d ON d.doc_id = p.doc_id "
            "WHERE p.model = ? AND p.axis = 'functions' AND p.selected = 1 AND d.date LIKE '2021-05-21%' "
            "GROUP BY 1, 2", ws.conn, params=[model_ref])
        assert len(scan) > 0 and table.to_numpy().sum() == scan.n.sum()
        for row in scan.itertuples():
            assert table.loc[row.label, row.source] == row.n


def expected_trends(ws: Workspace, model: str, axis: str, period: str, by: str | None,
                    keep=lambda d: True) -> pd.DataFrame:
    """trends() computed the slow way, in pandas, from documents and predictions."""
    size = {"year": 4, "month": 7}[period]
    docs = pd.read_sql_query("SELECT d.* FROM documents d JOIN classified c ON c.doc_id = d.doc_id "
                             "WHERE c.model = ?", ws.conn, params=[model])
    docs = docs[docs.date.str.len() >= size]
    docs = docs[docs.apply(keep, axis=1)]
    docs["period"] = docs.date.str[:size]
    keys = ["period"] + (["group"] if by else [])
    if by:
        docs["group"] = docs[by]
    preds = pd.read_sql_query("SELECT doc_id, label FROM predictions WHERE model = ? AND axis = ? AND selected = 1",
                              ws.conn, params=[model, axis]).merge(docs[["doc_id", *keys]], on="doc_id")
    totals = docs.groupby(keys).size().rename("total").reset_index()
    counts = preds.groupby([*keys, "label"]).size().rename("documents").reset_index()
    labels = ws._labels(model)[axis]
    out = totals.merge(pd.DataFrame({"label": labels}), how="cross").merge(counts, on=[*keys, "label"], how="left")
    out["documents"] = out.documents.fillna(0).astype("int64")
    out["share"] = out.documents / out.total
    return out.set_index([*keys, "label"]).sort_index()


def test_trends_on_a_small_real_workspace(in_process_ws, model_ref, codebook):
    with Workspace(in_process_ws, create=False) as ws:
        yearly = trends(ws, model_ref)
        assert list(yearly.columns) == ["period", "label", "documents", "total", "share"]
        labels = codebook.labels("functions")
        periods = sorted(yearly.period.unique())
        assert periods[0] == "2000" and "2014" in periods and "2021" in periods and "" not in periods
        assert yearly.label.tolist() == labels * len(periods)  # every label, codebook order, each period
        assert yearly.period.tolist() == sorted(yearly.period.tolist())
        assert ((yearly.share >= 0) & (yearly.share <= 1)).all()
        undated = ws.conn.execute("SELECT count(*) FROM classified c JOIN documents d USING (doc_id) "
                                  "WHERE d.date = ''").fetchone()[0]
        assert undated > 0  # the climate contracts carry no date: left out of every trend
        assert yearly.groupby("period").total.first().sum() == ws.conn.execute(
            "SELECT count(*) FROM classified").fetchone()[0] - undated
        cases = [("functions", "year", None, None, lambda d: True),
                 ("domains", "month", "source", None, lambda d: True),
                 ("functions", "year", "country", Filters.parse(["issuer_type=national"]),
                  lambda d: d.issuer_type == "national"),
                 ("domains", "month", "issuer_type", Filters(date_from="2014-02", date_to="2021"),
                  lambda d: "2014-02" <= d.date <= "2021\uffff"),
                 # bounds to the day: answered by a scan, the same way
                 ("functions", "year", "source", Filters(date_from="2014-02-04", date_to="2021-05-20"),
                  lambda d: "2014-02-04" <= d.date <= "2021-05-20\uffff")]
        for axis, period, by, filters, keep in cases:
            got = trends(ws, model_ref, axis=axis, period=period, by=by, filters=filters)
            keys = ["period"] + (["group"] if by else [])
            assert list(got.columns) == [*keys, "label", "documents", "total", "share"]
            want = expected_trends(ws, model_ref, axis, period, by, keep)
            got = got.set_index([*keys, "label"]).sort_index()
            assert len(got) == len(want) > 0, (axis, period, by)
            assert got.index.equals(want.index)
            assert got.documents.tolist() == want.documents.tolist()
            assert got.total.tolist() == want.total.tolist()
            assert np.allclose(got.share, want.share)
        source = pd.read_parquet(CORPORA / "ungdc_sample.parquet").source.iloc[0]  # has commas: no parse()
        ungdc = trends(ws, model_ref, by="country", filters=Filters({"source": [source]}))
        assert set(ungdc.period) == {"2000"} and ungdc.group.nunique() == 30
        with pytest.raises(WorkspaceError, match="period must be one of year, month"):
            trends(ws, model_ref, period="week")
        with pytest.raises(WorkspaceError, match="cannot split trends by 'text'"):
            trends(ws, model_ref, by="text")
        assert trends(ws, model_ref, filters=Filters.parse(["country=NOWHERE"])).empty


def test_trends_keep_the_largest_groups(in_process_ws, model_ref):
    with Workspace(in_process_ws, create=False) as ws:
        every = trends(ws, model_ref, by="country")
        sizes = ws.conn.execute(
            "SELECT d.country, count(*) FROM classified c JOIN documents d USING (doc_id) WHERE c.model = ? "
            "AND d.date != '' GROUP BY d.country ORDER BY count(*) DESC, d.country LIMIT 3", (model_ref,)).fetchall()
        largest = [country for country, _ in sizes]  # by the documents a trend counts: dated ones
        top = trends(ws, model_ref, by="country", top=3)
        assert sorted(top.group.unique()) == sorted(largest)
        # the same rows as the full split, restricted to those groups
        want = every[every.group.isin(largest)].reset_index(drop=True)
        pd.testing.assert_frame_equal(top.reset_index(drop=True), want)
        # with a filter, the largest groups are those under the filter
        national = Filters.parse(["issuer_type=national"])
        top_national = trends(ws, model_ref, by="country", top=2, filters=national)
        assert top_national.group.nunique() == 2
        assert set(top_national.group) <= set(trends(ws, model_ref, by="country", filters=national).group)
        assert len(trends(ws, model_ref, by="country", top=10_000)) == len(every)
        with pytest.raises(WorkspaceError, match="top needs by"):
            trends(ws, model_ref, top=3)
        for bad in (0, -1, 2.5, True):
            with pytest.raises(WorkspaceError, match="top must be a whole number"):
                trends(ws, model_ref, by="country", top=bad)


# --------------------------------------------------------------------------------------------------- migration
def test_a_v1_workspace_is_migrated_with_its_counts(tmp_path, in_process_ws, model_ref):
    home = tmp_path / "old"
    shutil.copytree(in_process_ws, home)
    expected = snapshot(in_process_ws)
    raw = sqlite3.connect(home / DB_FILE)  # back to what cdpd wrote at schema v1: no counts tables, no triggers
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%counts%'"):
        raw.execute(f'DROP TRIGGER "{name}"')
    for table in ("label_counts", "group_counts", *ROLLUP_TABLES):
        raw.execute(f"DROP TABLE {table}")
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with Workspace(home) as ws:
        assert ws.schema_version == 2
        assert_counts_match(ws)
    assert snapshot(home) == expected
    with Workspace(home) as ws:  # opening again changes nothing
        assert ws.schema_version == 2
    assert snapshot(home) == expected
    with Workspace(home) as ws:  # and the triggers are there for what comes next
        doc_id = ws.conn.execute("SELECT doc_id FROM classified LIMIT 1").fetchone()[0]
        with ws.transaction() as conn:
            conn.execute("UPDATE predictions SET selected = 1 - selected WHERE doc_id = ? AND model = ?",
                         (doc_id, model_ref))
        assert_counts_match(ws)
