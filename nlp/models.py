"""Trained models on disk: one folder per model name under ``models/`` with ``meta.json`` and safe-format state.

``meta.json`` records what a model needs to be trusted later: its tagger and parameters, the codebook's labels and
fingerprint, per-label thresholds, a hash of the training data and its metrics. The version is derived from
these, so retraining on the same data with the same settings gives the same version.
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
from .taggers import Tagger, get_tagger_class

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "linear"
META_FILE = "meta.json"


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


def save_model(tagger: Tagger, name: str, *, training: dict[str, Any] | None = None,
               metrics: dict[str, Any] | None = None, folder: Path | None = None) -> ModelInfo:
    """Write a trained tagger atomically: a half-written model never replaces a good one."""
    root = Path(folder) if folder is not None else models_dir()
    root.mkdir(parents=True, exist_ok=True)
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
        "training": training,
        "metrics": metrics or {},
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cdpd_version": __version__,
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes 0700; a model folder is as readable as any other
    try:
        tagger.save_state(staging)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        target = root / name
        backup = root / f".{name}.old"
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
    return ModelInfo(name, version, tagger.name, meta)


def read_meta(name: str, folder: Path | None = None) -> dict[str, Any]:
    path = (Path(folder) if folder is not None else models_dir()) / name / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model named {name!r} in {path.parent.parent} (train one with `cdpd train`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model metadata ({exc})") from None


def load_model(name: str | None, codebook: Codebook, folder: Path | None = None) -> tuple[Tagger, ModelInfo]:
    """Load a model by name; ``lexicon`` needs no files (its seeds come from the codebook)."""
    name = name or DEFAULT_MODEL
    root = Path(folder) if folder is not None else models_dir()
    if name == "lexicon" and not (root / name / META_FILE).exists():
        tagger = get_tagger_class("lexicon")(codebook)
        return tagger, ModelInfo("lexicon", codebook.fingerprint()[:8], "lexicon", {"labels": tagger.labels})
    meta = read_meta(name, root)
    missing = [key for key in ("labels", "thresholds", "tagger", "version") if key not in meta]
    if missing:
        raise ModelError(f"model {name!r}: {root / name / META_FILE} lacks {', '.join(missing)}; retrain it")
    codebook.check_compatible(meta["labels"], what=f"model {name!r}")
    cls = get_tagger_class(meta["tagger"])
    tagger = cls(codebook)
    tagger.set_params(**meta.get("params", {}))
    tagger.thresholds_ = {axis: np.asarray(v, dtype=float) for axis, v in meta["thresholds"].items()}
    try:
        tagger.load_state(root / name)
    except Exception as exc:  # a corrupt or foreign file: zip, JSON, skops or numpy errors alike
        raise ModelError(f"model {name!r}: cannot load its state ({type(exc).__name__}: {exc}); retrain it") from None
    return tagger, ModelInfo(name, meta["version"], meta["tagger"], meta)


def list_models(folder: Path | None = None) -> list[dict[str, Any]]:
    root = Path(folder) if folder is not None else models_dir()
    out = []
    for meta_path in sorted(root.glob(f"*/{META_FILE}")):
        if meta_path.parent.name.startswith("."):
            continue
        try:
            out.append(json.loads(meta_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, OSError):
            continue
    return out
