"""Plain-text keys the workspace and ingest share: the dedup key of a text and its language.

Kept apart from :mod:`nlp.ingest` (file parsers) and free of spaCy, so that the workspace can key texts without
importing parsers, and ``cdpd`` commands that only read the workspace start fast.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import sys
import unicodedata
from pathlib import Path

__all__ = ["normalise_for_dedup", "text_key", "detect_language"]

_ZERO_WIDTH = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")  # soft hyphen, zero-width chars, BOM


def normalise_for_dedup(text: str) -> str:
    """A key that ignores case, Unicode variants, invisible characters and layout, so re-posts collide."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).casefold()  # str.translate is 10x slower
    return " ".join(text.split())


def text_key(text: str) -> str:
    """SHA-1 of :func:`normalise_for_dedup`: the key under which the workspace stores a text once."""
    return hashlib.sha1(normalise_for_dedup(text).encode("utf-8")).hexdigest()


_WORD = re.compile(r"[^\W\d_]+")
_LANGDETECT_ALIASES = {"zh-cn": "zh", "zh-tw": "zh"}


@functools.lru_cache(maxsize=1)
def _english_stop_words() -> frozenset[str]:
    """spaCy's English stop words, loaded from their source file: ``import spacy`` alone takes ~2 s."""
    loaded = sys.modules.get("spacy.lang.en.stop_words")
    if loaded is None:
        spec = importlib.util.find_spec("spacy")  # finds the package without importing it
        file = Path(spec.origin).parent / "lang" / "en" / "stop_words.py" if spec and spec.origin else None
        if file is not None and file.is_file():
            file_spec = importlib.util.spec_from_file_location("_cdpd_spacy_en_stop_words", file)
            if file_spec is not None and file_spec.loader is not None:
                loaded = importlib.util.module_from_spec(file_spec)
                file_spec.loader.exec_module(loaded)
    if loaded is None:
        from spacy.lang.en import stop_words as loaded
    return frozenset(loaded.STOP_WORDS)


def detect_language(text: str) -> str:
    """ISO 639-1 code; a cheap English check first, because nearly all input is English."""
    stop_words = _english_stop_words()
    sample = text[:20000]
    if sum(ch.isalpha() for ch in sample[:2000]) < 20:
        return "und"
    tokens = []
    for match in _WORD.finditer(sample):
        tokens.append(match.group().lower())
        if len(tokens) >= 300:
            break
    if tokens and sum(tok in stop_words for tok in tokens) / len(tokens) >= 0.2:
        return "en"
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    try:
        code = detect(text[:2000])
    except LangDetectException:
        return "und"
    return _LANGDETECT_ALIASES.get(code, code)
