"""Test settings: few BLAS threads (oversubscription on 2 cores slows small SVDs tenfold), no network."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ------------------------------------------------------------------------------------------------------------------
# Shared fixtures for the codebook, tagger, workspace and CLI tests.
#
# Tests never write into the repository's models/ or workspace/ folders: a session-wide autouse fixture points
# CDPD_MODELS and CDPD_HOME at temporary folders, and the linear model is trained once per session into that
# CDPD_MODELS folder (only when a test asks for it).
# ------------------------------------------------------------------------------------------------------------------

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO / "corpora"


@pytest.fixture(scope="session", autouse=True)
def cdpd_env(tmp_path_factory):
    """CDPD_MODELS, CDPD_HOME and CDPD_LOG (libraries' log records) point at session temp folders; restored
    afterwards."""
    root = tmp_path_factory.mktemp("cdpd_env")
    mp = pytest.MonkeyPatch()
    mp.setenv("CDPD_MODELS", str(root / "models"))
    mp.setenv("CDPD_HOME", str(root / "workspace"))
    mp.setenv("CDPD_LOG", str(root / "cdpd.log"))
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def codebook():
    from nlp.codebook import load_codebook

    return load_codebook()


@pytest.fixture(scope="session")
def processor(codebook):
    from nlp.text import TextProcessor

    return TextProcessor(codebook)


@pytest.fixture(scope="session")
def seed_annotations(codebook):
    from nlp.annotations import read_seed_annotations

    return read_seed_annotations(codebook)


@pytest.fixture(scope="session")
def seed_units(seed_annotations, processor):
    """The passages of every shipped annotated unit (one spaCy pass over the 2,244 units, ~7 s)."""
    from nlp.training import annotation_units

    return annotation_units(seed_annotations, processor)


@pytest.fixture(scope="session")
def seed_labels(seed_annotations, codebook):
    from nlp.annotations import label_matrix

    return label_matrix(seed_annotations, codebook)


@pytest.fixture(scope="session")
def heldout_split_indices(seed_annotations):
    from nlp.annotations import heldout_split

    return heldout_split(seed_annotations)


@pytest.fixture(scope="session")
def heldout_linear(codebook, seed_units, seed_labels, heldout_split_indices):
    """The linear tagger with default settings fitted on every shipped unit except the held-out documents (~20 s):
    the acceptance test scores it on the held-out units, and it is the session's saved ``linear`` model."""
    from nlp.taggers.linear import LinearTagger

    train_idx, _ = heldout_split_indices
    return LinearTagger(codebook).fit([seed_units[i] for i in train_idx],
                                      {a: v[train_idx] for a, v in seed_labels.items()})


@pytest.fixture(scope="session")
def trained_linear(cdpd_env, heldout_linear, heldout_split_indices):
    """``heldout_linear`` saved as the model ``linear`` in the session's CDPD_MODELS folder; returns ModelInfo.

    (Fitting a second time on all 2,244 units, as ``cdpd train`` does, would cost another ~20 s for nothing the
    tests need; ``nlp.training.train`` itself is exercised on small files by test_cli and test_codebook.)
    """
    import os

    from nlp.annotations import SEED_ANNOTATIONS
    from nlp.models import file_sha256, models_dir, save_model

    assert models_dir() == cdpd_env / "models" == Path(os.environ["CDPD_MODELS"])
    training = {"path": str(SEED_ANNOTATIONS.parent), "sha256": file_sha256(SEED_ANNOTATIONS),
                "n_units": len(heldout_split_indices[0])}
    return save_model(heldout_linear, "linear", training=training)


@pytest.fixture(scope="session")
def linear_model(trained_linear, codebook):
    """(tagger, info) of the session's trained linear model, loaded from disk as the CLI does."""
    from nlp.models import load_model

    return load_model("linear", codebook)


@pytest.fixture(scope="session")
def state_department():
    import pandas as pd

    return pd.read_parquet(CORPORA / "state_department.parquet")


@pytest.fixture(scope="session")
def king_county():
    import pandas as pd

    return pd.read_parquet(CORPORA / "king_county.parquet")


@pytest.fixture(scope="session")
def seed_rows():
    """The raw JSON objects of corpora/annotations/seed.jsonl."""
    import json

    lines = (CORPORA / "annotations" / "seed.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def small_seed_rows(seed_rows, codebook):
    """About 120 seed units, the first ones plus the first unit of every label they lack: every label has a
    positive example, so small models trained on them learn every label."""
    rows = list(seed_rows[:110])
    for axis in codebook.axis_names:
        for label in codebook.labels(axis):
            if not any(label in r[axis] for r in rows):
                rows.append(next(r for r in seed_rows if label in r[axis]))
    return rows


@pytest.fixture(scope="session")
def small_units(codebook, processor, small_seed_rows):
    from nlp.annotations import Annotation, label_matrix
    from nlp.training import annotation_units

    anns = [Annotation(r["id"], r["text"], {a: r[a] for a in codebook.axis_names}, r["title"], r["sample"])
            for r in small_seed_rows]
    return annotation_units(anns, processor), label_matrix(anns, codebook)


@pytest.fixture(scope="session")
def small_linear(codebook, small_units):
    """A linear tagger fitted on ~120 seed units (every label present): small and quick to save and load."""
    units, y = small_units
    from nlp.taggers.linear import LinearTagger

    return LinearTagger(codebook, cv_folds=3).fit(units, y)


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory):
    """One embedding cache (SQLite) for the session: the tests that fit embedding models on the same small units
    (ensemble, contract, threads) embed each passage once."""
    return str(tmp_path_factory.mktemp("embedding_cache") / "embeddings.sqlite")


@pytest.fixture(scope="session")
def small_ensemble(codebook, small_units, embedding_cache):
    """The ensemble tagger (linear and embedding members, 3-fold threshold tuning) fitted on the ~120 small seed
    units; its embedding member is a fitted embedding tagger too (~40 s on 2 cores, the embedding of the units)."""
    from nlp.taggers.ensemble import EnsembleTagger

    units, y = small_units
    members = {"linear": {"cv_folds": 3}, "embedding": {"cv_folds": 3}}
    return EnsembleTagger(codebook, member_params=members, cache=embedding_cache).fit(units, y)


@pytest.fixture(scope="session")
def classify_workspace(linear_model):
    """A function classifying every unclassified document of the workspace at ``home`` with the session's linear
    model, as `cdpd run` does (:func:`nlp.jobs.classify_workspace`)."""
    from nlp.jobs import classify_workspace
    from nlp.workspace import Workspace

    def run(home, model: str = "linear") -> None:
        from nlp.models import load_model

        tagger, info = linear_model if model == "linear" else load_model(model, linear_model[0].codebook)
        with Workspace(home) as ws:
            classify_workspace(ws, tagger, info, tagger.codebook)

    return run


@pytest.fixture(scope="session")
def shipped_documents():
    """A few hundred real documents of every shipped corpus (city and national), as Documents."""
    import pandas as pd

    from nlp.schema import Document

    frames = [pd.read_parquet(CORPORA / f"{name}.parquet").head(n) for name, n in
              [("nyc_council", 150), ("ccc", 150), ("king_county", 60), ("state_department", 120),
               ("white_house", 80), ("ungdc_sample", 40)]]
    return [Document.from_record(r) for f in frames for r in f.to_dict("records")]


@pytest.fixture(scope="module")
def torch_all_cpus():
    """Encode with every CPU in a module that embeds (OMP_NUM_THREADS=1 above is about BLAS in small SVDs)."""
    import torch

    from nlp import embeddings

    before = torch.get_num_threads()
    torch.set_num_threads(embeddings.available_cpus())
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def static_table(cdpd_env):
    """The session's static encoder, distilled from MiniLM's first 6,000 word pieces (the characters and the ~5,000
    commonest words) instead of all 29,525: a sixth of the time (the full table takes about a minute of CPU), the
    same recipe. Written where :func:`nlp.static.static_encoder` looks, so every static tagger of the session uses
    it. Tests check mechanics with it (batching, storage, threads); quality is measured by
    benchmarks/semantic_speed.py on the full table."""
    from nlp import static

    path = static.cache_file()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        static.StaticEncoder(static.distill(limit=6000)).save(path)
    return static.static_encoder()
