"""Sentence embeddings from the offline MiniLM encoder, and a persistent cache of them.

:func:`embed` turns texts into L2-normalised 384-dimensional vectors (mean pooling, as all-MiniLM-L6-v2 is meant
to be used). A text longer than ``max_tokens`` word pieces is not truncated: it is cut into consecutive windows of
``max_tokens`` word pieces (each with its own [CLS] and [SEP]), every window is embedded, and the text's vector is
the token-weighted mean of its windows' vectors, re-normalised. Two thirds of the seed passages are longer than 256
word pieces; truncating them would hide their second half from the model.

:class:`EmbeddingCache` keeps vectors in their own SQLite file (``$CDPD_HOME/embeddings.sqlite`` by default), keyed
by the SHA-1 of the text and of what determines its vector (the encoder's weights, ``max_tokens``): retraining an
embedding model on the same units then costs seconds, not the minutes of encoding them again.

torch and transformers are imported inside functions only: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .encoder import MAX_TOKENS, encoder_path, load_encoder, mean_pool
from .errors import ConfigError

DIM = 384
CACHE_FILE = "embeddings.sqlite"
#: Bumped when the rule that turns a text into a vector changes (windows, pooling): old cache entries then miss.
EMBED_RULE = "mean-pool/windows/v1"

_threads_configured = False
_thread_lock = threading.Lock()


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask in a container), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_threads() -> int:
    """Use every available CPU for torch's intra-op threads, unless ``OMP_NUM_THREADS`` says otherwise.

    Done once per process, at the first :func:`embed`: a later ``torch.set_num_threads`` by the caller stands.
    With ``OMP_NUM_THREADS`` set (the test suite sets 1), torch keeps the count it read from it at start-up.
    """
    global _threads_configured
    import torch

    with _thread_lock:
        if not _threads_configured:
            _threads_configured = True
            if not os.environ.get("OMP_NUM_THREADS"):
                torch.set_num_threads(available_cpus())
    return torch.get_num_threads()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=4)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_id(path: str | Path | None = None) -> str:
    """Names the encoder's weights by their content: ``minilm:<first 16 hex of the safetensors' SHA-256>``."""
    weights = (Path(path) if path else encoder_path()) / "model.safetensors"
    stat = weights.stat()
    return "minilm:" + _file_digest(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)[:16]


def _windows(ids: list[int], size: int) -> list[list[int]]:
    if not ids:
        return [[]]
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def embed(texts: Sequence[str], *, batch_size: int = 64, max_tokens: int = MAX_TOKENS,
          device: str | None = None) -> np.ndarray:
    """(n, 384) float32 L2-normalised embeddings of ``texts``, in their order.

    Windows of all texts are sorted by length and encoded in batches of ``batch_size`` (little padding, one
    forward pass per batch) under ``torch.inference_mode``; on a GPU when one is available.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    if max_tokens < 3:
        raise ConfigError(f"max_tokens must be at least 3 (two special tokens and a word piece), got {max_tokens}")
    import torch

    configure_threads()
    tokenizer, model = load_encoder()
    device = device or default_device()
    if next(model.parameters()).device.type != torch.device(device).type:
        model.to(device)
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    # word pieces of every text without special tokens and without truncation; then windows of max_tokens - 2
    ids = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    windows: list[list[int]] = []
    owner: list[int] = []
    for i, pieces in enumerate(ids):
        for w in _windows(pieces, max_tokens - 2):
            windows.append([cls_id, *w, sep_id])
            owner.append(i)
    lengths = np.array([len(w) for w in windows])
    order = np.argsort(-lengths, kind="stable")  # longest first: a memory spike shows up at once, if at all
    vectors = np.empty((len(windows), DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = int(lengths[chunk].max())
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, j in enumerate(chunk):
                input_ids[row, : lengths[j]] = torch.tensor(windows[j], dtype=torch.long)
                mask[row, : lengths[j]] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            out = model(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))
            pooled = mean_pool(out.last_hidden_state, mask)
            vectors[chunk] = pooled.float().cpu().numpy()
    # a text's vector: the mean of its windows' pooled vectors, weighted by their word pieces
    weights = (lengths - 2).clip(min=1).astype(np.float32)
    owner_arr = np.asarray(owner)
    result = np.zeros((len(texts), DIM), dtype=np.float32)
    np.add.at(result, owner_arr, vectors * weights[:, None])
    return normalize_rows(result)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# ------------------------------------------------------------------------------------------------------ the cache


def default_cache_path() -> Path:
    return Path(os.environ.get("CDPD_HOME", "workspace")) / CACHE_FILE


_CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    key     TEXT PRIMARY KEY,   -- sha1 of (encoder id, rule, max_tokens, text)
    encoder TEXT NOT NULL,      -- the encoder id, so that a stale encoder's rows can be purged
    dim     INTEGER NOT NULL,
    vector  BLOB NOT NULL       -- float32, little-endian
) WITHOUT ROWID;
"""


class EmbeddingCache:
    """Embeddings on disk, keyed by the SHA-1 of text and encoder; computes only what it does not hold.

    ``path`` is a SQLite file (its folder is created) or ``":memory:"``; ``None`` means
    ``$CDPD_HOME/embeddings.sqlite``. Usable as a context manager. ``hits`` and ``misses`` count texts looked up.
    """

    def __init__(self, path: str | Path | None = None, *, max_tokens: int = MAX_TOKENS, batch_size: int = 64,
                 device: str | None = None, encoder: str | None = None):
        self.path = ":memory:" if str(path) == ":memory:" else Path(path) if path is not None else default_cache_path()
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.device = device
        self.encoder = encoder or encoder_id()
        self.hits = 0
        self.misses = 0
        if self.path != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_CACHE_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise ConfigError(f"{self.path}: not a usable embedding cache ({exc})") from None

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def key(self, text: str) -> str:
        h = hashlib.sha1()
        h.update(f"{self.encoder}\0{EMBED_RULE}\0{self.max_tokens}\0".encode())
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def _lookup(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):  # well under SQLite's limit on bound parameters
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, dim, blob in self.conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", part):
                vector = np.frombuffer(blob, dtype="<f4")
                if dim == DIM and len(vector) == DIM:
                    found[key] = vector
        return found

    def get_or_compute(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) embeddings of ``texts``: read from the cache, the missing ones computed and stored."""
        texts = list(texts)
        keys = [self.key(t) for t in texts]
        found = self._lookup(sorted(set(keys)))
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if key not in found:
                missing.setdefault(key, text)
        self.hits += len(texts) - sum(1 for k in keys if k in missing)
        self.misses += sum(1 for k in keys if k in missing)
        if missing:
            new = embed(list(missing.values()), batch_size=self.batch_size, max_tokens=self.max_tokens,
                        device=self.device)
            rows = [(key, self.encoder, DIM, vec.astype("<f4").tobytes()) for key, vec in zip(missing, new)]
            with self._transaction() as conn:
                conn.executemany("INSERT OR REPLACE INTO embeddings(key, encoder, dim, vector) VALUES (?, ?, ?, ?)",
                                 rows)
            found.update(zip(missing, new))
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out

    def purge_other_encoders(self) -> int:
        """Delete vectors of any other encoder than this cache's; returns how many."""
        with self._transaction() as conn:
            return conn.execute("DELETE FROM embeddings WHERE encoder != ?", (self.encoder,)).rowcount
