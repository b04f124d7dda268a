"""Classification on a Dask cluster: ``--dask local[:N]`` (a LocalCluster of N one-thread worker processes) or
``--dask tcp://HOST:PORT`` (an existing scheduler). Optional: ``pip install 'cdpd[dask]'``.

How work is split:

* The client process streams documents in **partitions** (never a whole-corpus list) and keeps a bounded number of
  them in flight (two per worker thread).
* Each **worker loads the model once**. The model's files (its safe on-disk format: skops, safetensors, JSON) reach
  every worker through a worker plugin, so a worker that joins later or is restarted after a crash gets them too;
  the loaded tagger is cached in the worker process by model ref and codebook fingerprint.
* **Who touches the workspace** depends on whether the workers see it (:func:`workspace_identity`: the same
  kernel, device and inode; they are asked at the start of a run):

  - If every worker does (a LocalCluster, ``--dask local[:N]``, or a scheduler whose workers run on this machine),
    a partition is a list of doc_ids: each worker reads those documents from the workspace, tags them and saves
    them in one transaction, exactly as the in-process path does (SQLite in WAL mode serialises the writers). The
    client only hands out ids, which keeps its CPU for the workers: on two cores, that is what lets two workers
    approach twice the in-process throughput.
  - Otherwise (workers on other machines) the client ships each partition as a shard of JSON lines (id, title,
    text), gets back per document what the workspace stores (passage spans, scores, selected labels, evidence)
    and is the only writer.

  Either way, predictions are keyed by (model, document), saving a document again replaces its rows, and a
  document counts as classified only once its partition is committed, so a run cut short (a dead worker, Ctrl-C)
  leaves the workspace consistent and running the command again tags exactly the documents that are missing.

Dask moves tasks and results with its own serialisation between processes of the cluster, which must be trusted
(a Dask cluster runs whatever code a client sends it); nothing is stored pickled, and no model is ever unpickled.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from .errors import CdpdError, ModelError
from .schema import Document

try:  # the base class of worker plugins; without the extra, connect() explains what to install
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - exercised by the test that hides dask
    _WorkerPlugin = object

if TYPE_CHECKING:
    from distributed import Client

    from .codebook import Codebook
    from .models import ModelInfo
    from .pipeline import TaggedDocument

EXTRA_HINT = "pip install 'cdpd[dask]'"
DEFAULT_PARTITION = 128  # documents per partition at most: ~0.75 s of linear-tier work on corpus documents
MIN_PARTITION = 16  # the smallest a shrinking partition gets: below it, per-partition costs show
CONNECT_TIMEOUT = 10.0
LOW_LEVEL_LOG = 16  # messages Dask keeps per stream for debugging (its default, 1,000, holds partitions in memory)
# A LocalCluster of ours has no dashboard and silences its logs, so nothing reads what the workers' statistical
# profiler samples (every task thread every 10 ms: about a tenth of a worker's CPU), the system monitor's history or
# the event-loop tick's "unresponsive" warnings (every 20 ms). Left at their defaults, an idle cluster of two workers
# costs about 0.09 of a core on polling alone; with these, 0.02. Memory limits are still enforced, checked every second.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
K = TypeVar("K")


class DaskError(CdpdError, ValueError):
    """Dask is missing, the cluster cannot be reached, or a partition could not be tagged: one line for the user."""

    code = "dask"


# -- where to run ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DaskTarget:
    """A LocalCluster (``address`` None; ``workers`` None means one per CPU) or a scheduler's address."""

    address: str | None = None
    workers: int | None = None

    def describe(self) -> str:
        if self.address:
            return f"the Dask scheduler at {self.address}"
        return f"a local Dask cluster of {self.workers or _cpus()} worker process(es)"


def parse_target(spec: str) -> DaskTarget:
    """``local``, ``local:N`` or ``tcp://HOST:PORT`` (``tls://`` too); anything else is a DaskError."""
    spec = (spec or "").strip()
    if spec == "local":
        return DaskTarget()
    if spec.startswith("local:"):
        n = spec.partition(":")[2]
        if not n.isdigit() or int(n) < 1:
            raise DaskError(f"--dask {spec!r}: the number of local workers must be a whole number >= 1 (local:2)")
        return DaskTarget(workers=int(n))
    match = _ADDRESS.match(spec)
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise DaskError(f"--dask {spec!r}: expected local, local:N or a scheduler address tcp://HOST:PORT")
    return DaskTarget(address=spec)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _distributed():
    try:
        import distributed
    except ImportError:
        raise DaskError(f"--dask needs Dask's distributed scheduler, which is not installed: {EXTRA_HINT}") from None
    return distributed


def _check_reachable(address: str, timeout: float) -> None:
    """Fail at once, in one line, when nothing listens at the address (the Dask client would retry until its
    timeout and then print a traceback)."""
    match = _ADDRESS.match(address)
    assert match is not None
    host = match.group(2).strip("[]")
    try:
        socket.create_connection((host, int(match.group(3))), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DaskError(f"cannot reach the Dask scheduler at {address} ({reason}); start one with `dask scheduler` "
                        "and workers with `dask worker ADDRESS`") from None


@contextmanager
def connect(target: DaskTarget | str, *, timeout: float = CONNECT_TIMEOUT) -> Iterator["Client"]:
    """A Dask client for ``target``; a LocalCluster is started (one thread per worker process, no dashboard) and
    shut down on exit. A scheduler that cannot be reached, or that has no worker within ``timeout`` seconds, is a
    DaskError."""
    target = parse_target(target) if isinstance(target, str) else target
    distributed = _distributed()
    import dask

    # Dask keeps the last `low-level-log-length` (1,000) messages of every batched stream for debugging; each of our
    # messages carries a partition (up to a megabyte of text), so that log alone would grow the client (and a local
    # scheduler) by up to a gigabyte over a long run. A short log keeps memory flat.
    with dask.config.set({"distributed.admin.low-level-log-length": LOW_LEVEL_LOG}):
        if target.address is None:
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                cluster = distributed.LocalCluster(
                    n_workers=target.workers or _cpus(), threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR,
                    # the scheduler's HTTP routes (health, metrics) on a free local port: not 8787, which a
                    # dashboard or a second cdpd run may hold (Dask would warn and move)
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            try:
                with distributed.Client(cluster) as client:
                    yield client
            finally:
                cluster.close()
            return
        _check_reachable(target.address, timeout)
        try:
            client = distributed.Client(target.address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise DaskError(f"cannot connect to the Dask scheduler at {target.address} ({exc})") from None
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except TimeoutError:
                raise DaskError(f"the Dask scheduler at {target.address} has no worker after {timeout:g} s; start "
                                f"some with `dask worker {target.address}`") from None
            yield client
        finally:
            client.close()


# -- the model, shipped to workers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelPayload:
    """What a worker needs to load a model: its ref, its files as bytes (relative path -> content; none for the
    lexicon tagger) and the codebook."""

    ref: str
    files: dict[str, bytes] = field(repr=False)
    codebook: "Codebook" = field(repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.ref, self.codebook.fingerprint()


def model_payload(info: "ModelInfo", codebook: "Codebook") -> ModelPayload:
    """The files of the model folder ``info.path`` (as saved by ``nlp.models.save_model``)."""
    files: dict[str, bytes] = {}
    if info.path is not None:
        root = Path(info.path)
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                files[rel.as_posix()] = path.read_bytes()
    return ModelPayload(info.ref, files, codebook)


class ModelPlugin(_WorkerPlugin):
    """Puts the model's payload on every worker, present and future; the model itself loads at the first task."""

    idempotent = False

    def __init__(self, name: str, payload: ModelPayload):
        self.name = name
        self.payload = payload

    def setup(self, worker=None) -> None:
        with _LOCK:
            _PAYLOADS[self.name] = self.payload

    def teardown(self, worker=None) -> None:
        with _LOCK:
            _PAYLOADS.pop(self.name, None)


# worker-process state: payloads by plugin name, loaded runners by model key (the two most recent), load counts
_LOCK = threading.Lock()
_TAGGING = threading.Lock()  # one partition tagged at a time per process (run workers with one thread each)
_PAYLOADS: dict[str, ModelPayload] = {}
_RUNNERS: "OrderedDict[tuple[str, str], Any]" = OrderedDict()
_MAX_RUNNERS = 2
LOADS: dict[str, int] = {}


def _load_runner(payload: ModelPayload):
    """A DocumentTagger for the payload: its files written to a temporary registry folder and loaded from there by
    ``nlp.models.load_model`` (skops with trusted types only, safetensors, JSON)."""
    from .models import load_model
    from .pipeline import DocumentTagger
    from .text import TextProcessor

    name, _, version = payload.ref.partition("@")
    tmp = Path(tempfile.mkdtemp(prefix="cdpd-dask-model-"))
    try:
        if payload.files:
            folder = tmp / name / version
            for rel, data in payload.files.items():
                target = folder / rel
                if ".." in Path(rel).parts or Path(rel).is_absolute():
                    raise ModelError(f"model file {rel!r}: not a relative path inside the model folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            tagger, _info = load_model(payload.ref, payload.codebook, folder=tmp)
        else:
            tagger, _info = load_model(name, payload.codebook, folder=tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DocumentTagger(tagger, TextProcessor(payload.codebook))


def worker_runner(plugin: str):
    """The model behind plugin ``plugin``, loaded once per worker process (thread-safe)."""
    with _LOCK:
        payload = _PAYLOADS.get(plugin)
        if payload is None:
            raise RuntimeError(f"model plugin {plugin!r} is not installed on this worker")
        runner = _RUNNERS.get(payload.key)
        if runner is None:
            runner = _load_runner(payload)
            LOADS[payload.ref] = LOADS.get(payload.ref, 0) + 1
            _RUNNERS[payload.key] = runner
            while len(_RUNNERS) > _MAX_RUNNERS:
                _RUNNERS.popitem(last=False)
        else:
            _RUNNERS.move_to_end(payload.key)
    return runner


def preload(plugin: str) -> int:
    """Load the model of ``plugin`` now (``client.run(preload, name)`` loads it on every worker at once);
    returns how many times this process has loaded it."""
    worker_runner(plugin)
    return LOADS.get(_PAYLOADS[plugin].ref, 0)


def model_loads() -> dict[str, int]:
    """How many times this process loaded each model (``client.run(model_loads)`` asks every worker)."""
    return dict(LOADS)


# -- partitions --------------------------------------------------------------------------------------------------
def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` items (the last one shorter), read lazily from ``items``."""
    if size < 1:
        raise ValueError("partition size must be at least 1")
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def guided(items: Iterable[Any], total: int, workers: int, largest: int = DEFAULT_PARTITION,
           smallest: int = MIN_PARTITION) -> Iterator[list[Any]]:
    """Partitions that shrink as the work left shrinks (guided self-scheduling): each about what is left divided by
    twice the number of workers, between ``smallest`` and ``largest``. With partitions of one size a run ends with
    one worker busy on a full partition while the others wait; here the last partitions are small, so the workers
    finish together, and a small corpus is split among all of them. ``total`` is how many items are expected (an
    estimate is fine: sizes only depend on it)."""
    if largest < 1 or smallest < 1 or workers < 1:
        raise ValueError("partition sizes and workers must be at least 1")
    smallest = min(smallest, largest)
    items = iter(items)
    left = total
    while True:
        size = max(smallest, min(largest, math.ceil(max(left, 0) / (2 * workers))))
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def encode_shard(docs: Sequence[Document]) -> bytes:
    """A partition as JSON lines: id, title and text are all that tagging reads."""
    return "".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n"
                   for d in docs).encode("utf-8")


def decode_shard(shard: bytes) -> list[Document]:
    return [Document(id=r["id"], text=r["text"], title=r["title"])
            for r in map(json.loads, io.StringIO(shard.decode("utf-8")))]


@dataclass(frozen=True)
class PassageSpan:
    """Where a passage lies in the tagged text: what the workspace stores of it."""

    index: int
    start: int
    end: int
    n_words: int


def tag_shard(plugin: str, shard: bytes) -> list[dict[str, Any]]:
    """The task run on a worker: tag one partition with the worker's cached model; per document, its passage spans,
    scores, selected labels and evidence (sentences and tokens stay on the worker)."""
    runner = worker_runner(plugin)
    docs = decode_shard(shard)
    out = []
    with _TAGGING:  # spaCy's vocabulary and the tagger's caches are not shared between threads safely
        tagged = list(runner.tag(docs, batch_size=max(len(docs), 1)))
    for t in tagged:
        spans = np.array([(p.index, p.start, p.end, p.n_words) for p in t.passages], dtype=np.int64).reshape(-1, 4)
        out.append({"passages": spans, "scores": t.scores, "passage_scores": t.passage_scores,
                    "selected": t.selected, "evidence": t.evidence})
    return out


def workspace_identity(home: str | Path) -> str | None:
    """Which file the workspace at ``home`` is, as this process sees it: the running kernel (its boot id) and the
    database file's device and inode; None if there is none. Two processes that agree open one file through one
    kernel, so SQLite's locks and its WAL index work between them. Another machine, a copy, or the same path
    mounted over the network from elsewhere do not agree."""
    from .workspace import DB_FILE

    try:
        st = os.stat(Path(home) / DB_FILE)
    except OSError:
        return None
    try:
        kernel = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux
        kernel = socket.gethostname()
    return f"{kernel}:{st.st_dev}:{st.st_ino}"


def tag_workspace_partition(plugin: str, home: str, model: str, doc_ids: list[int],
                            identity: str | None = None) -> tuple[int, int]:
    """The task run on a worker that sees the client's workspace file (:func:`workspace_identity`): read the
    partition's documents from the workspace at ``home``, tag them with the worker's cached model and save them in
    one transaction, as the in-process path does. Returns (documents, passages) saved.

    Saving is idempotent (a document saved again replaces its rows and its counts), so a partition that Dask
    retries after its worker died, even after it committed, leaves no duplicates. With ``identity`` (what
    :func:`workspace_identity` gave the client), a worker that sees another file at ``home`` (one that joined the
    cluster from another machine) refuses the partition rather than write there."""
    from .jobs import tag_and_save
    from .workspace import Workspace

    if identity is not None and workspace_identity(home) != identity:
        raise DaskError(f"a Dask worker on {socket.gethostname()} does not see the workspace at {home} that cdpd "
                        "uses (another machine, or another file at that path); what was written is kept: run the "
                        "command again, and cdpd will ship the texts to the workers instead")
    with Workspace(home, create=False) as ws:
        return tag_and_save(ws, worker_runner(plugin), model, doc_ids, lock=_TAGGING)


def _rebuild(doc: Document, result: dict[str, Any]) -> "TaggedDocument":
    from .pipeline import TaggedDocument

    passages = [PassageSpan(*map(int, row)) for row in result["passages"]]
    return TaggedDocument(doc, passages, result["scores"], result["passage_scores"], result["selected"],
                          result["evidence"])


# -- the client side ---------------------------------------------------------------------------------------------
class DaskTagger:
    """Tags documents on a Dask cluster, with ``DocumentTagger``'s ``tag`` interface (results in input order) and
    :meth:`tag_partitions` (results per partition, as they come back). Use as a context manager: on exit the
    model plugin is removed from the cluster.

    ``task`` replaces :func:`tag_shard` and ``workspace_task`` :func:`tag_workspace_partition` (called with the same
    arguments on a worker; tests use them to make a worker die)."""

    def __init__(self, client: "Client", tagger, info: "ModelInfo", codebook: "Codebook", *,
                 partition_size: int | None = None, max_in_flight: int | None = None,
                 task: Callable[[str, bytes], list[dict[str, Any]]] | None = None,
                 workspace_task: Callable[[str, str, str, list[int], str | None], tuple[int, int]] | None = None):
        if partition_size is not None and partition_size < 1:
            raise ValueError("partition size must be at least 1")
        self.client = client
        self.labels = tagger.labels
        self.thresholds_ = tagger.thresholds_
        self.ref = info.ref
        self.partition_size = partition_size or DEFAULT_PARTITION
        self.fixed_partitions = partition_size is not None  # else they shrink toward the end of a workspace run
        self.threads = sum(client.nthreads().values()) or 1
        self.max_in_flight = max_in_flight or 2 * self.threads
        self.task = task or tag_shard
        self.workspace_task = workspace_task or tag_workspace_partition
        self.plugin = f"cdpd-model-{info.ref}-{uuid.uuid4().hex[:8]}"
        self._token = uuid.uuid4().hex[:12]
        client.register_plugin(ModelPlugin(self.plugin, model_payload(info, codebook)), name=self.plugin)

    def __enter__(self) -> "DaskTagger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.unregister_worker_plugin(self.plugin)
        except Exception:  # noqa: BLE001 - a cluster going away takes its plugins with it
            pass

    def shares_workspace(self, home: str | Path) -> bool:
        """Whether every worker sees the workspace at ``home`` as this process does (:func:`workspace_identity`):
        so on a LocalCluster (``--dask local[:N]``), and on a scheduler reached by address when its workers run on
        this machine. The workers are asked; a cluster with none, or one that cannot answer, does not share."""
        home = str(Path(home).resolve())
        mine = workspace_identity(home)
        if mine is None:
            return False
        try:
            seen = self.client.run(workspace_identity, home)
        except Exception:  # noqa: BLE001 - a worker that cannot answer cannot be trusted with the file
            return False
        return bool(seen) and all(identity == mine for identity in seen.values())

    def warm_up(self) -> None:
        """Load the model on every worker now, in parallel (otherwise each loads it with its first partition)."""
        self.client.run(preload, self.plugin)

    def describe(self) -> str:
        size = (f"partitions of {self.partition_size} documents" if self.fixed_partitions else
                f"partitions of up to {self.partition_size} documents, smaller toward the end")
        return f"{len(self.client.nthreads())} worker(s), {self.threads} thread(s), {size}"

    def partitions(self, items: Iterable[Any], total: int) -> Iterator[list[Any]]:
        """``items`` (about ``total`` of them) in partitions: of ``partition_size`` if one was given, else
        :func:`guided` ones, shrinking as the run nears its end so that the workers finish together."""
        if self.fixed_partitions:
            return chunked(items, self.partition_size)
        return guided(items, total, self.threads, largest=self.partition_size)

    def workspace_partitions(self, ws) -> Iterator[list[int]]:
        """The doc_ids of the documents of ``ws`` this model has not classified, in :meth:`partitions`."""
        ids = itertools.chain.from_iterable(ws.unclassified_ids(self.ref, batch_size=self.partition_size))
        return self.partitions(ids, ws.count_unclassified(self.ref))

    def document_partitions(self, ws) -> Iterator[list[tuple[int, Document]]]:
        """The same as (doc_id, document) pairs, for workers that do not share the workspace."""
        docs = itertools.chain.from_iterable(ws.unclassified(self.ref, batch_size=self.partition_size))
        return self.partitions(docs, ws.count_unclassified(self.ref))

    def tag(self, docs: Iterable[Document], batch_size: int | None = None) -> Iterator["TaggedDocument"]:
        """Every document tagged, in input order (``batch_size`` is ignored: partitions have ``partition_size``)."""
        for _key, tagged in self.tag_partitions(((None, part) for part in chunked(docs, self.partition_size)),
                                                ordered=True):
            yield from tagged

    def tag_partitions(self, parts: Iterable[tuple[K, Sequence[Document]]], *,
                       ordered: bool = False) -> Iterator[tuple[K, list["TaggedDocument"]]]:
        """(key, documents) partitions in, (key, tagged documents) out: as they complete, or in input order with
        ``ordered``. At most ``max_in_flight`` partitions are submitted or held back at a time, so memory does not
        grow with the corpus. A partition whose workers died too often (Dask retries it on another worker first)
        is a DaskError; partitions yielded before it were complete."""
        jobs = (((key, docs), (self.task, self.plugin, encode_shard(docs)), docs[0].id, len(docs))
                for key, docs in parts if docs)
        for (key, docs), results in self._run(jobs, ordered=ordered):
            tagged = [_rebuild(doc, res) for doc, res in zip(docs, results)]
            if len(tagged) != len(docs):
                raise DaskError(f"{len(tagged)} results for {len(docs)} documents from {docs[0].id}")
            yield key, tagged

    def tag_workspace(self, home: str | Path, model: str, batches: Iterable[list[int]]) -> Iterator[tuple[int, int]]:
        """Partitions of doc_ids in, (documents, passages) saved per partition out, as they complete: the workers
        read and write the workspace at ``home`` themselves (:func:`tag_workspace_partition`), so only ids and two
        numbers cross the cluster. Only for workers that see the same file (:meth:`shares_workspace`); each checks
        that it does before it writes."""
        home = str(Path(home).resolve())
        identity = workspace_identity(home)
        jobs = ((None, (self.workspace_task, self.plugin, home, model, list(ids), identity), f"doc_id {ids[0]}",
                 len(ids)) for ids in batches if ids)
        for _none, counts in self._run(jobs, ordered=False):
            yield counts

    def _run(self, jobs: Iterable[tuple[Any, tuple, str, int]], *, ordered: bool) -> Iterator[tuple[Any, Any]]:
        """(meta, (function, *args), first document, documents) jobs in, (meta, result) out, with at most
        ``max_in_flight`` jobs submitted or held back for ordering at a time."""
        distributed = _distributed()
        jobs = iter(jobs)
        pending: dict[Any, tuple[int, Any, str, int]] = {}
        done: dict[int, tuple[Any, Any]] = {}
        completed = distributed.as_completed()
        seq = emitted = 0
        exhausted = False

        def fill() -> None:
            nonlocal seq, exhausted
            while not exhausted and len(pending) + len(done) < self.max_in_flight:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                    return
                meta, (fn, *args), first, size = job
                future = self.client.submit(fn, *args, pure=False, key=f"cdpd-tag-{self._token}-{seq}")
                pending[future] = (seq, meta, first, size)
                completed.add(future)
                seq += 1

        try:
            fill()
            while pending:
                future = next(completed)
                number, meta, first, size = pending.pop(future)
                try:
                    result = future.result()
                except distributed.KilledWorker as exc:
                    raise DaskError(
                        f"partition {number} ({size} documents from {first}) killed the Dask workers that "
                        f"ran it ({exc}); what was written is kept: run the command again to resume") from None
                finally:
                    future.release()
                if ordered:
                    done[number] = (meta, result)
                    fill()
                    while emitted in done:
                        yield done.pop(emitted)
                        emitted += 1
                        fill()
                else:
                    fill()
                    yield meta, result
        finally:
            if pending:
                self.client.cancel(list(pending))


def classify_workspace(ws, runner: DaskTagger, *, progress=None, shared: bool | None = None) -> int:
    """Tag on the cluster every document of ``ws`` that ``runner``'s model has not classified. Returns the number
    of documents saved; each partition is saved in one transaction as it comes back, so a run cut short keeps what
    it finished and a re-run tags only what is missing.

    Who reads and writes the workspace: with ``shared`` (by default, when every worker sees the workspace file as
    this process does: a LocalCluster, or a scheduler whose workers run on this machine) the workers do, as the
    in-process path does, and only doc_ids cross the cluster (SQLite in WAL mode takes one writer at a time; a
    partition holds the lock for about a tenth of its time). Otherwise (workers on other machines) this process
    ships each partition's texts as JSON lines and writes what comes back."""
    if shared is None:
        shared = runner.shares_workspace(ws.home)
    saved = 0
    if shared:
        for n_docs, _passages in runner.tag_workspace(ws.home, runner.ref, runner.workspace_partitions(ws)):
            saved += n_docs
            if progress is not None:
                progress.update(n_docs)
        return saved
    batches = runner.document_partitions(ws)
    for ids, tagged in runner.tag_partitions((([i for i, _ in b], [d for _, d in b]) for b in batches)):
        ws.save_predictions(runner.ref, list(zip(ids, tagged)), runner.thresholds_)
        saved += len(ids)
        if progress is not None:
            progress.update(len(ids))
    return saved
