"""Training and evaluating taggers on annotated units."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .annotations import (HELDOUT_FRACTION, Annotation, document_key, heldout_split, label_matrix, period_of,
                          read_annotations, source_of)
from .codebook import Codebook
from .errors import CdpdError, ConfigError
from .metrics import axis_report
from .models import ModelInfo, file_sha256, save_model
from .schema import Document, text_for_tagging
from .taggers import Tagger, get_tagger_class
from .text import Passage, TextProcessor

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def annotation_units(annotations: list[Annotation], processor: TextProcessor) -> list[list[Passage]]:
    docs = (text_for_tagging(Document(id=a.id, text=a.text, title=a.title)) for a in annotations)
    return list(processor.process(docs))


def evaluate_tagger(tagger: Tagger, units, y: dict[str, np.ndarray], codebook: Codebook,
                    sources: list[str] | None = None, periods: list[str] | None = None) -> dict[str, Any]:
    """Micro/macro F1, per-label P/R/F1/support and the false-label rate on empty units per axis, on
    document-level (passage-aggregated) predictions; per source too when ``sources`` names each unit's, per period
    when ``periods`` does (:func:`~nlp.annotations.period_of`)."""
    pred = tagger.predict(units)
    return {axis: axis_report(y[axis], pred[axis], codebook.labels(axis), sources, periods)
            for axis in codebook.axis_names}


def tagger_settings(cls: type[Tagger], params: dict[str, Any] | None, cache: str | Path | None = None
                    ) -> dict[str, Any]:
    """``params`` plus the runtime settings a tagger class takes: for those that embed text (``cache`` among their
    runtime settings), the persistent embedding cache (``cache``, by default ``$CDPD_HOME/embeddings.sqlite``)
    unless ``params`` names one, so that a retrain does not encode the same passages again.

    A parameter the tagger does not take is a :class:`~nlp.errors.ConfigError` naming those it does, before any
    text is processed."""
    settings = dict(params or {})
    accepted = (*cls._param_names, *getattr(cls, "_runtime_names", ()))
    unknown = sorted(k for k in settings if k not in accepted)
    if unknown:
        raise ConfigError(f"the {cls.name} tagger has no parameter {', '.join(map(repr, unknown))}; it takes "
                          f"{', '.join(cls._param_names) or 'none'}")
    cls.check_params(settings)
    if "cache" in getattr(cls, "_runtime_names", ()) and "cache" not in settings:
        from .embeddings import default_cache_path

        settings["cache"] = str(cache if cache is not None else default_cache_path())
    return settings


def fit_tagger(cls: type[Tagger], codebook: Codebook, settings: dict[str, Any], units, y,
               user_params: dict[str, Any] | None = None, sources: list[str] | None = None) -> Tagger:
    """A new tagger of ``cls`` with ``settings``, fitted; ``sources`` (each unit's source) go to a tagger whose
    ``fit`` takes them. When the user gave parameters (``user_params``) and the tagger or the library under it
    refuses one of their values (scikit-learn's parameter validation raises a ``ValueError``), that is a
    :class:`~nlp.errors.ConfigError` naming the parameters; without user parameters the same failure is a bug and
    keeps its traceback."""
    try:
        tagger = cls(codebook, **settings)
        if sources is not None and cls.fit_takes_sources:
            return tagger.fit(units, y, sources=sources)
        return tagger.fit(units, y)
    except (TypeError, ValueError) as exc:
        if not user_params or isinstance(exc, CdpdError):
            raise
        raise ConfigError(f"the {cls.name} tagger cannot be fitted with the parameters "
                          f"{json.dumps(user_params, default=str)}: {exc}") from exc


def annotations_sha256(annotations: list[Annotation]) -> str:
    """A hash of annotation content (texts and labels, in order): the training-data identity of a model."""
    h = hashlib.sha256()
    for ann in annotations:
        h.update(json.dumps([ann.text, {a: sorted(v) for a, v in sorted(ann.labels.items())}]).encode("utf-8"))
    return h.hexdigest()


def train(annotations_path: str | Path | list[Annotation], codebook: Codebook, *, tagger: str = "linear",
          name: str | None = None, params: dict[str, Any] | None = None, holdout: float = HELDOUT_FRACTION,
          models_folder: Path | None = None, progress: Progress = _quiet,
          source: str | None = None, cache: str | Path | None = None,
          leave_source_out: bool = False) -> tuple[ModelInfo, dict[str, Any]]:
    """Train without the held-out documents, report on them (overall and per source), then refit on all units.

    ``leave_source_out`` also records what a source the model never saw gets (``metrics["leave_source_out"]``):
    each source's units predicted by a model fitted on the other sources only, scored on the units the held-out
    set would score (drawn at random or by cue). One more fit per source.

    The held-out set is the fixed split of :func:`nlp.annotations.heldout_split` (a quarter of the documents, by a
    hash of their key; only units drawn at random or by cue are scored), so every model trained on the same
    annotations is measured on the same units. The saved model is fitted on every unit; its recorded metrics are
    those of the same settings fitted without the held-out documents, so they are honest estimates of what the
    saved model does on new documents.
    Taggers that embed text keep their embeddings in ``cache`` (default ``$CDPD_HOME/embeddings.sqlite``).
    """
    if isinstance(annotations_path, list):
        annotations = annotations_path
        source = source or "annotations"
        data_hash = annotations_sha256(annotations)
        progress(f"training on {len(annotations)} annotated units ({source})")
    else:
        annotations = read_annotations(annotations_path, codebook)
        source = str(annotations_path)
        data_hash = file_sha256(annotations_path)
        progress(f"read {len(annotations)} annotated units from {annotations_path}")
    cls = get_tagger_class(tagger)
    user_params, params = params, tagger_settings(cls, params, cache)  # a bad parameter fails before any work
    sources = [source_of(a) for a in annotations]
    if leave_source_out and cls.trainable:
        from .annotations import source_folds

        source_folds(sources)  # one source only: refused before any work
    processor = TextProcessor(codebook)
    t0 = time.perf_counter()
    units = annotation_units(annotations, processor)
    y = label_matrix(annotations, codebook)
    progress(f"processed {sum(len(u) for u in units)} passages in {time.perf_counter() - t0:.1f}s")
    metrics: dict[str, Any] = {}
    train_idx, test_idx = heldout_split(annotations, holdout)
    if cls.trainable and test_idx:
        progress(f"fitting {tagger} on {len(train_idx)} units, evaluating on {len(test_idx)} held-out units")
        model = fit_tagger(cls, codebook, params, [units[i] for i in train_idx],
                           {a: v[train_idx] for a, v in y.items()}, user_params, [sources[i] for i in train_idx])
        metrics = {"heldout": evaluate_tagger(model, [units[i] for i in test_idx],
                                              {a: v[test_idx] for a, v in y.items()}, codebook,
                                              [sources[i] for i in test_idx],
                                              [period_of(annotations[i]) for i in test_idx]),
                   "heldout_units": len(test_idx), "heldout_fraction": holdout,
                   "heldout_ids_sha256": hashlib.sha256("\n".join(annotations[i].id for i in test_idx)
                                                        .encode("utf-8")).hexdigest()}
        for axis in codebook.axis_names:
            r = metrics["heldout"][axis]
            progress(f"  held-out {axis}: micro-F1 {r['micro']['f1']:.3f}, macro-F1 {r['macro_f1']:.3f}"
                     + _empty_note(r))
    elif cls.trainable and holdout:
        from .annotations import scorable

        progress("no held-out evaluation: " + (
            "too few documents for the held-out share" if any(scorable(annotations)) else
            "no unit was drawn at random or by cue (units from an uncertainty or diversity queue train the model "
            "but are never scored)"))
    if leave_source_out and cls.trainable:
        unseen = _leave_source_out_report(cls, codebook, params, user_params, annotations, units, y, sources,
                                          progress)
        if unseen is not None:
            metrics["leave_source_out"] = unseen
    progress(f"fitting {tagger} on all {len(units)} units")
    t0 = time.perf_counter()
    model = fit_tagger(cls, codebook, params, units, y, user_params, sources)
    fit_seconds = time.perf_counter() - t0
    training = {"path": source, "sha256": data_hash, "n_units": len(units), "fit_seconds": round(fit_seconds, 2)}
    info = save_model(model, name or tagger, training=training, metrics=metrics, folder=models_folder)
    progress(f"saved model {info.ref} ({fit_seconds:.1f}s to fit)")
    return info, metrics


def _leave_source_out_report(cls, codebook, params, user_params, annotations, units, y, sources, progress):
    from .annotations import scorable, source_folds

    keep = np.array(scorable(annotations))
    if not keep.any():
        progress("leave-one-source-out: skipped, no unit was drawn at random or by cue to score")
        return None
    folds = source_folds(sources)
    progress(f"leave-one-source-out: {len(folds)} fits of {cls.name}, each without one source")
    _, predicted = _predict_folds(cls, codebook, params, user_params, units, y, sources, folds, progress, sources)
    kept_sources = [s for s, k in zip(sources, keep) if k]
    report = {axis: axis_report(y[axis][keep], predicted[axis][keep], codebook.labels(axis), kept_sources)
              for axis in codebook.axis_names}
    for axis, r in report.items():
        progress(f"  {axis}, each source unseen: micro-F1 {r['micro']['f1']:.3f}, macro-F1 {r['macro_f1']:.3f}"
                 + _empty_note(r))
    return report


def _empty_note(r: dict[str, Any]) -> str:
    rate = r.get("false_on_empty")
    return "" if rate is None else f", {rate:.1%} of the {r['empty_units']} units without a label get one"


def out_of_fold_scores(annotations: list[Annotation], codebook: Codebook, *, tagger: str = "linear",
                       params: dict[str, Any] | None = None, k: int = 5, seed: int = 0,
                       progress: Progress = _quiet, cache: str | Path | None = None
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(labels, scores) per axis, each unit scored by a model fitted on the folds that do not hold it."""
    from .annotations import stratified_folds

    units = annotation_units(annotations, TextProcessor(codebook))
    y = label_matrix(annotations, codebook)
    cls = get_tagger_class(tagger)
    user_params, params = params, tagger_settings(cls, params, cache)
    scores = {axis: np.zeros(v.shape) for axis, v in y.items()}
    groups = [document_key(a) for a in annotations]
    sources = [source_of(a) for a in annotations]
    for n, (train_idx, test_idx) in enumerate(stratified_folds(y, k, seed, groups), 1):
        model = fit_tagger(cls, codebook, params, [units[i] for i in train_idx],
                           {a: v[train_idx] for a, v in y.items()}, user_params, [sources[i] for i in train_idx])
        proba = model.predict_proba([units[i] for i in test_idx])
        for axis in y:
            scores[axis][test_idx] = proba[axis]
        progress(f"fold {n}/{k}: fitted on {len(train_idx)} units, scored {len(test_idx)}")
    return y, scores


def label_issues(annotations: list[Annotation], codebook: Codebook, *, tagger: str = "linear",
                 params: dict[str, Any] | None = None, k: int = 5, seed: int = 0,
                 progress: Progress = _quiet, cache: str | Path | None = None) -> list[dict[str, Any]]:
    """Likely label errors, by cleanlab's confident learning on out-of-fold scores (multi-label, per axis).

    Returns one row per suspect (unit, axis), most suspicious first: the unit's labels, the labels the model
    would give, and cleanlab's label-quality score (lower is more suspect).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    y, scores = out_of_fold_scores(annotations, codebook, tagger=tagger, params=params, k=k, seed=seed,
                                   progress=progress, cache=cache)
    rows = []
    for axis in codebook.axis_names:
        labels = codebook.labels(axis)
        present = y[axis].sum(0) > 0  # cleanlab needs every class seen at least once
        Y, P = y[axis][:, present], np.clip(scores[axis][:, present], 1e-6, 1 - 1e-6)
        names = [lab for lab, keep in zip(labels, present) if keep]
        given = [list(np.flatnonzero(r)) for r in Y]
        # n_jobs=1: cleanlab otherwise forks a multiprocessing pool from this (threaded) process, and a forked
        # worker can deadlock on a lock another thread held at the fork (seen: `cdpd annotations issues` hanging
        # in CI with the tqdm monitor thread alive); one process is fast enough for a few thousand units.
        flagged = find_label_issues(given, P, multi_label=True, return_indices_ranked_by="self_confidence",
                                    n_jobs=1)
        quality = get_label_quality_scores(given, P)
        for i in flagged:
            rows.append({"id": annotations[i].id, "axis": axis, "quality": float(quality[i]),
                         "given": [names[j] for j in given[i]],
                         "suggested": [names[j] for j in np.flatnonzero(P[i] >= 0.5)],
                         "text": annotations[i].text[:300]})
    return sorted(rows, key=lambda r: r["quality"])


def cross_validate(annotations: list[Annotation], codebook: Codebook, *, tagger: str = "linear",
                   params: dict[str, Any] | None = None, k: int = 5, seed: int = 0,
                   progress: Progress = _quiet, cache: str | Path | None = None,
                   by: str = "document") -> dict[str, Any]:
    """Cross-validation: each unit is predicted by a model that saw no part of its document; the report covers
    every unit once, overall and per source, with a calibration table of the out-of-fold scores.

    ``by="document"``: ``k`` iteratively stratified folds grouped by document. ``by="source"``: one fold per
    source (``k`` is not used), so each source is predicted by a model that never saw it, the figure to expect on a
    source of one's own (:func:`~nlp.annotations.source_folds`). ``by="period"``: one fold per decade of each
    source dated in two decades or more (:func:`~nlp.annotations.period_folds`); the report covers those units
    only."""
    from .annotations import period_folds, source_folds, stratified_folds

    if by not in ("document", "source", "period"):
        raise ConfigError(f"cross-validation by {by!r}: choose 'document', 'source' or 'period'")
    sources = [source_of(a) for a in annotations]
    periods = [period_of(a) for a in annotations]
    # refused before any text is read
    folds = source_folds(sources) if by == "source" else period_folds(sources, periods) if by == "period" else None
    processor = TextProcessor(codebook)
    units = annotation_units(annotations, processor)
    y = label_matrix(annotations, codebook)
    cls = get_tagger_class(tagger)
    user_params, params = params, tagger_settings(cls, params, cache)
    if folds is None:
        folds = stratified_folds(y, k, seed, [document_key(a) for a in annotations])
    names = {"source": sources, "period": [f"{s} {p}" for s, p in zip(sources, periods)]}.get(by)
    scores, predicted = _predict_folds(cls, codebook, params, user_params, units, y, sources, folds, progress,
                                       names)
    scored = np.sort(np.concatenate([test for _, test in folds]))  # every unit, but by period
    y, scores, predicted = ({axis: v[scored] for axis, v in m.items()} for m in (y, scores, predicted))
    sources, periods = [sources[i] for i in scored], [periods[i] for i in scored]
    return _scored_report(codebook, y, predicted, scores, sources, periods)


def _predict_folds(cls: type[Tagger], codebook: Codebook, params: dict[str, Any], user_params, units, y, sources,
                   folds, progress: Progress, names: list[str] | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Out-of-fold (scores, 0/1 predictions at each fold model's thresholds) per axis: every unit scored by the
    model fitted on the folds that do not hold it. ``names`` (one per unit): what a fold holds out, for progress."""
    scores = {axis: np.zeros(v.shape) for axis, v in y.items()}
    predicted = {axis: np.zeros(v.shape, dtype=int) for axis, v in y.items()}
    for n, (train_idx, test_idx) in enumerate(folds, 1):
        model = fit_tagger(cls, codebook, params, [units[i] for i in train_idx],
                           {a: v[train_idx] for a, v in y.items()}, user_params, [sources[i] for i in train_idx])
        proba = model.predict_proba([units[i] for i in test_idx])
        for axis in y:
            scores[axis][test_idx] = proba[axis]
            predicted[axis][test_idx] = proba[axis] >= model.thresholds_[axis]
        held_out = f" of {names[test_idx[0]]}" if names is not None else ""
        progress(f"fold {n}/{len(folds)}: fitted on {len(train_idx)} units, predicted {len(test_idx)}{held_out}")
    return scores, predicted


#: The breakdowns of an axis report (:func:`~nlp.metrics.axis_report`) that evaluation output shows, with the
#: heading of their first column.
BREAKDOWNS = (("by_source", "source"), ("by_period", "period"))


def group_rows(r: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """One axis report's breakdown ``key`` (``by_source``, ``by_period``) as rows: group, units, micro-F1,
    macro-F1, false on empty and its base; empty when there are fewer than two groups (nothing to break down)."""
    groups = r.get(key) or {}
    if len(groups) < 2:
        return []
    return [{"group": name, "units": g["n_units"], "micro_f1": g["micro"]["f1"], "macro_f1": g["macro_f1"],
             "false_on_empty": g.get("false_on_empty"), "empty_units": g.get("empty_units", 0)}
            for name, g in groups.items()]


def false_on_empty_sentence(r: dict[str, Any]) -> str:
    """The false-label rate on units without a label, in words (console and report files); "" without such units."""
    if r.get("false_on_empty") is None:
        return ""
    return f"{r['false_on_empty']:.1%} of the {r['empty_units']} units without a label were given one"


def report_markdown(report: dict[str, Any], title: str) -> str:
    """An evaluation report as markdown: per axis, the summary, the false-label rate on units without a label,
    per-source and per-period tables, per-label table and calibration table."""
    lines = [f"# {title}", ""]
    for axis, r in report.items():
        lines += [f"## {axis}", "",
                  f"micro P {r['micro']['precision']:.3f} R {r['micro']['recall']:.3f} F1 {r['micro']['f1']:.3f}; "
                  f"macro F1 {r['macro_f1']:.3f}; samples F1 {r.get('samples_f1', float('nan')):.3f}; "
                  f"{r['n_units']} units." + (f" {false_on_empty_sentence(r)}." if false_on_empty_sentence(r)
                                               else ""), ""]
        for key, what in BREAKDOWNS:
            rows = group_rows(r, key)
            if rows:
                lines += [f"| {what} | units | micro F1 | macro F1 | false on empty |",
                          "| --- | ---: | ---: | ---: | ---: |"]
                lines += [f"| {g['group']} | {g['units']} | {g['micro_f1']:.3f} | {g['macro_f1']:.3f} | "
                          + ("-" if g["false_on_empty"] is None else
                             f"{g['false_on_empty']:.1%} of {g['empty_units']}") + " |" for g in rows]
                lines.append("")
        lines += ["| label | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {lab} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
                  for lab, m in r["labels"].items()]
        if r.get("calibration"):
            lines += ["", f"Calibration of the scores (expected calibration error {r['ece']:.3f}):", "",
                      "| score bin | n | mean score | observed share |", "| --- | ---: | ---: | ---: |"]
            lines += [f"| {c['bin']} | {c['n']} | {c['mean_score']:.3f} | {c['observed']:.3f} |"
                      for c in r["calibration"]]
        lines.append("")
    return "\n".join(lines)


def report_html(report: dict[str, Any], title: str) -> str:
    """The same report as a standalone HTML page (every value escaped)."""
    import html

    import pandas as pd

    parts = [f"<h1>{html.escape(title)}</h1>"]
    for axis, r in report.items():
        parts.append(f"<h2>{html.escape(axis)}</h2><p>micro F1 {r['micro']['f1']:.3f}, macro F1 {r['macro_f1']:.3f}, "
                     f"samples F1 {r.get('samples_f1', float('nan')):.3f}, {r['n_units']} units. "
                     f"{html.escape(false_on_empty_sentence(r))}</p>")
        for key, what in BREAKDOWNS:
            rows = group_rows(r, key)
            if rows:
                parts.append(pd.DataFrame(rows).rename(columns={"group": what}).round(3)
                             .to_html(escape=True, index=False))
        parts.append(pd.DataFrame(r["labels"]).T.round(3).to_html(escape=True))
        if r.get("calibration"):
            parts.append(f"<p>Calibration (ECE {r['ece']:.3f})</p>"
                         + pd.DataFrame(r["calibration"]).round(3).to_html(escape=True, index=False))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title></head><body>"
            + "".join(parts) + "</body></html>")


def evaluate(annotations: list[Annotation], tagger: Tagger, codebook: Codebook) -> dict[str, Any]:
    """A trained model on annotations: per-label P/R/F1/support, micro/macro/samples F1, score calibration."""
    processor = TextProcessor(codebook)
    units = annotation_units(annotations, processor)
    y = label_matrix(annotations, codebook)
    proba = tagger.predict_proba(units)  # scored once: the predictions are these scores at the thresholds
    predicted = {axis: proba[axis] >= tagger.thresholds_[axis] for axis in proba}
    return _scored_report(codebook, y, predicted, proba, [source_of(a) for a in annotations],
                          [period_of(a) for a in annotations])


def _scored_report(codebook: Codebook, y, predicted, scores, sources, periods) -> dict[str, Any]:
    """Per axis: :func:`~nlp.metrics.axis_report` of the predictions (per source and per period) and the
    calibration table of the scores they were cut from, with its expected calibration error."""
    from .metrics import calibration_table, expected_calibration_error

    report = {axis: axis_report(y[axis], predicted[axis], codebook.labels(axis), sources, periods)
              for axis in codebook.axis_names}
    for axis in report:
        table = calibration_table(y[axis], scores[axis])
        report[axis]["calibration"] = table
        report[axis]["ece"] = expected_calibration_error(table)
    return report


def seed_and_workspace_annotations(codebook: Codebook, home: str | Path | None = None,
                                   say: Callable[[str], None] = _quiet) -> tuple[list[Annotation], str]:
    """The shipped annotation rounds merged with the workspace's (deduplicated by text; a conflict is reported and the
    workspace's label wins), and a one-line description of that training source."""
    from .annotations import merge_annotations, read_seed_annotations, shipped_source_keys
    from .workspace import DB_FILE, Workspace, default_home

    seed = read_seed_annotations(codebook)
    folder = Path(home) if home is not None else default_home()
    own = []
    if (folder / DB_FILE).exists():
        with Workspace(folder, create=False) as ws:
            own = ws.annotation_units(codebook)
    if any(a.meta.get("source") for a in own):  # shipped sources under the rounds' keys (one source, one name)
        keys = shipped_source_keys(seed)
        for a in own:
            if a.meta.get("source") in keys:
                a.meta["source"] = keys[a.meta["source"]]
    report = merge_annotations(seed, own)
    for kept, new, old_labels, new_labels in report.conflicts:
        say(f"conflict: {new} relabels the text of {kept} ({old_labels} -> {new_labels}); using {new}")
    say(f"{len(seed)} seed + {len(own)} workspace annotations -> {len(report.merged)} units "
        f"({len(report.duplicates)} duplicate(s), {len(report.conflicts)} conflict(s))")
    return report.merged, f"seed + workspace ({len(own)} annotations)"
