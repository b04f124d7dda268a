"""The codebook: the label scheme as data.

Every component takes its labels from a :class:`Codebook`; nothing in cdpd names a label in code. A codebook is
a YAML mapping whose list-valued top-level keys are *axes* (``functions``, ``domains``, or any other a user adds),
each a list of labels with at least an ``id``, a ``definition`` and ``seeds``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import CdpdError

DEFAULT_CODEBOOK = Path(__file__).resolve().parent.parent / "corpora" / "codebook.yaml"

#: Keys that are not axes even though they sit at the top level.
_META_KEYS = {"version", "rules", "name", "description"}
_REQUIRED_LABEL_KEYS = ("id", "definition", "seeds")
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: The two axes cdpd's analyses are built around; a codebook may add more but must keep these.
CORE_AXES = ("functions", "domains")


class CodebookError(CdpdError, ValueError):
    """A codebook file is missing, unreadable or breaks the schema; the message names file, label and key."""

    code = "codebook"


@dataclass(frozen=True)
class Label:
    id: str
    axis: str
    definition: str
    seeds: tuple[str, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def practice(self) -> str | None:
        return self.attributes.get("practice")


@dataclass(frozen=True)
class Codebook:
    axes: dict[str, tuple[Label, ...]]
    version: Any = None
    rules: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    path: str | None = field(default=None, compare=False)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    def labels(self, axis: str) -> list[str]:
        try:
            return [label.id for label in self.axes[axis]]
        except KeyError:
            raise KeyError(f"codebook has no axis {axis!r}; its axes are {', '.join(self.axes)}") from None

    def label(self, label_id: str) -> Label:
        for labels in self.axes.values():
            for label in labels:
                if label.id == label_id:
                    return label
        raise KeyError(f"codebook has no label {label_id!r}")

    def label_sets(self) -> dict[str, list[str]]:
        """The label ids per axis: what a trained model records and later compares against."""
        return {axis: self.labels(axis) for axis in self.axes}

    def fingerprint(self) -> str:
        """A hash of what matters to a model: axes, label ids and seeds (not wording of definitions)."""
        payload = {axis: [[lab.id, list(lab.seeds)] for lab in labels] for axis, labels in self.axes.items()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def check_compatible(self, trained: dict[str, list[str]], what: str = "model") -> None:
        """Raise :class:`CodebookError` if ``trained`` label sets differ from this codebook's, saying which."""
        problems = []
        mine = self.label_sets()
        for axis in sorted(set(mine) | set(trained)):
            if axis not in mine:
                problems.append(f"axis {axis!r} is in the {what} but not in the codebook")
                continue
            if axis not in trained:
                problems.append(f"axis {axis!r} is in the codebook but not in the {what}")
                continue
            missing = [lab for lab in trained[axis] if lab not in mine[axis]]
            extra = [lab for lab in mine[axis] if lab not in trained[axis]]
            if missing:
                problems.append(f"{axis}: the {what} has {', '.join(missing)} which the codebook lacks")
            if extra:
                problems.append(f"{axis}: the codebook has {', '.join(extra)} which the {what} was not trained on")
        if not problems:
            # same labels, another order: a model's columns would be attached to the wrong labels
            if list(mine) != list(trained):
                problems.append(f"axes are in another order ({', '.join(mine)} vs. {', '.join(trained)})")
            for axis in mine:
                if mine[axis] != list(trained[axis]):
                    problems.append(f"{axis}: same labels in a different order than the {what} was trained with")
        if problems:
            where = f" ({self.path})" if self.path else ""
            raise CodebookError(f"codebook{where} does not match the {what}'s labels: " + "; ".join(problems))


def _as_str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise CodebookError(f"{where} must be a list of strings")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _rejoin_parentheses(items: tuple[str, ...]) -> tuple[str, ...]:
    """Items of a YAML flow list written with commas inside parentheses, made whole again.

    ``include: [city networks (C40, ICLEI, UCLG), joint projects]`` is, to YAML, four items: "city networks (C40",
    "ICLEI", "UCLG)" and "joint projects". The codebook's authors meant two, and the guidelines shown to annotators
    should read as they wrote them. An item that opens more parentheses than it closes takes the items after it,
    joined by ", ", until they balance (or the list ends)."""
    out: list[str] = []
    pending: list[str] = []
    for item in items:
        pending.append(item)
        joined = ", ".join(pending)
        if joined.count("(") <= joined.count(")"):
            out.append(joined)
            pending = []
    if pending:
        out.append(", ".join(pending))
    return tuple(out)


def parse_codebook(data: Any, source: str = "<codebook>") -> Codebook:
    """Validate a parsed YAML mapping and build a :class:`Codebook`."""
    if not isinstance(data, dict):
        raise CodebookError(f"{source}: the top level must be a mapping of axes, got {type(data).__name__}")
    axes: dict[str, tuple[Label, ...]] = {}
    seen: dict[str, str] = {}
    for key, value in data.items():
        if key in _META_KEYS:
            continue
        if not isinstance(value, list):
            raise CodebookError(f"{source}: axis {key!r} must be a list of labels, got {type(value).__name__}")
        if not value:
            raise CodebookError(f"{source}: axis {key!r} has no labels")
        labels = []
        for i, entry in enumerate(value):
            where = f"{source}: axis {key!r}, label #{i + 1}"
            if not isinstance(entry, dict):
                raise CodebookError(f"{where} must be a mapping with keys {', '.join(_REQUIRED_LABEL_KEYS)}")
            label_id = entry.get("id")
            if isinstance(label_id, str):
                where = f"{source}: axis {key!r}, label {label_id!r}"
            for required in _REQUIRED_LABEL_KEYS:
                if entry.get(required) in (None, "", []):
                    raise CodebookError(f"{where}: missing required key {required!r}")
            if not isinstance(label_id, str) or not _ID_PATTERN.match(label_id):
                raise CodebookError(f"{where}: key 'id' must be lower_snake_case, got {label_id!r}")
            if label_id in seen:
                raise CodebookError(f"{where}: key 'id' duplicates label {label_id!r} of axis {seen[label_id]!r}")
            seen[label_id] = key
            if not isinstance(entry["definition"], str):
                raise CodebookError(f"{where}: key 'definition' must be a string")
            known = {"id", "definition", "seeds", "include", "exclude"}
            labels.append(
                Label(
                    id=label_id,
                    axis=key,
                    definition=entry["definition"].strip(),
                    seeds=_as_str_list(entry["seeds"], f"{where}: key 'seeds'"),
                    include=_rejoin_parentheses(_as_str_list(entry.get("include"), f"{where}: key 'include'")),
                    exclude=_rejoin_parentheses(_as_str_list(entry.get("exclude"), f"{where}: key 'exclude'")),
                    attributes={k: v for k, v in entry.items() if k not in known},
                )
            )
        axes[key] = tuple(labels)
    missing_axes = [axis for axis in CORE_AXES if axis not in axes]
    if missing_axes:
        raise CodebookError(f"{source}: missing axis {', '.join(repr(a) for a in missing_axes)}")
    rules = data.get("rules") or {}
    if not isinstance(rules, dict):
        raise CodebookError(f"{source}: key 'rules' must be a mapping")
    return Codebook(axes=axes, version=data.get("version"), rules={k: str(v) for k, v in rules.items()}, path=source)


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Load and validate a codebook YAML file (the shipped one by default)."""
    path = Path(path) if path is not None else DEFAULT_CODEBOOK
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CodebookError(f"{path}: codebook file not found") from None
    except UnicodeDecodeError as exc:
        raise CodebookError(f"{path}: codebook is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise CodebookError(f"{path}: cannot read codebook ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise CodebookError(f"{path}: invalid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return parse_codebook(data, source=str(path))


def check_labels(codebook: Codebook, axis: str, labels: Iterable[str], where: str = "") -> list[str]:
    """Return ``labels`` as a list, refusing any the codebook does not define on ``axis``."""
    known = set(codebook.labels(axis))
    labels = list(labels)
    unknown = [lab for lab in labels if lab not in known]
    if unknown:
        src = f" ({codebook.path})" if codebook.path else ""
        prefix = f"{where}: " if where else ""
        raise CodebookError(f"{prefix}unknown {axis} label(s) {', '.join(map(repr, unknown))} not in the codebook{src}")
    return labels
