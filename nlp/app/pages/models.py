"""Models: the registered versions with their held-out scores, retraining on the seed and workspace annotations,
a per-label comparison of a version with the active one, and activation."""

import pandas as pd
import streamlit as st

from nlp.app import common as c
from nlp.metrics import quality_by_source, side_by_side
from nlp.models import activate, active_ref, list_models, model_card, read_meta, same_heldout
from nlp.training import seed_and_workspace_annotations, train

#: Training stages (first words of train()'s progress messages) and how far along each one is.
STAGES = (("read ", 0.05), ("training on", 0.05), ("processed", 0.3), ("fitting", 0.35), ("  held-out", 0.6),
          ("saved model", 1.0))
TIERS = {"linear": "linear: TF-IDF + seeds, logistic regression with a scope gate (~30 s)",
         "embedding": "embedding: static MiniLM word-piece vectors + logistic regression (~1 min the first "
                      "time: the table is distilled once)",
         "ensemble": "ensemble: linear and embedding averaged (~1-2 min; the first time also distils the table)",
         "transformer": "transformer: fine-tuned MiniLM (slow on CPU: ~15 min or more)"}

st.title("Models")
cb = c.codebook()


def ref_of(meta) -> str:
    return f"{meta['name']}@{meta['version']}"


#: Short column names keep the listing inside the page; ``help`` says what each holds.
AXIS_ABBREVIATIONS = {"functions": "F", "domains": "D"}


def table(models) -> pd.DataFrame:
    """One row per version, newest first, narrow enough to fit the page: the training data's path is in the card."""
    rows = []
    for meta in reversed(models):
        held = meta.get("metrics", {}).get("heldout", {})
        created = str(meta.get("created_at", ""))
        row = {"model": ref_of(meta), "active": bool(meta.get("active")), "tagger": meta.get("tagger"),
               "created": created[:16].replace("T", " "), "units": meta.get("training", {}).get("n_units")}
        for axis in cb.axis_names:
            if axis in held:
                short = AXIS_ABBREVIATIONS.get(axis, axis)
                row[f"{short} micro"] = round(held[axis]["micro"]["f1"], 3)
                row[f"{short} macro"] = round(held[axis]["macro_f1"], 3)
                rate = held[axis].get("false_on_empty")
                row[f"{short} false+"] = None if rate is None else round(rate, 3)
        rows.append(row)
    return pd.DataFrame(rows)


def column_help() -> dict:
    config = {"units": st.column_config.NumberColumn("units", help="annotated units the version was trained on"),
              "created": st.column_config.TextColumn("created", help="when it was trained (UTC)")}
    for axis in cb.axis_names:
        short = AXIS_ABBREVIATIONS.get(axis, axis)
        config[f"{short} micro"] = st.column_config.NumberColumn(
            f"{short} micro", help=f"{axis}: micro-F1 on the held-out units", format="%.3f")
        config[f"{short} macro"] = st.column_config.NumberColumn(
            f"{short} macro", help=f"{axis}: macro-F1 (mean over labels) on the held-out units", format="%.3f")
        config[f"{short} false+"] = st.column_config.NumberColumn(
            f"{short} false+", help=f"{axis}: of the held-out units annotated with no {axis} label, the share "
                                    "given one", format="%.3f")
    return config


def activate_version(ref: str) -> None:
    """The button's callback, run before the page: the whole page then shows ``ref`` as active, and "Against" is
    reset so that it follows the newly active model instead of keeping its last choice."""
    activate(ref)
    st.session_state.pop("models_baseline", None)
    st.session_state["models_flash"] = (
        f"{ref} is now the active model: Classify, Annotate and `cdpd classify` use it.", [])


if "models_flash" in st.session_state:
    flash, log = st.session_state.pop("models_flash")
    st.success(flash)
    if log:
        with st.expander("Training log"):
            st.code("\n".join(log), language=None)

models = list_models()
active = active_ref()
if models:
    st.dataframe(table(models), hide_index=True, width="stretch", column_config=column_help())
    st.caption("F: functions, D: domains. Scores are micro/macro F1 on the fixed held-out set: the units drawn at "
               "random or by cue from a quarter of the annotated documents (chosen by a hash of the document id, so every version is "
               "measured on the same units), from the same settings fitted without those documents. False on "
               "empty (false+): of the held-out units annotated with no label on that axis (on functions: "
               "domestic business), the share the model gave one.")
else:
    st.info("No trained model yet: train one below (or run `make run`).")

st.subheader("Retrain")
with st.form("retrain"):
    tier = st.selectbox("Tagger", list(TIERS), format_func=TIERS.get, key="retrain_tier")
    name = st.text_input("Name", value="", placeholder="default: the tagger's name", key="retrain_name")
    make_active = st.checkbox("Activate the new version when done", key="retrain_activate")
    go = st.form_submit_button("Train on seed + workspace annotations", type="primary")
if go:
    bar = st.progress(0.0, text="Reading annotations ...")
    log: list[str] = []

    def progress(message: str) -> None:
        log.append(message)
        done = next((f for prefix, f in STAGES if message.startswith(prefix)), None)
        if done is not None:
            progress.value = max(progress.value, done)
        bar.progress(progress.value, text=message.strip())

    progress.value = 0.0
    try:
        with st.status("Training ...", expanded=False) as status:
            data, source = seed_and_workspace_annotations(cb, say=progress)
            params = None
            if tier == "embedding":
                from nlp.embeddings import default_cache_path

                params = {"cache": str(default_cache_path())}
            info, _ = train(data, cb, tagger=tier, name=name.strip() or None, params=params, source=source,
                            progress=progress)
            for line in log:
                st.write(line)
            status.update(label=f"Trained {info.ref}", state="complete")
        st.session_state["trained"] = info.ref
        st.session_state["models_chosen"] = info.ref  # the comparison below opens on the new version
        if make_active or active is None:
            activate(info.ref)
            st.session_state.pop("models_baseline", None)  # "Against" follows the new active model
            flash = f"Trained {info.ref}; it is now the active model."
        else:
            flash = f"Trained and registered {info.ref}. Compare it with the active model below, then activate it."
        st.session_state["models_flash"] = (flash, log)
        st.rerun()  # the listing above now includes the new version
    except Exception as exc:
        st.error(f"Training failed: {c.friendly(exc)}")

models = list_models()
refs = [ref_of(m) for m in reversed(models)]
active = active_ref()
if len(refs) >= 1:
    st.subheader("Compare and activate")
    default = refs.index(st.session_state["trained"]) if st.session_state.get("trained") in refs else 0
    left, right = st.columns(2)
    chosen = left.selectbox("Version", refs, index=default, key="models_chosen")
    baseline = right.selectbox("Against", refs, index=refs.index(active) if active in refs else 0,
                               key="models_baseline")
    a, b = read_meta(baseline), read_meta(chosen)
    ha, hb = a.get("metrics", {}).get("heldout"), b.get("metrics", {}).get("heldout")
    if chosen == baseline:
        st.caption("Pick two different versions to compare them.")
    elif ha and hb:
        same = same_heldout(a, b)
        frame = side_by_side(ha, hb).rename(columns={"A": f"{baseline} (A)", "B": f"{chosen} (B)"})
        st.dataframe(frame.round(3), width="stretch")
        st.caption("Per-label held-out F1. " + (
            "Both were measured on the same held-out units." if same else
            "The two were measured on different held-out units (one was recorded before the fixed held-out set, "
            "or trained on other annotation files); for a strict comparison run "
            "`cdpd models compare A B --annotations FILE`."))
    else:
        st.caption("One of the two has no held-out scores (e.g. the lexicon tagger).")
    if chosen != active:
        st.button(f"Activate {chosen}", key="models_activate", on_click=activate_version, args=(chosen,))
    else:
        st.caption(f"{chosen} is the active model.")
    if hb and any("by_source" in r for r in hb.values() if isinstance(r, dict)):
        st.markdown("**The chosen version per source** (held-out units)")  # no name in Markdown: names are data
        by_source = quality_by_source(hb)
        axes = [axis for axis in cb.axis_names if axis in by_source.columns.get_level_values(0)]
        for tab, axis in zip(st.tabs(axes), axes):  # one narrow table per axis: it fits the page
            with tab:
                st.dataframe(by_source[axis].round(3), width="stretch", key=f"models_sources_{axis}")
        st.caption("Per source: micro- and macro-F1, the share of units annotated with no label that were given "
                   "one (false on empty) and how many such units there were, and the units scored.")
    with st.expander("Model card"):
        st.markdown(model_card(read_meta(chosen)))
