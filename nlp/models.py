"""The model registry: ``models/NAME/VERSION/`` holds one trained model, ``models/ACTIVE`` names the active one.

Each version folder has ``meta.json`` (tagger and parameters, the codebook's labels and fingerprint, per-label
thresholds, a hash of the training data, per-label metrics), ``MODEL_CARD.md`` (the same for people) and the
tagger's state in a safe format. The version is derived from tagger, parameters, codebook and training data, so
retraining on the same data with the same settings gives the same version. ``classify``, the app and ``run`` use
the active model unless told otherwise; a name alone means that name's active or newest version, and
``NAME@VERSION`` one version exactly.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .codebook import Codebook
from .errors import ModelError
from .fileio import atomic_path
from .limits import MAX_MODEL_FILE_BYTES
from .taggers import Tagger, get_tagger_class

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "linear"
#: The tagger ``cdpd run`` trains as :data:`DEFAULT_MODEL` when the registry has none.
DEFAULT_TAGGER = "linear"
META_FILE = "meta.json"
CARD_FILE = "MODEL_CARD.md"
ACTIVE_FILE = "ACTIVE"


def models_dir() -> Path:
    return Path(os.environ.get("CDPD_MODELS", REPO_MODELS))


@dataclass
class ModelInfo:
    name: str
    version: str
    tagger: str
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _version(tagger: Tagger, codebook: Codebook, data_hash: str) -> str:
    payload = json.dumps([tagger.name, tagger.get_params(), codebook.fingerprint(), data_hash], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


def _root(folder: Path | None) -> Path:
    return Path(folder) if folder is not None else models_dir()


#: A model name or version: a letter or digit, then letters, digits, ``_``, ``-``, ``+`` or ``.`` (no ``..``): never
#: a path separator, a way up, or a hidden folder.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.-]{0,99}")


def _safe(part: str) -> bool:
    return _SAFE_NAME.fullmatch(part) is not None and ".." not in part


def _split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = str(ref).partition("@")
    if not _safe(name) or version and not _safe(version):
        raise ModelError(f"{ref!r} is not a model name (NAME or NAME@VERSION: letters, digits, _ - + .)")
    return name, version or None


def _inside(path: Path, root: Path) -> Path:
    """``path`` if it resolves inside the registry ``root`` (a linked model folder may not lead out of it)."""
    real, real_root = path.resolve(), root.resolve()
    if real_root not in real.parents:
        raise ModelError(f"{path}: resolves to {real}, outside the model registry {root}; refused")
    return path


def _own_ref(path: Path, meta: dict[str, Any]) -> tuple[str, str]:
    """NAME, VERSION of a model folder, which its meta.json must name: a ref is written (ACTIVE) and recorded
    (workspaces) from the folder, never from what a meta.json says."""
    name, version = path.parent.name, path.name
    if not isinstance(meta, dict) or (meta.get("name"), meta.get("version")) != (name, version):
        said = f"{meta.get('name')}@{meta.get('version')}" if isinstance(meta, dict) else "nothing"
        raise ModelError(f"{path / META_FILE} names {said!r}, not {name}@{version}; refused (retrain the model)")
    return name, version


def _check_model_file(path: Path, folder: Path) -> None:
    """A file of a model's state must be a regular file inside the model's folder (a link may point within it, not
    out of it), of at most MAX_MODEL_FILE_BYTES: a state file linked to ``/dev/zero`` would be read forever."""
    real, inside = path.resolve(), folder.resolve()
    if real != inside and inside not in real.parents:
        raise ModelError(f"{path}: a link out of the model folder ({real}); refused, retrain the model")
    if not real.is_file():
        raise ModelError(f"{path}: not a regular file; refused, retrain the model")
    size = real.stat().st_size
    if size > MAX_MODEL_FILE_BYTES:
        raise ModelError(f"{path}: {size / 1_048_576:,.0f} MiB, over the {MAX_MODEL_FILE_BYTES / 1_048_576:,.0f} MiB "
                         "limit for one model file; refused")


def check_model_folder(folder: Path) -> None:
    """Every file under a model's folder passes :func:`_check_model_file`; links to folders are not followed."""
    for entry in sorted(Path(folder).rglob("*")):
        if entry.is_symlink() or not entry.is_dir():
            _check_model_file(entry, folder)


def _read_json(path: Path) -> dict[str, Any]:
    _check_model_file(path, path.parent)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model metadata ({exc})") from None


def active_ref(folder: Path | None = None) -> str | None:
    """``NAME@VERSION`` of the active model, or None when none was activated."""
    path = _root(folder) / ACTIVE_FILE
    try:
        with open(path, "rb") as fh:
            data = fh.read(1024)  # a NAME@VERSION line: never read a linked /dev/zero to the end
    except FileNotFoundError:
        return None
    ref = data.decode("utf-8", "replace").strip()
    if not ref:
        return None
    try:
        _split_ref(ref)
    except ModelError:
        warnings.warn(f"{path} names {ref[:80]!r}, not a model; ignored (`cdpd models activate NAME` to set one)",
                      UserWarning, stacklevel=2)
        return None
    return ref


def _versions(root: Path, name: str) -> list[tuple[dict[str, Any], Path]]:
    out = []
    for meta_path in (root / name).glob(f"*/{META_FILE}"):
        if not meta_path.parent.name.startswith("."):
            meta = _read_json(meta_path)
            out.append((meta, meta_path.parent))
    return sorted(out, key=lambda mp: (mp[0].get("created_at", ""), mp[0].get("version", "")))


def resolve(ref: str, folder: Path | None = None) -> Path:
    """The folder of model ``ref``: NAME@VERSION exactly; NAME: the active version if it is NAME's, else the newest."""
    root = _root(folder)
    name, version = _split_ref(ref)
    if version is not None:
        path = root / name / version
        if not (path / META_FILE).is_file():
            known = ", ".join(f"{name}@{m['version']}" for m, _ in _versions(root, name)) or "none"
            raise ModelError(f"no model {ref!r} in {root} (versions of {name!r}: {known})")
        return _inside(path, root)
    active = active_ref(root)
    if active and _split_ref(active)[0] == name and _split_ref(active)[1] and \
            (root / name / _split_ref(active)[1] / META_FILE).is_file():
        return _inside(root / name / _split_ref(active)[1], root)
    versions = _versions(root, name)
    if not versions and (root / name / META_FILE).is_file():  # as list_models, which does not offer it
        raise ModelError(f"model {name!r} in {root} was saved before versions had folders; retrain it with "
                         f"`cdpd train --name {name}`")
    if not versions:
        raise ModelError(f"no model named {name!r} in {root} (train one with `cdpd train`)")
    return _inside(versions[-1][1], root)


def activate(ref: str, folder: Path | None = None) -> str:
    """Make ``ref`` the active model; returns its NAME@VERSION. Written atomically."""
    root = _root(folder)
    path = resolve(ref, root)
    name, version = _own_ref(path, _read_json(path / META_FILE))
    full = f"{name}@{version}"
    with atomic_path(root / ACTIVE_FILE) as tmp:
        tmp.write_text(full + "\n", encoding="utf-8")
    return full


def same_heldout(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two models' recorded held-out figures were measured on the same units: the same fixed held-out set
    (its unit ids' hash), or, for models recorded before it existed, the same training data."""
    ma, mb = a.get("metrics", {}), b.get("metrics", {})
    if ma.get("heldout_ids_sha256") or mb.get("heldout_ids_sha256"):
        return ma.get("heldout_ids_sha256") == mb.get("heldout_ids_sha256")
    return bool(a.get("training", {}).get("sha256")) and \
        a.get("training", {}).get("sha256") == b.get("training", {}).get("sha256")


def _md_text(value: Any) -> str:
    """Text that came from data (a source name in an annotation file, a path) for the Markdown card: Markdown and
    HTML characters escaped, so it shows as written and never becomes a link, an image or markup in the app."""
    import re

    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&])", r"\\\1", str(value))


def _source_lines(heldout: dict[str, Any]) -> list[str]:
    """The per-source table of the model card (markdown)."""
    from .metrics import quality_by_source

    frame = quality_by_source(heldout)
    if frame.empty or len(frame) < 2:
        return []
    axes = list(dict.fromkeys(axis for axis, _ in frame.columns))
    head = "| source | units | " + " | ".join(f"{axis} micro-F1 | {axis} macro-F1 | {axis} false on empty"
                                             for axis in axes) + " |"
    lines = ["### Per source", "", head, "| --- | ---: | " + " | ".join("---: | ---: | ---:" for _ in axes) + " |"]
    for source, row in frame.iterrows():
        cells = [f"{row[(axes[0], 'units')]:.0f}"]
        for axis in axes:
            rate = row[(axis, "false on empty")]
            cells += [f"{row[(axis, 'micro-F1')]:.3f}", f"{row[(axis, 'macro-F1')]:.3f}",
                      "-" if rate != rate else f"{rate:.1%} of {row[(axis, 'empty units')]:.0f}"]
        lines.append(f"| {_md_text(source)} | " + " | ".join(cells) + " |")
    return lines + ["", "False on empty: of the units whose annotation has no label on that axis (on functions: "
                        "domestic business), the share given one, and how many such units there are: a rate over a "
                        "handful of units says little.", ""]


#: The row of :func:`model_quality` that says what a source the model never saw gets.
UNSEEN_SOURCE_ROW = "a source never seen (leave-one-source-out)"


def model_quality(ref: str, folder: Path | None = None):
    """The model's quality per source as a report shows it: the held-out figures of each annotated source and of
    them all (:func:`~nlp.metrics.quality_by_source`), then, where the model card has one
    (``cdpd train --leave-source-out``), a row :data:`UNSEEN_SOURCE_ROW` with what a source left out of training
    gets: the figure to read a source without annotations against. ``None`` when the registry has no held-out
    figures for ``ref`` (the lexicon, a model trained elsewhere)."""
    import pandas as pd

    from .metrics import quality_by_source

    try:
        metrics = read_meta(ref, folder)["metrics"]
        frame = quality_by_source(metrics["heldout"])
    except (ValueError, OSError, KeyError, TypeError):  # ModelError is a ValueError
        return None
    unseen = metrics.get("leave_source_out")
    if unseen and not frame.empty:
        row = quality_by_source(unseen).loc[["all"]].rename(index={"all": UNSEEN_SOURCE_ROW})
        frame = pd.concat([frame, row.reindex(columns=frame.columns)])
        frame.index.name = "source"
    return frame


def model_card(meta: dict[str, Any]) -> str:
    """A markdown card: what the model is, what it was trained on, how good it is per label, its limits."""
    training = meta.get("training", {})
    lines = [f"# Model card: {meta['name']}@{meta['version']}", "",
             f"- tagger: `{meta['tagger']}`; parameters: `{json.dumps(meta.get('params', {}), sort_keys=True)}`",
             f"- created {meta.get('created_at', '?')} with cdpd {meta.get('cdpd_version', '?')}",
             f"- codebook fingerprint `{meta.get('codebook_fingerprint', '?')}`; labels: "
             + "; ".join(f"{axis}: {', '.join(labels)}" for axis, labels in meta.get("labels", {}).items()),
             f"- training data: {_md_text(training.get('path', '?'))} ({training.get('n_units', '?')} units, "
             f"sha256 `{str(training.get('sha256', '?'))[:16]}`)", ""]
    heldout = meta.get("metrics", {}).get("heldout")
    if heldout:
        lines += [f"## Held-out metrics ({meta['metrics'].get('heldout_units', '?')} units of held-out documents, "
                  "drawn at random or by cue; the model refitted without those documents)", ""]
        lines += _source_lines(heldout)
        for axis, report in heldout.items():
            lines += [f"### {axis}: micro-F1 {report['micro']['f1']:.3f}, macro-F1 {report['macro_f1']:.3f}", "",
                      "| label | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
                      for label, m in report["labels"].items()]
            lines.append("")
    else:
        lines += ["## Metrics", "", "No held-out evaluation was recorded for this model.", ""]
    unseen = meta.get("metrics", {}).get("leave_source_out")
    if unseen:
        lines += ["## On a source it never saw (leave-one-source-out)", "",
                  "Each source's units (drawn at random or by cue) predicted by the same settings fitted on the "
                  "other sources only: what to expect on documents of a new source or genre. Held-out figures "
                  "above come from sources the model was trained on and run higher.", ""]
        lines += [f"- {axis}: micro-F1 {r['micro']['f1']:.3f}, macro-F1 {r['macro_f1']:.3f}"
                  + ("" if r.get("false_on_empty") is None else
                     f", {r['false_on_empty']:.1%} of the {r['empty_units']} units without a label given one")
                  for axis, r in unseen.items()]
        lines += [""] + _source_lines(unseen)
    lines += ["## Limits", ""]
    lines += [f"- {line}" for line in TIER_LIMITS.get(meta.get("tagger", ""), [])]
    zero_shot = sorted(lab for labels in meta.get("zero_shot", {}).values() for lab in labels)
    if zero_shot:
        lines.append(f"- Zero-shot labels (no annotated example; scored from the codebook's text alone, their "
                     f"calibration fitted on other labels, never checked against annotations of their own): "
                     f"{', '.join(zero_shot)}. Treat their tags as suggestions of what to annotate.")
    lines += ["- Labels with few annotated examples (see support above) have unstable scores and thresholds.",
              "- Thresholds were tuned on short annotated units; long documents are scored by their best passage.",
              "- Trained on English press releases, resolutions, plans and UN speeches; other genres may differ.",
              "- Scores are evidence for a reader, not a verdict: check the evidence sentences.", ""]
    return "\n".join(lines)


#: What each tier is weak at, for its model card (figures from benchmarks/RESULTS.md, 2 CPU cores).
TIER_LIMITS: dict[str, list[str]] = {
    "lexicon": [
        "Seed phrases only, matched on lemmas: a label is found only when one of its seeds is said, so recall "
        "is as good as the codebook's seed lists; no context and no negation (\"no sanctions\" matches sanctions).",
        "Scores are not probabilities (1 - 2^-matches: one match reaches 0.5) and nothing is learned from "
        "annotations: the transparent baseline, far below the trained tiers.",
    ],
    "linear": [
        "A bag of lemmas plus seed counts: word order, negation and context are ignored, and a word never seen "
        "in training carries no weight.",
        "A label with no annotated example is never predicted (its classifier is a constant 0).",
        "Class-balanced logistic regression: scores rank well but are not calibrated probabilities; compare a "
        "score with its label's threshold, not with 0.5.",
    ],
    "embedding": [
        "By default (`encoder=\"static\"`) a passage is the normalised sum of static word-piece vectors distilled "
        "from MiniLM: word order and context are lost, as in a bag of words, and it scores 1-2 points of held-out "
        "micro-F1 below MiniLM itself; it is fast (about 100 documents a second on 2 CPU cores).",
        "With `encoder=\"minilm\"` a passage is one frozen MiniLM vector: text longer than 256 word pieces is "
        "embedded in 256-piece windows whose vectors are averaged, so a short on-topic stretch of a long passage is "
        "diluted; the encoder was trained for general English sentence similarity, not on diplomacy, is not "
        "fine-tuned, and on 2 CPU cores tags about 1 document a second (embeddings are cached in the workspace's "
        "`embeddings.sqlite`, so a retrain reads them).",
        "Zero-shot labels (a label without annotations) are scored by similarity to the label's definition, "
        "includes and seeds, mapped to a probability with a calibration fitted on the other labels: uncalibrated "
        "against annotations of that label (no annotation of it exists to measure it by).",
    ],
    "ensemble": [
        "The linear and embedding taggers' logits averaged: it keeps both members' blind spots (bags of words and "
        "word pieces) and costs as much as both together; it gains little where the two agree.",
        "A zero-shot label is scored by the embedding member alone, with that member's limits.",
    ],
    "transformer": [
        "Reads at most 256 word pieces of each passage: 65% of the seed passages are cut and about a third of "
        "their words never read, in training and in tagging alike.",
        "Fine-tuning on a CPU is slow (about 15 minutes on 2 cores for the seed data, with the lower 4 of 6 "
        "layers frozen by default, which also limits what it can learn), and so is tagging (about 1 document a "
        "second on 2 cores); with ~1,300 annotated units it scored below the linear tier on held-out units "
        "(benchmarks/RESULTS.md).",
        "Thresholds and the best epoch are chosen on a 15% validation split: few positives for rare labels, so "
        "their thresholds are unstable; a label without annotations gets no meaningful score.",
    ],
}


def save_model(tagger: Tagger, name: str, *, training: dict[str, Any] | None = None,
               metrics: dict[str, Any] | None = None, folder: Path | None = None) -> ModelInfo:
    """Register a trained tagger as ``models/NAME/VERSION/``, atomically: a half-written model is never seen."""
    _split_ref(name)
    if "@" in name:
        raise ModelError(f"{name!r}: give a model name without a version; the version is derived")
    root = _root(folder)
    (root / name).mkdir(parents=True, exist_ok=True)
    training = training or {}
    version = _version(tagger, tagger.codebook, training.get("sha256", ""))
    meta = {
        "name": name,
        "version": version,
        "tagger": tagger.name,
        "params": tagger.get_params(),
        "labels": tagger.labels,
        "codebook_fingerprint": tagger.codebook.fingerprint(),
        # exact (JSON keeps every digit of a float): a document scored on a rounded threshold could flip
        "thresholds": {axis: [float(t) for t in th] for axis, th in tagger.thresholds_.items()},
        "zero_shot": {axis: list(labels) for axis, labels in getattr(tagger, "zero_shot", {}).items()},
        "training": training,
        "metrics": metrics or {},
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
        "cdpd_version": __version__,
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root / name))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes 0700; a model folder is as readable as any other
    target = root / name / version
    try:
        tagger.save_state(staging)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (staging / CARD_FILE).write_text(model_card(meta), encoding="utf-8")
        backup = root / name / f".{version}.old"
        if backup.exists():
            shutil.rmtree(backup)
        if target.exists():
            target.rename(backup)
        staging.rename(target)
        if backup.exists():
            shutil.rmtree(backup)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ModelInfo(name, version, tagger.name, meta, target)


def read_meta(name: str, folder: Path | None = None) -> dict[str, Any]:
    return _read_json(resolve(name, folder) / META_FILE)


def load_model(name: str | None, codebook: Codebook, folder: Path | None = None,
               cache: str | Path | None = None) -> tuple[Tagger, ModelInfo]:
    """Load a model: ``None`` is the active one (or the default ``linear``); ``lexicon`` needs no files.

    ``cache``: an embedding cache file (``nlp.embeddings.default_cache_path()`` is the workspace's) for taggers that
    embed text (embedding, ensemble); without one they embed in memory and store nothing.
    """
    root = _root(folder)
    name = name or active_ref(root) or DEFAULT_MODEL
    if name == "lexicon" and not (root / "lexicon").exists():
        tagger = get_tagger_class("lexicon")(codebook).fit([], {})  # learns nothing: sets its fixed thresholds
        return tagger, ModelInfo("lexicon", codebook.fingerprint()[:8], "lexicon", {"labels": tagger.labels})
    path = resolve(name, root)
    meta = _read_json(path / META_FILE)
    missing = [key for key in ("labels", "thresholds", "tagger", "version") if key not in meta]
    if missing:
        raise ModelError(f"model {name!r}: {path / META_FILE} lacks {', '.join(missing)}; retrain it")
    own_name, own_version = _own_ref(path, meta)
    codebook.check_compatible(meta["labels"], what=f"model {name!r}")
    cls = get_tagger_class(meta["tagger"])
    tagger = cls(codebook)
    tagger.set_params(**_recorded_params(meta.get("params", {}), getattr(cls, "_runtime_names", ())))
    thresholds = {axis: np.asarray(v, dtype=float) for axis, v in meta["thresholds"].items()}
    if {axis: th.shape for axis, th in thresholds.items()} != {axis: (len(l),) for axis, l in tagger.labels.items()}:
        raise ModelError(f"model {name!r}: {path / META_FILE} has no threshold for every label; retrain it")
    check_model_folder(path)
    try:
        tagger.load_state(path)
    except Exception as exc:  # a corrupt or foreign file: zip, JSON, skops, safetensors or numpy errors
        raise ModelError(f"model {name!r}: cannot load its state ({type(exc).__name__}: {exc}); retrain it") from None
    tagger.thresholds_ = thresholds  # fitted state: set once the state is loaded
    if cache is not None and "cache" in getattr(tagger, "_runtime_names", ()):
        tagger.set_params(cache=str(cache))
    return tagger, ModelInfo(own_name, own_version, meta["tagger"], meta, path)


#: Settings of how to compute, never of what was fitted: not taken from a meta.json (a "cache" there could name any
#: file, which would then be created or given an ``embeddings`` table); the caller's (the workspace's) are used.
#: Which they are is the tagger class's ``_runtime_names`` (a transformer's ``batch_size`` is a training setting,
#: recorded and restored; an embedding tagger's is how many texts it encodes at once); ``cache`` never comes from a
#: meta.json, whatever the class says.
RUNTIME_PARAMS = ("cache",)


def _recorded_params(params: Any, runtime: tuple[str, ...] = ()) -> dict[str, Any]:
    """A meta.json's tagger parameters without runtime settings (``runtime`` and :data:`RUNTIME_PARAMS`), the
    ensemble's member parameters included."""
    if not isinstance(params, dict):
        raise ModelError(f"model parameters are not a JSON object ({type(params).__name__}); retrain the model")
    skip = set(RUNTIME_PARAMS) | set(runtime)
    out = {k: v for k, v in params.items() if k not in skip}
    if isinstance(out.get("member_params"), dict):
        out["member_params"] = {member: {k: v for k, v in p.items() if k not in skip}
                                if isinstance(p, dict) else p for member, p in out["member_params"].items()}
    return out


#: Folders list_models skipped and warned about (once each per process).
_SKIPPED: set[str] = set()


def _skip(path: Path, why: str) -> None:
    if str(path) not in _SKIPPED:
        _SKIPPED.add(str(path))
        warnings.warn(f"{path}: not listed as a model ({why})", UserWarning, stacklevel=3)


def list_models(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every registered version's meta, oldest first, with ``active`` (bool) and ``path`` added.

    Only what ``NAME@VERSION`` resolves to is listed (pickers offer these refs): a folder of the old layout
    (``NAME/meta.json``, no version folder) or whose meta names another model is skipped with a warning."""
    root = _root(folder)
    active = active_ref(root)
    for meta_path in sorted(root.glob(f"*/{META_FILE}")):
        if not meta_path.parent.name.startswith("."):
            _skip(meta_path.parent, "a model saved before versions had folders; retrain it")
    out = []
    for meta_path in sorted(root.glob(f"*/*/{META_FILE}")):
        if any(part.startswith(".") for part in meta_path.relative_to(root).parts):
            continue
        try:
            meta = _read_json(meta_path)
        except (ValueError, OSError):  # ModelError, JSONDecodeError and UnicodeDecodeError are ValueErrors
            continue
        name, version = meta_path.parent.parent.name, meta_path.parent.name
        try:
            _inside(meta_path.parent, root)
        except ModelError:
            _skip(meta_path.parent, "it resolves outside the model registry")
            continue
        if not isinstance(meta, dict) or (meta.get("name"), meta.get("version")) != (name, version):
            _skip(meta_path.parent, f"its {META_FILE} does not name it {name}@{version}, so that ref cannot load it")
            continue
        meta["active"] = f"{meta.get('name')}@{meta.get('version')}" == active
        meta["path"] = str(meta_path.parent)
        out.append(meta)
    return sorted(out, key=lambda m: (m.get("created_at", ""), m.get("name", ""), m.get("version", "")))
