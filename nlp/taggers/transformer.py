"""The transformer tier: all-MiniLM-L6-v2 fine-tuned with one multi-label head over every codebook label.

Model
  The MiniLM encoder (:func:`nlp.encoder.load_encoder`, deep-copied so the shared cached copy is never trained),
  mean pooling over real tokens (as the sentence-transformers model does), dropout and one ``Linear`` layer with
  one logit per label of every axis. Scores are sigmoids of those logits.

Training (:meth:`TransformerTagger.fit`; the loop is :func:`nlp.taggers.transformer_training.train`)
  * On *passages*: each passage of a unit (at most ``max_tokens`` word pieces, the rest truncated) is labelled
    with its unit's labels. Passages, not whole units, because passages are what the tagger scores at prediction
    time (documents are cut into passages, scored, aggregated by max): training on the same kind of input keeps
    the train/predict mismatch small. A unit's label may rest on a sentence in another of its passages (little
    noise: 1.17 passages a seed unit) or past the truncation point, which costs more: at 256 tokens, 65% of the
    1,813 seed passages are cut and 35% of their tokens are never read (in training or prediction alike).
  * Sliding windows (``stride`` > 0; 0, the default, truncates): a passage longer than ``max_tokens`` is read as
    overlapping windows of ``max_tokens`` pieces starting every ``stride`` pieces, each a training example with
    its unit's labels; at prediction a passage scores the max over its windows, so nothing is left unread. It
    costs about one more encoder pass per ``stride`` pieces past the first window: meant for a GPU (issue 13,
    item 6), with ``freeze_layers=0``.
  * A seeded validation split of ``validation`` of the *units* (never split between their passages): for every
    label with two or more positive units, at least one positive unit stays in training. The validation units are
    scored as documents (max over passages) after each epoch: micro-F1 at thresholds tuned on them chooses the
    epoch (early stopping after ``patience`` epochs without improvement; the best epoch's weights are restored),
    and the best epoch's per-label thresholds (:func:`nlp.metrics.tune_thresholds`) become ``thresholds_``.
  * Loss: ``BCEWithLogitsLoss`` with per-label ``pos_weight`` = negatives/positives among training passages,
    clipped to [1, ``max_pos_weight``]. AdamW (``lr`` for the encoder, ``head_lr`` for the head), linear warm-up
    over the first ``warmup`` fraction of steps, then linear decay to zero.
  * Data: Hugging Face ``datasets`` (``Dataset.from_dict`` of texts and label vectors, ``.map`` to tokenize,
    ``set_format("torch")``), in-memory (no cache files); batches of similar lengths (seeded shuffle, then sorted
    within windows of 50 batches), padded per batch to a multiple of 16 tokens.
  * CPU path: the embeddings and the lower ``freeze_layers`` of the 6 layers are frozen and run in eval mode (no
    dropout), so their output for a passage never changes: it is computed once before the first epoch and cached
    (bf16 when training in bf16, else fp32; ~1.5 KB a token in fp32, ~0.5 GB for the seed data), and each step runs
    only the upper layers and the head, forward and backward. ``precision="auto"`` trains under bf16 autocast on a
    CPU with AMX-BF16 (master weights stay fp32). With the defaults (4 of 6 layers frozen, 4 epochs) the fit on the
    1,296 training units of the standard held-out split took 15 min on 2 shared cores (benchmarks/RESULTS.md);
    ``freeze_layers=0`` fine-tunes everything, for a GPU.

Inference (:meth:`TransformerTagger.passage_proba`)
  Batched under ``torch.inference_mode``: passages tokenized once, sorted by length and batched
  (``predict_batch_size``; length bucketing: little padding), results put back in input order; torch threads =
  ``OMP_NUM_THREADS`` if set, else the CPUs this process may use; the GPU when ``device`` resolves to CUDA.
  ``precision``: ``"fp32"``; ``"bf16"``: a bf16 copy of the encoder run under autocast (layer norms and the head in
  fp32); ``"auto"``: bf16 where the hardware computes it natively (CUDA with bf16, a CPU with AMX-BF16), else
  fp32. ``quantize=True`` (CPU): a copy of the encoder whose Linear layers are dynamically quantized to int8.
  Speed and F1 of each path: benchmarks/transformer_speed.py and its section of benchmarks/RESULTS.md.

Evidence (:meth:`TransformerTagger.sentence_contributions`)
  Each sentence is scored *alone* (all sentences of the given passages in one length-bucketed batch) and its
  contribution to a label is its score minus the score of an empty input (the model's prior for that label):
  positive when the sentence by itself pushes the label up, largest for the sentence that says most about it.

Storage (:meth:`save_state`/:meth:`load_state`)
  ``transformer.safetensors`` holds the encoder and head weights (``safetensors.torch``), next to the encoder's
  ``config.json`` and tokenizer files, so the model folder is self-contained; loading builds the encoder from the
  config with ``transformers`` and reads the weights from safetensors: never ``torch.load``, never pickle.

``torch``, ``transformers`` and ``datasets`` are imported inside the methods: importing :mod:`nlp.taggers` stays
cheap for the other tiers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, ModelError
from ..text import Passage
from .base import NotFittedError, Tagger, Units, aggregate_max, register_tagger
from ..encoder import refuse_remote_code
from .shared import sigmoid

WEIGHTS_FILE = "transformer.safetensors"
#: Files of the encoder folder copied next to the weights (those present are copied; config.json is required).
ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
PRECISIONS = ("auto", "fp32", "bf16")
#: Batches are padded to a multiple of this many tokens: a few distinct shapes, so oneDNN builds (JIT-compiles) few
#: kernels, and shapes that fit AMX tiles; at most 15 padding tokens a row.
PAD_MULTIPLE = 16

Progress = Callable[[str], None]
#: Guards the one-time build of a tagger's inference copy and prior: threads sharing a tagger build them once (an
#: int8 or bf16 copy of the encoder is tens of MB). Re-entrant: the prior is computed with the inference copy.
_STATE_LOCK = threading.RLock()


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def torch_threads() -> int:
    """Threads for torch on CPU: ``OMP_NUM_THREADS`` when set to a positive integer, else the usable CPUs."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _threads(n: int):
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AMX-BF16 tiles (oneDNN then runs bf16 matmuls about twice as fast as fp32)."""
    import torch

    try:
        return bool(torch._C._cpu._get_cpu_capability().get("amx_bf16"))
    except Exception:  # private API: absent or changed in another torch version
        return False


def _check_int(name: str, value, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"transformer tagger: {name} must be an integer {bound}, got {value!r}")


def _check_float(name: str, value, low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ConfigError(f"transformer tagger: {name} must be a number in {lo}{low}, {high}{hi}, got {value!r}")


def _make_head_module(hidden: int, n_labels: int, dropout: float):
    import torch

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = torch.nn.Dropout(dropout)
            self.linear = torch.nn.Linear(hidden, n_labels)

        def forward(self, pooled):
            return self.linear(self.dropout(pooled))

    return Head()


@register_tagger("transformer")
class TransformerTagger(Tagger):
    _param_names = ("epochs", "lr", "head_lr", "batch_size", "predict_batch_size", "max_tokens", "stride",
                    "freeze_layers", "dropout", "weight_decay", "warmup", "validation", "patience", "max_pos_weight",
                    "seed", "device", "precision", "quantize")

    def __init__(self, codebook, *, epochs: int = 4, lr: float = 1e-4, head_lr: float = 2e-3, batch_size: int = 16,
                 predict_batch_size: int = 32, max_tokens: int = 256, stride: int = 0, freeze_layers: int = 4,
                 dropout: float = 0.1,
                 weight_decay: float = 0.01, warmup: float = 0.1, validation: float = 0.15, patience: int = 1,
                 max_pos_weight: float = 50.0, seed: int = 0, device: str = "auto", precision: str = "auto",
                 quantize: bool = False, progress: Progress | None = None):
        super().__init__(codebook)
        self.epochs = epochs
        self.lr = lr
        self.head_lr = head_lr
        self.batch_size = batch_size
        self.predict_batch_size = predict_batch_size
        self.max_tokens = max_tokens
        self.stride = stride
        self.freeze_layers = freeze_layers
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.validation = validation
        self.patience = patience
        self.max_pos_weight = max_pos_weight
        self.seed = seed
        self.device = device
        self.precision = precision
        self.quantize = quantize
        self.progress: Progress = progress or _stderr
        self.all_labels = [(axis, lab) for axis, labs in self.labels.items() for lab in labs]
        offsets = np.r_[0, np.cumsum([len(labs) for labs in self.labels.values()])]
        self._slices = {axis: slice(int(a), int(b)) for axis, a, b in zip(self.labels, offsets[:-1], offsets[1:])}
        self.tokenizer_ = None
        self.encoder_ = None
        self.head_ = None
        self.history_: list[dict[str, float]] = []
        self._check_params()

    # -- parameters --------------------------------------------------------------------------------------------
    def set_params(self, **params) -> "TransformerTagger":
        old = self.get_params()
        super().set_params(**params)
        try:
            self._check_params()
        except ValueError:
            super().set_params(**old)
            raise
        self._forget_inference_state()
        return self

    def _check_params(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_float("lr", self.lr, 0.0, 1.0, low_open=True)
        _check_float("head_lr", self.head_lr, 0.0, 1.0, low_open=True)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("predict_batch_size", self.predict_batch_size, 1)
        _check_int("max_tokens", self.max_tokens, 8, 512)
        _check_int("stride", self.stride, 0, self.max_tokens - 2)
        _check_int("freeze_layers", self.freeze_layers, 0, 64)
        _check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        _check_float("warmup", self.warmup, 0.0, 1.0, high_open=True)
        _check_float("validation", self.validation, 0.0, 1.0, high_open=True)
        _check_int("patience", self.patience, 0)
        _check_float("max_pos_weight", self.max_pos_weight, 1.0, 1e6)
        _check_int("seed", self.seed, 0)
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError("transformer tagger: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', "
                             f"got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"transformer tagger: precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if not isinstance(self.quantize, (bool, np.bool_)):
            raise ConfigError(f"transformer tagger: quantize must be true or false, got {self.quantize!r}")

    # -- devices and precision ---------------------------------------------------------------------------------
    def _torch_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"transformer tagger: device {self.device!r} asked for, but CUDA is not available")
        return device

    def _use_bf16(self, device) -> bool:
        import torch

        if self.precision == "fp32":
            return False
        if self.precision == "bf16":
            return True
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        return cpu_has_native_bf16()

    def _autocast(self, device, enabled: bool):
        import torch

        if not enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    # -- the network -------------------------------------------------------------------------------------------
    def _forward(self, encoder, head, input_ids, attention_mask):
        from ..encoder import mean_pool

        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return head(mean_pool(hidden, attention_mask).float())

    def _check_fitted(self) -> None:
        if self.encoder_ is None or self.head_ is None:
            raise NotFittedError("transformer tagger is not fitted: call fit() or load a trained model")

    def _forget_inference_state(self) -> None:
        for key in ("_inference", "_prior_cache", "_window_tok"):
            self.__dict__.pop(key, None)

    def _inference_model(self):
        """(device, encoder, head, bf16) for prediction, made once on first use: with ``quantize`` (CPU) a copy of
        the encoder with int8 Linear layers; with bf16 a copy with bf16 weights (run under autocast, so layer norms
        still compute in fp32), which saves casting every weight on every batch. While fitting, validation scores
        come from the model being trained, under autocast alone."""
        cached = self.__dict__.get("_inference")
        if cached is None:
            with _STATE_LOCK:
                cached = self.__dict__.get("_inference")
                if cached is None:
                    cached = self.__dict__["_inference"] = self._build_inference_model()
        return cached

    def _build_inference_model(self):
        import torch

        self._check_fitted()
        device = self._torch_device()
        encoder, head = self.encoder_, self.head_
        fitting = bool(self.__dict__.get("_fitting"))
        if self.quantize and device.type == "cpu" and not fitting:
            encoder = quantize_int8(encoder)
            use_bf16 = False  # int8 kernels replace the matmuls bf16 would speed up
        else:
            use_bf16 = self._use_bf16(device)
            encoder = encoder.to(device)
            if use_bf16 and not fitting:
                encoder = copy.deepcopy(encoder).to(torch.bfloat16)
        head = head.to(device)
        encoder.eval()
        head.eval()
        return device, encoder, head, use_bf16

    # -- tokens and batches ------------------------------------------------------------------------------------
    def _windows(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Sliding windows (``stride`` > 0): each text longer than ``max_tokens`` word pieces (with [CLS] and [SEP])
        as windows of ``max_tokens`` - 2 pieces starting every ``stride`` pieces, the last one ending where the text
        does, cut from the text at the pieces' character offsets; shorter texts as they are. Returns the window
        texts and the index of the text each came from. With ``stride`` 0 the texts come back as they are (read up
        to ``max_tokens`` pieces, the rest truncated)."""
        texts = list(texts)
        if not self.stride or not texts:
            return texts, np.arange(len(texts))
        width = self.max_tokens - 2
        offsets = self._window_tokenizer()(texts, add_special_tokens=False, truncation=False, verbose=False,
                                           return_offsets_mapping=True, return_attention_mask=False,
                                           return_token_type_ids=False)["offset_mapping"]
        out, owner = [], []
        for i, (text, spans) in enumerate(zip(texts, offsets)):
            if len(spans) <= width:
                out.append(text)
                owner.append(i)
                continue
            for a in [*range(0, len(spans) - width, self.stride), len(spans) - width]:
                out.append(text[spans[a][0]:spans[a + width - 1][1]])
                owner.append(i)
        return out, np.asarray(owner, dtype=int)

    def _window_tokenizer(self):
        """A copy of the tagger's tokenizer for :meth:`_windows`, which reads whole texts (no truncation): a fast
        tokenizer keeps its truncation setting in itself (see :func:`private_tokenizer`), so the copy that
        :meth:`_tokenize` calls with ``max_tokens`` is never called otherwise, whatever another thread does."""
        tokenizer = self.__dict__.get("_window_tok")
        if tokenizer is None:
            with _STATE_LOCK:
                tokenizer = self.__dict__.get("_window_tok")
                if tokenizer is None:
                    tokenizer = self.__dict__["_window_tok"] = private_tokenizer(self.tokenizer_)
        return tokenizer

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer_(list(texts), truncation=True, max_length=self.max_tokens,
                               return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    def _logits(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_all_labels) logits; texts are sorted by token length and batched, then put back in input order."""
        n_out = len(self.all_labels)
        if not len(texts):
            return np.zeros((0, n_out), dtype=np.float32)
        import torch

        device, encoder, head, use_bf16 = self._inference_model()
        ids = self._tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(ids), n_out), dtype=np.float32)
        pad = self.tokenizer_.pad_token_id or 0
        bs = self.predict_batch_size
        with _threads(torch_threads()), torch.inference_mode(), self._autocast(device, use_bf16):
            for a in range(0, len(order), bs):
                rows = order[a:a + bs]
                width = _padded(int(lengths[rows].max()))
                batch = np.full((len(rows), width), pad, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    batch[r, : lengths[i]] = ids[i]
                    mask[r, : lengths[i]] = 1
                logits = self._forward(encoder, head, torch.from_numpy(batch).to(device),
                                       torch.from_numpy(mask).to(device))
                out[rows] = logits.float().cpu().numpy()
        return out

    def _split_axes(self, proba: np.ndarray) -> dict[str, np.ndarray]:
        return {axis: proba[:, sl].astype(np.float64) for axis, sl in self._slices.items()}

    # -- prediction --------------------------------------------------------------------------------------------
    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        """Scores of each passage; with ``stride``, the max over its windows (:meth:`_windows`)."""
        self._check_fitted()
        texts, owner = self._windows([p.text for p in passages])
        proba = sigmoid(self._logits(texts))
        if len(texts) != len(passages):  # every passage has at least one window
            proba = aggregate_max(proba, owner, len(passages))
        return self._split_axes(proba)

    def sentence_contributions(self, passages: Sequence[Passage], axis: str) -> list[np.ndarray]:
        """Per passage, (n_sentences, n_labels): each sentence's score alone minus the score of an empty input."""
        self._check_fitted()
        if axis not in self._slices:
            raise KeyError(f"transformer tagger has no axis {axis!r}; its axes are {', '.join(self._slices)}")
        if not passages:
            return []
        texts = [p.text[s.start - p.start : s.end - p.start] for p in passages for s in p.sentences]
        scores = sigmoid(self._logits(texts))[:, self._slices[axis]].astype(np.float64)
        contrib = scores - self._prior()[self._slices[axis]]
        bounds = np.r_[0, np.cumsum([len(p.sentences) for p in passages])]
        return [contrib[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def _prior(self) -> np.ndarray:
        prior = self.__dict__.get("_prior_cache")
        if prior is None:
            with _STATE_LOCK:
                prior = self.__dict__.get("_prior_cache")
                if prior is None:
                    prior = self.__dict__["_prior_cache"] = sigmoid(self._logits([""]))[0].astype(np.float64)
        return prior

    # -- training ----------------------------------------------------------------------------------------------
    def initialize(self) -> "TransformerTagger":
        """Untrained: a copy of the MiniLM encoder and a fresh, seeded head (for speed benchmarks); thresholds 0.5."""
        import torch

        from ..encoder import load_encoder

        tokenizer, base = load_encoder()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            head = _make_head_module(base.config.hidden_size, len(self.all_labels), self.dropout)
        self.tokenizer_ = private_tokenizer(tokenizer)
        self.encoder_, self.head_ = copy.deepcopy(base).eval(), head.eval()
        self.thresholds_ = {axis: np.full(len(labs), 0.5) for axis, labs in self.labels.items()}
        self._forget_inference_state()
        return self

    def fit(self, units: Units, y: dict[str, np.ndarray]) -> "TransformerTagger":
        """Fine-tune on the passages of ``units``; see the module docstring. The loop itself is
        :func:`nlp.taggers.transformer_training.train`. The global torch RNG is left as it was."""
        import torch

        from .transformer_training import train

        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        self.__dict__["_fitting"] = True
        try:
            with torch.random.fork_rng(devices=devices), _threads(torch_threads()):
                return train(self, units, y)
        finally:
            self.__dict__.pop("_fitting", None)
            self._forget_inference_state()

    # -- storage -----------------------------------------------------------------------------------------------
    def save_state(self, folder: Path) -> None:
        from safetensors.torch import save_file

        from ..encoder import encoder_path

        self._check_fitted()
        folder = Path(folder)
        tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in self.encoder_.state_dict().items()}
        tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head_.state_dict().items()})
        metadata = {"labels": json.dumps(self.labels), "format": "cdpd-transformer-1"}
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata=metadata)
        source = Path(self.__dict__.get("_source") or encoder_path())
        for name in ENCODER_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, folder / name)
        if not (folder / "config.json").is_file():
            self.encoder_.config.to_json_file(str(folder / "config.json"))

    def load_state(self, folder: Path) -> None:
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        folder = Path(folder)
        refuse_remote_code(folder)
        path = folder / WEIGHTS_FILE
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        if "labels" in metadata and json.loads(metadata["labels"]) != self.labels:
            raise ModelError(f"{path}: the weights were trained for other labels than the codebook's")
        tensors = load_file(str(path))
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        encoder = AutoModel.from_config(config, trust_remote_code=False)
        encoder.load_state_dict({k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")})
        head_state = {k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")}
        head = _make_head_module(config.hidden_size, len(self.all_labels), self.dropout)
        head.load_state_dict(head_state)
        encoder.eval()
        head.eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        self.encoder_, self.head_, self.tokenizer_ = encoder.to(torch.float32), head, tokenizer
        self.__dict__["_source"] = str(folder)
        self._forget_inference_state()


# -- helpers ---------------------------------------------------------------------------------------------------
def private_tokenizer(tokenizer):
    """A copy of the shared MiniLM tokenizer for one transformer tagger. A fast tokenizer keeps its truncation
    setting in itself and every call with other settings changes it: the shared one is also the embedding tier's
    (no truncation), so a call from another thread in between made one of them read truncated, or untruncated,
    word pieces. The tagger's own copy is always called with its own ``max_tokens``."""
    return copy.deepcopy(tokenizer)


def quantize_int8(encoder):
    """A copy of ``encoder`` whose ``Linear`` layers compute in int8 (weights quantized once, activations per batch:
    PyTorch's dynamic quantization). ``torch.ao.quantization`` is deprecated in favour of torchao, which is not
    installed; its warnings are silenced here."""
    import warnings

    import torch

    quantize = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantize is None or not hasattr(quantize, "quantize_dynamic"):
        raise ConfigError("this torch has no torch.ao.quantization.quantize_dynamic: set quantize=False")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize.quantize_dynamic(copy.deepcopy(encoder).cpu(), {torch.nn.Linear}, dtype=torch.qint8)


def _padded(width: int) -> int:
    return -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
