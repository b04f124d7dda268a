"""The transformer tier's training loop, kept apart from the model (as spaCy keeps ``training/loop.py`` apart from
its components): :class:`nlp.taggers.transformer.TransformerTagger` holds the network, predicts, saves and loads;
:func:`train` fine-tunes it, as the tagger's module docstring describes (passages labelled with their unit's
labels, a seeded validation split of units choosing the epoch and the thresholds, cached outputs of the frozen
lower layers on CPU, AdamW with warm-up and linear decay).

``torch`` and ``datasets`` are imported inside the functions, as in the tagger's module: this module is imported
only when a transformer is fitted, and :func:`validation_split` needs none of them.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError
from ..metrics import micro_f1, tune_thresholds
from .base import Units, aggregate_max
from .shared import sigmoid
from .transformer import _make_head_module, _padded, _threads, private_tokenizer, torch_threads

if TYPE_CHECKING:
    from .transformer import TransformerTagger


def train(tagger: "TransformerTagger", units: Units, y: dict[str, np.ndarray]) -> "TransformerTagger":
    """Fine-tune ``tagger`` on the passages of ``units``; sets its ``tokenizer_``, ``encoder_``, ``head_``,
    ``history_`` and ``thresholds_`` and returns it. Called by :meth:`TransformerTagger.fit`, which forks the torch
    RNG and marks the tagger as fitting (validation scores then come from the model being trained)."""
    import torch

    from ..encoder import load_encoder

    n = len(units)
    if n < 2:
        raise DataError(f"transformer tagger needs at least 2 annotated units, got {n}")
    Y = np.concatenate([np.asarray(y[axis], dtype=np.float32) for axis in tagger.labels], axis=1)
    if Y.shape != (n, len(tagger.all_labels)):
        raise DataError(f"transformer tagger: label matrices give shape {Y.shape}, expected "
                         f"({n}, {len(tagger.all_labels)})")
    tagger._check_params()
    tokenizer, base = load_encoder()
    n_layers = len(base.encoder.layer)
    if tagger.freeze_layers > n_layers:
        raise ConfigError(f"transformer tagger: freeze_layers={tagger.freeze_layers} but the encoder has "
                         f"{n_layers} layers")
    device = tagger._torch_device()
    use_bf16 = tagger._use_bf16(device)
    torch.manual_seed(tagger.seed)
    tagger.tokenizer_ = private_tokenizer(tokenizer)  # never change the shared one's truncation
    encoder = copy.deepcopy(base).to(device)  # never train the cached, shared encoder
    head = _make_head_module(encoder.config.hidden_size, len(tagger.all_labels), tagger.dropout).to(device)
    tagger._forget_inference_state()
    frozen = _freeze(encoder, tagger.freeze_layers)

    train_units, val_units = validation_split(Y, tagger.validation, tagger.seed)
    train_texts, train_rows = _passage_texts(tagger, units, train_units)
    if not train_texts:
        raise DataError("transformer tagger: the training units have no passages")
    train_Y = Y[train_rows]
    positives = train_Y.sum(0)
    pos_weight = np.clip((len(train_Y) - positives) / np.maximum(positives, 1), 1.0, tagger.max_pos_weight)
    pos_weight[positives == 0] = 1.0
    data = _dataset(tagger, train_texts, train_Y)
    val_texts, val_rows = _passage_texts(tagger, units, val_units)
    val_owner = np.searchsorted(val_units, val_rows) if len(val_units) else np.zeros(0, dtype=int)
    Y_val = Y[val_units]

    lengths = np.asarray([len(x) for x in data["input_ids"]])
    k = tagger.freeze_layers
    pad_id = tokenizer.pad_token_id or 0
    if k:  # the frozen lower layers give the same output every epoch: compute it once
        t0 = time.perf_counter()
        train_feats = frozen_features(tagger, encoder, list(data["input_ids"]), device, use_bf16)
        val_feats = frozen_features(tagger, encoder, [torch.tensor(x) for x in tagger._tokenize(val_texts)],
                                          device, use_bf16)
        tagger.progress(f"transformer: outputs of the {k} frozen layers computed once for "
                      f"{len(train_feats) + len(val_feats)} passages in {time.perf_counter() - t0:.0f}s")
    steps_per_epoch = math.ceil(len(train_texts) / tagger.batch_size)
    total = steps_per_epoch * tagger.epochs
    warm = int(round(tagger.warmup * total))
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    decay = lambda name: not (name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name)  # noqa: E731
    groups = [
        {"params": [p for nm, p in encoder.named_parameters() if p.requires_grad and decay(nm)],
         "lr": tagger.lr, "weight_decay": tagger.weight_decay},
        {"params": [p for nm, p in encoder.named_parameters() if p.requires_grad and not decay(nm)],
         "lr": tagger.lr, "weight_decay": 0.0},
        {"params": list(head.parameters()), "lr": tagger.head_lr, "weight_decay": tagger.weight_decay},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / max(1, warm) if step < warm
        else max(0.0, (total - step) / max(1, total - warm)))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float32, device=device))
    rng = np.random.default_rng(tagger.seed)

    tagger.progress(
        f"transformer: {len(train_texts)} training passages ({len(train_units)} units), {len(val_texts)} "
        f"validation passages ({len(val_units)} units); {tagger.epochs} epochs x {steps_per_epoch} steps of "
        f"{tagger.batch_size}; {n_layers - tagger.freeze_layers}/{n_layers} layers trained; device {device}"
        f"{', bf16 autocast' if use_bf16 else ''}, {torch_threads() if device.type == 'cpu' else 'GPU'} threads")
    tagger.encoder_, tagger.head_ = encoder, head
    tagger.history_ = []
    best: tuple[float, dict, np.ndarray, int] | None = None
    stale = 0
    t_start = time.perf_counter()
    with _threads(torch_threads()):
        for epoch in range(1, tagger.epochs + 1):
            encoder.train()
            head.train()
            for module in frozen:
                module.eval()  # frozen layers: no dropout, a fixed feature extractor
            running, seen, t0 = 0.0, 0, time.perf_counter()
            batches = _length_batches(lengths, tagger.batch_size, rng)
            for step, rows in enumerate(batches, 1):
                with tagger._autocast(device, use_bf16):
                    if k:
                        target = data[rows.tolist()]["labels"]
                        logits = _forward_top(tagger, encoder, head, [train_feats[i] for i in rows.tolist()],
                                                   device)
                    else:
                        ids, mask, target = _collate(data, rows, pad_id)
                        logits = tagger._forward(encoder, head, ids.to(device), mask.to(device))
                loss = loss_fn(logits.float(), torch.as_tensor(target).float().to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable + list(head.parameters()), 1.0)
                optimizer.step()
                scheduler.step()
                running += float(loss.detach()) * len(rows)
                seen += len(rows)
                if step % 25 == 0 or step == len(batches):
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    tagger.progress(f"  epoch {epoch}/{tagger.epochs} step {step}/{len(batches)}: "
                                  f"loss {running / seen:.4f}, {rate:.1f} passages/s")
            record = {"epoch": epoch, "loss": running / max(seen, 1), "seconds": time.perf_counter() - t0}
            if len(val_units):
                if k:
                    scores = top_logits(tagger, encoder, head, val_feats, device, use_bf16)
                else:
                    tagger._forget_inference_state()
                    scores = tagger._logits(val_texts)
                scores = aggregate_max(sigmoid(scores), val_owner, len(val_units))
                thresholds = tune_thresholds(Y_val, scores)
                record["val_micro_f1"] = micro_f1(Y_val, scores >= thresholds)
                record["val_micro_f1_at_0.5"] = micro_f1(Y_val, scores >= 0.5)
                improved = best is None or record["val_micro_f1"] > best[0] + 1e-9
                if improved:
                    state = {name: v.detach().clone() for name, v in _trainable_state(encoder, head).items()}
                    best, stale = (record["val_micro_f1"], state, thresholds, epoch), 0
                else:
                    stale += 1
            tagger.history_.append(record)
            tagger.progress(f"epoch {epoch}/{tagger.epochs}: loss {record['loss']:.4f}"
                          + (f", validation micro-F1 {record['val_micro_f1']:.3f} (tuned thresholds), "
                             f"{record['val_micro_f1_at_0.5']:.3f} (at 0.5)" if "val_micro_f1" in record else "")
                          + f" [{record['seconds']:.0f}s]")
            if best is not None and tagger.patience and stale >= tagger.patience:
                tagger.progress(f"early stop: no improvement for {stale} epochs")
                break
    if best is not None:
        _load_trainable_state(encoder, head, best[1])
        thresholds = best[2]
        tagger.progress(f"kept epoch {best[3]} (validation micro-F1 {best[0]:.3f}); "
                      f"trained in {time.perf_counter() - t_start:.0f}s")
    else:
        thresholds = np.full(len(tagger.all_labels), 0.5)
    tagger.thresholds_ = {axis: np.asarray(thresholds[sl], dtype=float) for axis, sl in tagger._slices.items()}
    encoder.eval()
    head.eval()
    tagger._forget_inference_state()
    return tagger


def frozen_features(tagger: "TransformerTagger", encoder, ids: list, device, use_bf16: bool) -> list:
    """Per passage, its (n_tokens, hidden) output of the frozen embeddings and lower layers (eval mode, no
    graph), kept on CPU in bf16 when training in bf16, else fp32 (~1.5 KB a token in fp32)."""
    import torch

    store = torch.bfloat16 if use_bf16 else torch.float32
    lengths = np.array([len(x) for x in ids])
    out: list = [None] * len(ids)
    encoder.eval()
    with torch.no_grad(), tagger._autocast(device, use_bf16), _layers(encoder, 0, tagger.freeze_layers):
        order = np.argsort(-lengths, kind="stable")
        for a in range(0, len(order), tagger.predict_batch_size):
            rows = order[a:a + tagger.predict_batch_size]
            width = _padded(int(lengths[rows].max()))
            batch = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows.tolist()):
                batch[r, : lengths[i]] = torch.as_tensor(ids[i])
                mask[r, : lengths[i]] = 1
            hidden = encoder(input_ids=batch.to(device), attention_mask=mask.to(device)).last_hidden_state
            for r, i in enumerate(rows.tolist()):
                out[i] = hidden[r, : lengths[i]].to(store).cpu().clone()
    return out

def _forward_top(tagger: "TransformerTagger", encoder, head, feats: list, device):
    """Logits from frozen-layer outputs: the upper layers, mean pooling and the head (training or eval mode)."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    lengths = torch.tensor([len(f) for f in feats])
    hidden = pad_sequence(feats, batch_first=True)
    extra = _padded(hidden.shape[1]) - hidden.shape[1]
    if extra:
        hidden = torch.nn.functional.pad(hidden, (0, 0, 0, extra))
    hidden = hidden.to(device)
    mask = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long().to(device)
    with _layers(encoder, tagger.freeze_layers, None):
        return _forward_embeds(encoder, head, hidden, mask)

def _forward_embeds(encoder, head, hidden, mask):
    from ..encoder import mean_pool

    out = encoder(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
    return head(mean_pool(out, mask).float())

def top_logits(tagger: "TransformerTagger", encoder, head, feats: list, device, use_bf16: bool) -> np.ndarray:
    """(n, n_all_labels) logits of passages given by frozen-layer outputs, in eval mode, length-bucketed."""
    import torch

    encoder.eval()
    head.eval()
    lengths = np.array([len(f) for f in feats])
    order = np.argsort(-lengths, kind="stable")
    out = np.empty((len(feats), len(tagger.all_labels)), dtype=np.float32)
    with torch.no_grad(), tagger._autocast(device, use_bf16):
        for a in range(0, len(order), tagger.predict_batch_size):
            rows = order[a:a + tagger.predict_batch_size]
            out[rows] = _forward_top(tagger, encoder, head, [feats[i] for i in rows.tolist()],
                                          device).float().cpu().numpy()
    return out

def _freeze(encoder, freeze_layers: int) -> list:
    """Freeze the embeddings and the lower ``freeze_layers`` layers; returns the frozen modules."""
    if getattr(encoder, "pooler", None) is not None:  # unused: mean pooling replaces it
        for p in encoder.pooler.parameters():
            p.requires_grad_(False)
    if freeze_layers == 0:
        return []
    frozen = [encoder.embeddings, *encoder.encoder.layer[: freeze_layers]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return frozen

def _dataset(tagger: "TransformerTagger", texts: list[str], Y: np.ndarray):
    """A ``datasets.Dataset`` of token ids and label vectors (in memory, no cache files), torch format."""
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        data = datasets.Dataset.from_dict({"text": list(texts), "labels": Y.astype(np.float32).tolist()})
        data = data.map(lambda b: tagger.tokenizer_(b["text"], truncation=True, max_length=tagger.max_tokens,
                                                  return_token_type_ids=False),
                        batched=True, remove_columns=["text"], keep_in_memory=True)
    finally:
        if bars:
            datasets.enable_progress_bars()
    data.set_format("torch", columns=["input_ids", "attention_mask", "labels"])
    return data


@contextlib.contextmanager
def _layers(encoder, start: int, stop: int | None):
    """Make ``encoder`` (a BERT model) run only its layers ``start:stop`` for a while. From ``start > 0`` its input
    is hidden states passed as ``inputs_embeds`` (the embeddings module is bypassed); the model itself still
    builds the attention mask, so this works whatever attention implementation it uses."""
    import torch

    layers, embeddings = encoder.encoder.layer, encoder.embeddings
    encoder.encoder.layer = torch.nn.ModuleList(list(layers)[start:stop])
    if start > 0:
        encoder.embeddings = _passthrough()
    try:
        yield encoder
    finally:
        encoder.encoder.layer, encoder.embeddings = layers, embeddings


def _passthrough():
    import torch

    class Passthrough(torch.nn.Module):
        def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, **_kwargs):
            return inputs_embeds

    return Passthrough()

def validation_split(Y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unit indices (train, validation): a seeded ``fraction`` of the units goes to validation, then every
    label whose positive units all went there gets its first one (in the seeded order) back into training."""
    n = len(Y)
    k = min(int(round(n * fraction)), n - 1)
    if fraction <= 0 or k <= 0:
        return np.arange(n), np.zeros(0, dtype=int)
    order = np.random.default_rng(seed).permutation(n)
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    in_val = np.zeros(n, dtype=bool)
    in_val[order[:k]] = True
    for j in range(Y.shape[1]):
        pos = np.flatnonzero(Y[:, j] > 0)
        if len(pos) and in_val[pos].all() and in_val.sum() > 1:
            in_val[pos[np.argmin(rank[pos])]] = False
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def _passage_texts(tagger: "TransformerTagger", units: Units, which: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The texts of the passages of the units ``which``, and the unit each came from. With the tagger's
    ``stride``, a passage longer than ``max_tokens`` comes as its windows (:meth:`TransformerTagger._windows`),
    each labelled with its unit's labels: the whole passage is read, in training as in prediction (where a
    passage scores the max over its windows), at the price of windows labelled with a label whose evidence lies in
    another window."""
    texts, rows = [], []
    for i in which.tolist():
        for p in units[i]:
            texts.append(p.text)
            rows.append(i)
    texts, owner = tagger._windows(texts)
    return texts, np.asarray(rows, dtype=int)[owner] if len(owner) else np.zeros(0, dtype=int)


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths: shuffle, sort within windows of 50 batches, cut, shuffle the batches."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for a in range(0, len(order), window):
        chunk = order[a:a + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _collate(data, rows: np.ndarray, pad_id: int):
    """Pad one batch of the tokenized ``datasets.Dataset`` to its longest row."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    batch = data[rows.tolist()]
    ids = pad_sequence(list(batch["input_ids"]), batch_first=True, padding_value=pad_id)
    mask = pad_sequence(list(batch["attention_mask"]), batch_first=True, padding_value=0)
    extra = _padded(ids.shape[1]) - ids.shape[1]
    if extra:
        ids = torch.nn.functional.pad(ids, (0, extra), value=pad_id)
        mask = torch.nn.functional.pad(mask, (0, extra), value=0)
    labels = batch["labels"]
    if not isinstance(labels, torch.Tensor):
        labels = torch.stack(list(labels))
    return ids, mask, labels.float()


def _trainable_state(encoder, head) -> dict[str, Any]:
    state = {f"encoder.{name}": p for name, p in encoder.named_parameters() if p.requires_grad}
    state.update({f"head.{name}": p for name, p in head.named_parameters()})
    return state


def _load_trainable_state(encoder, head, state: dict) -> None:
    import torch

    params = dict(encoder.named_parameters())
    head_params = dict(head.named_parameters())
    with torch.no_grad():
        for key, value in state.items():
            target = params[key[len("encoder."):]] if key.startswith("encoder.") else head_params[key[len("head."):]]
            target.copy_(value)
