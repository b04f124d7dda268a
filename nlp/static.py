"""Static token embeddings distilled from the shipped MiniLM, so that semantic tagging needs no transformer pass.

Why. MiniLM reads a corpus document (~720 words, ~4 windows of 256 word pieces) in about a tenth of a second on 2
CPU cores even under bf16, so a tier that runs it tags a few documents per second at best. A static embedding gives
each word piece one fixed vector and a text the normalised sum of its pieces' vectors: a sparse matrix product,
thousands of documents per second, and a sentence's vector (evidence) costs the same as a passage's.

How (the model2vec recipe, ``model2vec.distill.distill_from_model`` 0.10, reimplemented here in a few lines because
its ``distill`` extra pins ``transformers<5.4`` while cdpd runs a newer one). Every word piece of the MiniLM
vocabulary except ``[unusedN]``, ``[CLS]``, ``[SEP]`` and ``[MASK]`` is read by MiniLM as ``[CLS] piece [SEP]`` and
mean-pooled over those three positions; the vectors are centred and projected on their first ``dims`` principal
components (eigenvectors of the covariance, each signed so that its largest score is positive); each row is then
weighted by SIF, ``1e-4 / (1e-4 + p)`` with ``p`` a Zipf frequency of the piece's rank in the vocabulary (frequent
pieces, which come first in the WordPiece vocabulary, count less). The table is kept in float16 (as model2vec keeps
it), indexed by MiniLM's own token ids, with zero rows for the excluded pieces, so texts are tokenized by the
shipped ``tokenizer.json`` and nothing else.

Determinism. fp32 forward passes in fixed batches and a float64 eigendecomposition: two distillations on one
machine give the same bytes (tested); the table's id is ``static:`` and the first 16 hex of the SHA-256 of its bytes.
It runs offline (the encoder is read by path) and takes about a minute of CPU (1-2 minutes on 2 shared cores).

Where. :func:`static_encoder` distils at first use and keeps the table as safetensors in
``$CDPD_MODELS/.encoders/`` (a dot folder: the registry never lists it); a model trained on it saves its own copy
(:meth:`StaticEncoder.save`), so loading a model, on this machine or a Dask worker, never distils.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .encoder import encoder_path
from .errors import ConfigError, ModelError

#: Bumped when the distillation recipe changes: a cached table of another recipe is not reused.
STATIC_RULE = "m2v-mean-pca-sif/v1"
DEFAULT_DIMS = 256
SIF_COEFFICIENT = 1e-4
STATIC_FILE = "static.safetensors"
_EXCLUDED = re.compile(r"\[unused\d+\]")
_lock = threading.Lock()


def _kept_ids(tokenizer) -> list[int]:
    """Token ids distilled, in vocabulary order (their Zipf rank): all but unused slots and the special markers
    that never stand for text ([CLS], [SEP], [MASK]); [PAD] and [UNK] are kept, as model2vec keeps them."""
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id}
    vocab = tokenizer.get_vocab()
    return [i for tok, i in sorted(vocab.items(), key=lambda kv: kv[1]) if not _EXCLUDED.fullmatch(tok)
            and i not in special]


def distill(dims: int | None = DEFAULT_DIMS, *, batch_size: int = 512, limit: int | None = None,
            progress=None) -> np.ndarray:
    """The static table, (vocabulary size, dims) float16; ``dims=None`` keeps all 384 components (rotated).

    ``limit`` distils only the first ``limit`` kept pieces (the others get zero rows): for tests, which check the
    recipe, not the quality. ``progress(done, total)`` is called after each batch.
    """
    import torch

    from .embeddings import configure_threads
    from .encoder import load_encoder

    configure_threads()
    tokenizer, model = load_encoder()
    ids = _kept_ids(tokenizer)[:limit] if limit else _kept_ids(tokenizer)
    raw = np.empty((len(ids), model.config.hidden_size), dtype=np.float32)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            piece = torch.tensor(ids[start : start + batch_size], dtype=torch.long)
            x = torch.stack([torch.full_like(piece, cls_id), piece, torch.full_like(piece, sep_id)], dim=1)
            out = model(input_ids=x, attention_mask=torch.ones_like(x), token_type_ids=torch.zeros_like(x))
            raw[start : start + len(piece)] = out.last_hidden_state.float().mean(dim=1).numpy()
            if progress:
                progress(min(start + batch_size, len(ids)), len(ids))
    raw = np.nan_to_num(raw).astype(np.float64)
    centred = raw - raw.mean(axis=0)
    cov = centred.T @ centred / max(len(raw) - 1, 1)
    _, vecs = np.linalg.eigh(cov)
    k = raw.shape[1] if dims is None else int(dims)
    if not 1 <= k <= raw.shape[1]:
        raise ConfigError(f"dims must be between 1 and {raw.shape[1]}, got {dims}")
    components = vecs[:, ::-1][:, :k]
    scores = centred @ components
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(k)])
    scores *= np.where(signs == 0, 1.0, signs)
    inv_rank = 1.0 / np.arange(2, len(ids) + 2)
    proba = inv_rank / inv_rank.sum()
    scores *= (SIF_COEFFICIENT / (SIF_COEFFICIENT + proba))[:, None]
    table = np.zeros((len(tokenizer.get_vocab()), k), dtype=np.float16)
    table[ids] = scores.astype(np.float16)
    return table


def table_id(table: np.ndarray) -> str:
    """Names a table by its content: ``static:<first 16 hex of the SHA-256 of its float16 bytes>``."""
    data = np.ascontiguousarray(table, dtype="<f2")
    return "static:" + hashlib.sha256(data.tobytes()).hexdigest()[:16]


class StaticEncoder:
    """Texts to L2-normalised vectors: the normalised sum of their word pieces' static vectors.

    Stateless once built (the tokenizer and the table are only read), so one encoder may serve many threads.
    """

    def __init__(self, table: np.ndarray):
        from tokenizers import Tokenizer

        self.table16 = np.ascontiguousarray(table, dtype=np.float16)
        self.table = self.table16.astype(np.float32)
        self.id = table_id(self.table16)
        self.dim = int(self.table.shape[1])
        tokenizer = Tokenizer.from_file(str(encoder_path() / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        if tokenizer.get_vocab_size() != len(self.table):
            raise ModelError(f"static table has {len(self.table)} rows but the tokenizer {tokenizer.get_vocab_size()} "
                             "pieces: it was distilled from another encoder")
        self._tokenizer = tokenizer

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of each text, without [CLS]/[SEP] and without truncation."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit vectors in the order of ``texts``; a text without known pieces gives zeros."""
        from scipy.sparse import csr_matrix

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.token_ids(texts)
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in ids], out=indptr[1:])
        flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(indptr[-1]))
        counts = csr_matrix((np.ones(len(flat), dtype=np.float32), flat, indptr),
                            shape=(len(ids), len(self.table)))
        summed = np.asarray(counts @ self.table, dtype=np.float32)
        norms = np.linalg.norm(summed, axis=1, keepdims=True)
        return summed / np.where(norms > 0, norms, 1.0)

    # -- storage -------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        from .embeddings import encoder_id

        save_file({"vectors": self.table16}, str(path),
                  metadata={"rule": STATIC_RULE, "id": self.id, "source": encoder_id()})

    @classmethod
    def load(cls, path: str | Path, expected_id: str | None = None) -> "StaticEncoder":
        """The table of ``path`` (safetensors: arrays only, nothing executed); refused if its content is not
        ``expected_id``."""
        from safetensors.numpy import load_file

        encoder = cls(load_file(str(path))["vectors"])
        if expected_id and encoder.id != expected_id:
            raise ModelError(f"{path}: static table {encoder.id} is not the expected {expected_id}")
        return encoder


def cache_folder() -> Path:
    """Where distilled tables are kept: ``$CDPD_MODELS/.encoders`` (beside the models trained on them)."""
    from .models import models_dir

    return models_dir() / ".encoders"


def cache_file(dims: int | None = DEFAULT_DIMS) -> Path:
    from .embeddings import encoder_id

    source = encoder_id().replace(":", "-")
    rule = hashlib.sha1(STATIC_RULE.encode()).hexdigest()[:8]
    return cache_folder() / f"static-{source}-{dims or 'all'}-{rule}.safetensors"


@lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> StaticEncoder:
    return StaticEncoder.load(path)


def static_encoder(dims: int | None = DEFAULT_DIMS, progress=None) -> StaticEncoder:
    """The static encoder distilled from the installed MiniLM: read from the cache folder, or distilled (about a
    minute of CPU, once per models folder) and written there atomically."""
    path = cache_file(dims)
    with _lock:
        if not path.is_file():
            table = distill(dims, progress=progress)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            StaticEncoder(table).save(tmp)
            os.replace(tmp, path)
        return _cached(str(path), path.stat().st_mtime_ns)
