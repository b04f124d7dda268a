"""The Annotate page's decisions that need no Streamlit: hotkeys per label, the plain-words reason a passage was
chosen, label summaries and snippets for the history, and the undo stack's rules. Kept out of the page so that
tests can check them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

#: Keys Streamlit reserves (``st.button(shortcut=...)`` refuses them): C clears the cache, R reruns.
RESERVED_KEYS = frozenset("CR")
#: Keys the page's actions use: S skips, U undoes (Enter saves; the arrows move back and forward).
ACTION_KEYS = {"save": "Enter", "skip": "S", "undo": "U", "back": "Left", "forward": "Right", "close": "Esc"}
#: Label hotkeys in order: the digits, then the letters that are neither reserved nor an action's.
LABEL_KEYS = tuple("123456789") + tuple(k for k in "ABDEFGHIJKLMNOPQTVWXYZ"
                                        if k not in RESERVED_KEYS and k not in ACTION_KEYS.values())


def label_hotkeys(codebook) -> dict[tuple[str, str], str]:
    """One key per label, in codebook order across the axes (functions first): 1-9, then letters. Labels past the
    available keys (more than 29) get none and are toggled with the mouse."""
    pairs = [(axis, label) for axis in codebook.axis_names for label in codebook.labels(axis)]
    return {pair: key for pair, key in zip(pairs, LABEL_KEYS)}


def key_name(key: str) -> str:
    """How a key is written for a reader: arrows as arrows."""
    return {"Left": "←", "Right": "→", "Esc": "Esc"}.get(key, key)


def closest_call(scores: dict[str, dict[str, float]], thresholds: dict[str, dict[str, float]]
                 ) -> tuple[str, str, float, float] | None:
    """The label whose score sits closest to its threshold, as (axis, label, score, threshold): the decision the
    model is least sure of. None without scores."""
    best, best_gap = None, float("inf")
    for axis, by_label in scores.items():
        for label, score in by_label.items():
            t = thresholds.get(axis, {}).get(label)
            if t is None:
                continue
            if abs(score - t) < best_gap:
                best, best_gap = (axis, label, float(score), float(t)), abs(score - t)
    return best


def why_chosen(strategy: str, call: tuple[str, str, float, float] | None) -> str:
    """Why the queue shows this passage, in plain words (the queue's "margin" is this distance, rescaled)."""
    if call is None:
        return "The model gave no scores for this passage."
    _axis, label, score, threshold = call
    side = "above" if score >= threshold else "below"
    detail = (f"its closest label is {label}, scored {score:.2f} against a threshold of {threshold:.2f} "
              f"(just {side}: {'suggested' if score >= threshold else 'not suggested'})")
    if strategy == "random":
        return f"Drawn at random (an unbiased sample). The model's closest call: {detail}."
    return f"The model is unsure about this passage: {detail}."


def labels_summary(labels: dict[str, Sequence[str]], axes: Sequence[str]) -> str:
    """"functions: a, b · domains: none" in codebook axis order."""
    return " · ".join(f"{axis}: {', '.join(labels.get(axis, [])) or 'none'}" for axis in axes)


def snippet(text: str, limit: int = 120) -> str:
    """The start of a passage on one line, cut at a word, with an ellipsis when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut + " …"


def normalized(labels: dict[str, Sequence[str]], axes: Sequence[str],
               codebook_order: dict[str, Sequence[str]]) -> dict[str, list[str]]:
    """Labels per axis, every axis present, in codebook order (what is saved: the order of clicks is no data)."""
    return {axis: [lab for lab in codebook_order[axis] if lab in set(labels.get(axis, []))] for axis in axes}


@dataclass
class Action:
    """One undoable step: ``save`` (a new annotation ``new_id`` of queue position ``pos``), ``edit`` (a new
    version ``new_id`` of ``previous_id``), or ``skip`` (queue position ``pos``). ``labels`` are what was saved."""
    kind: str
    pos: int | None = None
    new_id: int | None = None
    previous_id: int | None = None
    passage_id: int | None = None
    labels: dict[str, list[str]] = field(default_factory=dict)


def undo_plan(action: Action, previous_labels: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """What undoing ``action`` does, as data: the annotation row to delete (or None), where the queue goes back
    to, and the labels the passage is shown with afterwards.

    Undo of a save deletes that save and brings its passage back with the labels that were saved (not the
    model's suggestions: the annotator's work is not thrown away). Undo of an edit deletes the new version: the
    previous one counts again, and is shown with its labels (``previous_labels``). Undo of a skip goes back."""
    if action.kind == "save":
        return {"delete": action.new_id, "pos": action.pos, "labels": action.labels, "open": None}
    if action.kind == "edit":
        return {"delete": action.new_id, "pos": action.pos, "labels": previous_labels or {},
                "open": action.previous_id if action.pos is None else None}
    if action.kind == "skip":
        return {"delete": None, "pos": action.pos, "labels": None, "open": None}
    raise ValueError(f"unknown action {action.kind!r}")
