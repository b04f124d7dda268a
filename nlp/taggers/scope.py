"""Scope features: which kinds of counterpart a sentence names (a country, a foreign city, an international
organisation, the words of diplomatic practice, or only domestic bodies), from a gazetteer that is data.

The codebook's scope rule says a function needs a foreign or international counterpart, audience or arena. A bag
of words learns that per word: "France" and "embassy" weigh as much as their few training examples say, and a
counterpart the annotations never named ("Seoul", "Eswatini", "NetZeroCities") weighs nothing. The gazetteer
(``corpora/scope_gazetteer.yaml``, its provenance written there) groups such words by kind, and the linear tier
adds one pseudo-token per match of a kind to the sentence ("§country"), so that the weight of a kind is learnt
from every member the training data holds and carries to members it does not.

With ``scoped_seeds``, a codebook seed matched in a sentence that names a counterpart abroad (any kind but
``us`` and ``domestic``) also counts as "§in_scope:LABEL": "cooperation" beside "Lyon" or "C40" apart from
"cooperation between local, regional and national stakeholders". A sentence naming only domestic counterparts
gets "§domestic_only". No label is named in the gazetteer; which kinds matter for which label is learnt.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import ConfigError, ModelError

#: The shipped gazetteer, beside the codebook.
DEFAULT_GAZETTEER = Path(__file__).resolve().parent.parent.parent / "corpora" / "scope_gazetteer.yaml"
#: Prefix of scope pseudo-tokens; lemmas never start with it (the tokenizer keeps "§" apart from words).
SCOPE_MARK = "§"
#: Kinds that name no counterpart abroad: for most sources the United States is home.
HOME_KINDS = frozenset({"us", "domestic"})
#: File a fitted linear model keeps its gazetteer in (JSON: kind -> phrases), so that a saved model scores the
#: same whatever the shipped gazetteer becomes.
GAZETTEER_FILE = "scope_gazetteer.json"


def lemmas_of(phrases: Sequence[str]) -> list[tuple[str, ...]]:
    """Each phrase as the tagger's tokens see it: lower-cased lemmas of its words, punctuation dropped."""
    from ..text import TextProcessor, shared_pipeline

    nlp = shared_pipeline()
    out = []
    for doc in nlp.pipe(phrases):
        sentences = TextProcessor._sentences(doc, nlp.vocab.strings, {})
        out.append(tuple(tok for s in sentences for tok in s.tokens))
    return out


class Gazetteer:
    """Phrases by kind, matched on lemma sequences: the longest phrase starting at a token wins, and matches do
    not overlap."""

    def __init__(self, kinds: Mapping[str, Sequence[str]],
                 entries: Sequence[tuple[str, Sequence[str]]] | None = None):
        """``kinds``: kind -> phrases as written; ``entries``: (kind, lemmas) of each phrase, as :meth:`write`
        saved them (read back without the spaCy pipeline); made from ``kinds`` when not given."""
        self.kinds = {str(kind): sorted({str(p).strip() for p in phrases if str(p).strip()})
                      for kind, phrases in kinds.items()}
        if entries is None:
            entries = [(kind, lemmas) for kind, phrases in self.kinds.items()
                       for lemmas in lemmas_of(phrases) if lemmas]
        self.entries = [(str(kind), tuple(str(t) for t in lemmas)) for kind, lemmas in entries]
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        seen: set[tuple[str, ...]] = set()
        for kind, lemmas in self.entries:
            if lemmas and lemmas not in seen:  # one kind per phrase: the first listed
                seen.add(lemmas)
                index.setdefault(lemmas[0], []).append((lemmas, kind))
        for found in index.values():  # longest first
            found.sort(key=lambda e: -len(e[0]))
        self._index = index

    @classmethod
    def read(cls, path: Path | str) -> "Gazetteer":
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        kinds = data.get("kinds") if isinstance(data, dict) else None
        if not isinstance(kinds, dict) or not all(isinstance(v, list) for v in kinds.values()):
            raise ModelError(f"{path}: a scope gazetteer needs 'kinds': a mapping of kind to a list of phrases")
        entries = data.get("entries")
        if entries is not None and not all(isinstance(e, list) and len(e) == 2 and isinstance(e[1], list)
                                           for e in entries):
            raise ModelError(f"{path}: 'entries' must be [kind, [lemma, ...]] pairs")
        return cls(kinds, entries)

    def write(self, path: Path | str) -> None:
        """JSON: the phrases by kind and each phrase's lemmas, so that a saved model matches what it was fitted
        with, whatever the lemmatizer or the shipped gazetteer become."""
        data = {"kinds": self.kinds, "entries": [[kind, list(lemmas)] for kind, lemmas in self.entries]}
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    def match(self, tokens: Sequence[str]) -> list[str]:
        """The kind of each match in ``tokens`` (lemmas), in order."""
        index = self._index
        starts = [i for i, token in enumerate(tokens) if token in index]  # most sentences: none or a few
        found: list[str] = []
        end = 0  # matches do not overlap: the next may start at ``end``
        for i in starts:
            if i < end:
                continue
            for lemmas, kind in index[tokens[i]]:
                k = len(lemmas)
                if k == 1 or tuple(tokens[i:i + k]) == lemmas:
                    found.append(kind)
                    end = i + k
                    break
        return found

    def sentence_marks(self, tokens: Sequence[str], seeds: Mapping[str, int] | None = None) -> list[str]:
        """The pseudo-tokens of one sentence: a mark per match of each kind; with ``seeds`` (label -> matches in
        the sentence), a mark per seed match where the sentence names a counterpart abroad, and "§domestic_only"
        where it names domestic counterparts and none abroad."""
        kinds = self.match(tokens)
        marks = [SCOPE_MARK + kind for kind in kinds]
        if seeds is not None:
            abroad = any(kind not in HOME_KINDS for kind in kinds)
            if abroad:
                for label, n in seeds.items():
                    marks.extend([f"{SCOPE_MARK}in_scope:{label}"] * n)
            elif "domestic" in kinds:
                marks.append(SCOPE_MARK + "domestic_only")
        return marks


def user_gazetteer(path: str | Path) -> Gazetteer:
    """A gazetteer named by the user (the linear tier's ``gazetteer`` parameter): one-line errors for a missing,
    unreadable or malformed file, before any fitting."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"gazetteer {path}: no such file (give a YAML file of kinds and phrases, like "
                          f"{DEFAULT_GAZETTEER})")
    try:
        stat = path.stat()
        return _read_gazetteer(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except ModelError as err:
        raise ConfigError(str(err)) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"gazetteer {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"gazetteer {path}: cannot be read ({err})") from None


@lru_cache(maxsize=4)
def _read_gazetteer(path: str, _mtime_ns: int, _size: int) -> Gazetteer:
    """Read once per version of the file: cross-validation fits a tagger per fold, each asking for it."""
    return Gazetteer.read(path)


@lru_cache(maxsize=4)
def shipped_gazetteer(path: str = str(DEFAULT_GAZETTEER)) -> Gazetteer:
    """The gazetteer shipped beside the codebook, read once per process."""
    return Gazetteer.read(path)
