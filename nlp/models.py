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
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .codebook import Codebook
from .fileio import atomic_path
from .taggers import Tagger, get_tagger_class

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "linear"
META_FILE = "meta.json"
CARD_FILE = "MODEL_CARD.md"
ACTIVE_FILE = "ACTIVE"


class ModelError(ValueError):
    """A model cannot be found, read, or used with the given codebook."""


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


def _split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    if not name or "/" in name or "\\" in name or name.startswith(".") or "/" in version or version.startswith("."):
        raise ModelError(f"{ref!r} is not a model name (NAME or NAME@VERSION)")
    return name, version or None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model metadata ({exc})") from None


def active_ref(folder: Path | None = None) -> str | None:
    """``NAME@VERSION`` of the active model, or None when none was activated."""
    path = _root(folder) / ACTIVE_FILE
    try:
        ref = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return ref or None


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
        return path
    if (root / name / META_FILE).is_file():  # a model saved before versions had folders
        return root / name
    active = active_ref(root)
    if active and _split_ref(active)[0] == name and (root / name / _split_ref(active)[1] / META_FILE).is_file():
        return root / name / _split_ref(active)[1]
    versions = _versions(root, name)
    if not versions:
        raise ModelError(f"no model named {name!r} in {root} (train one with `cdpd train`)")
    return versions[-1][1]


def activate(ref: str, folder: Path | None = None) -> str:
    """Make ``ref`` the active model; returns its NAME@VERSION. Written atomically."""
    root = _root(folder)
    meta = _read_json(resolve(ref, root) / META_FILE)
    full = f"{meta['name']}@{meta['version']}"
    with atomic_path(root / ACTIVE_FILE) as tmp:
        tmp.write_text(full + "\n", encoding="utf-8")
    return full


def model_card(meta: dict[str, Any]) -> str:
    """A markdown card: what the model is, what it was trained on, how good it is per label, its limits."""
    training = meta.get("training", {})
    lines = [f"# Model card: {meta['name']}@{meta['version']}", "",
             f"- tagger: `{meta['tagger']}`; parameters: `{json.dumps(meta.get('params', {}), sort_keys=True)}`",
             f"- created {meta.get('created_at', '?')} with cdpd {meta.get('cdpd_version', '?')}",
             f"- codebook fingerprint `{meta.get('codebook_fingerprint', '?')}`; labels: "
             + "; ".join(f"{axis}: {', '.join(labels)}" for axis, labels in meta.get("labels", {}).items()),
             f"- training data: `{training.get('path', '?')}` ({training.get('n_units', '?')} units, "
             f"sha256 `{str(training.get('sha256', '?'))[:16]}`)", ""]
    heldout = meta.get("metrics", {}).get("heldout")
    if heldout:
        lines += [f"## Held-out metrics ({meta['metrics'].get('heldout_units', '?')} random-sample units, the model "
                  "refitted without them)", ""]
        for axis, report in heldout.items():
            lines += [f"### {axis}: micro-F1 {report['micro']['f1']:.3f}, macro-F1 {report['macro_f1']:.3f}", "",
                      "| label | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
                      for label, m in report["labels"].items()]
            lines.append("")
    else:
        lines += ["## Metrics", "", "No held-out evaluation was recorded for this model.", ""]
    lines += ["## Limits", "",
              "- Labels with few annotated examples (see support above) have unstable scores; a label with no "
              "example is never predicted by the linear tier.",
              "- Thresholds were tuned on short annotated units; long documents are scored by their best passage.",
              "- Trained on English press releases, resolutions, plans and UN speeches; other genres may differ.",
              "- Scores are evidence for a reader, not a verdict: check the evidence sentences.", ""]
    return "\n".join(lines)


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
        "thresholds": {axis: [round(float(t), 6) for t in th] for axis, th in tagger.thresholds_.items()},
        "zero_shot": {axis: list(labels) for axis, labels in getattr(tagger, "zero_shot", {}).items()},
        "training": training,
        "metrics": metrics or {},
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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


def load_model(name: str | None, codebook: Codebook, folder: Path | None = None) -> tuple[Tagger, ModelInfo]:
    """Load a model: ``None`` is the active one (or the default ``linear``); ``lexicon`` needs no files."""
    root = _root(folder)
    name = name or active_ref(root) or DEFAULT_MODEL
    if name == "lexicon" and not (root / "lexicon").exists():
        tagger = get_tagger_class("lexicon")(codebook)
        return tagger, ModelInfo("lexicon", codebook.fingerprint()[:8], "lexicon", {"labels": tagger.labels})
    path = resolve(name, root)
    meta = _read_json(path / META_FILE)
    missing = [key for key in ("labels", "thresholds", "tagger", "version") if key not in meta]
    if missing:
        raise ModelError(f"model {name!r}: {path / META_FILE} lacks {', '.join(missing)}; retrain it")
    codebook.check_compatible(meta["labels"], what=f"model {name!r}")
    cls = get_tagger_class(meta["tagger"])
    tagger = cls(codebook)
    tagger.set_params(**meta.get("params", {}))
    tagger.thresholds_ = {axis: np.asarray(v, dtype=float) for axis, v in meta["thresholds"].items()}
    try:
        tagger.load_state(path)
    except Exception as exc:  # a corrupt or foreign file: zip, JSON, skops or numpy errors alike
        raise ModelError(f"model {name!r}: cannot load its state ({type(exc).__name__}: {exc}); retrain it") from None
    return tagger, ModelInfo(meta.get("name", name), meta["version"], meta["tagger"], meta, path)


def list_models(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every registered version's meta, oldest first, with ``active`` (bool) and ``path`` added."""
    root = _root(folder)
    active = active_ref(root)
    out = []
    for meta_path in sorted(root.glob(f"*/{META_FILE}")) + sorted(root.glob(f"*/*/{META_FILE}")):
        if any(part.startswith(".") for part in meta_path.relative_to(root).parts):
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            continue
        meta["active"] = f"{meta.get('name')}@{meta.get('version')}" == active
        meta["path"] = str(meta_path.parent)
        out.append(meta)
    return sorted(out, key=lambda m: (m.get("created_at", ""), m.get("name", ""), m.get("version", "")))
