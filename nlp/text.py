"""Text processing: spaCy sentences and lemmas, passages of whole sentences, and seed-phrase evidence.

One spaCy pass per document gives everything the taggers need: sentence boundaries, lower-cased lemmas as
features, and the codebook seeds found in each sentence. Documents longer than an annotated unit are cut into
passages of whole sentences so that a long speech and a short press release are scored on units of the same size.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Iterable, Iterator, Sequence

import numpy
import spacy
from spacy.attrs import IDX, IS_PUNCT, IS_SPACE, LEMMA, LENGTH, NORM, ORTH, SENT_START
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.pipeline import Lemmatizer, Sentencizer
from spacy.tokens import Doc

from .codebook import Codebook

#: About the size of the annotated units (their longest is ~450 words).
PASSAGE_WORDS = 400
#: spaCy's default max_length guards memory on the parser; a blank pipeline is linear, so allow long speeches.
MAX_CHARS = 5_000_000


#: One regular expression for the tokens cdpd needs, in order of precedence: URLs and e-mail addresses whole,
#: abbreviations whole (so "U.S." and "Mr." never end a sentence), a short capitalised prefix joined by a period to
#: digits whole, as spaCy keeps it (bill and resolution numbers such as "S.1186", "A.8742", "Res.0423" do not end
#: a sentence after "S."; a lower-case word before a footnote number, "targets.5", still does), numbers with their
#: separators, "n't" and "'s" split off as spaCy does, words, then any other character on its own and runs of
#: whitespace.
_TOKEN = re.compile(
    r"""https?://[^\s<>"]*[^\s<>".,;:!?)\]'’”]"""
    r"""|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"""
    r"""|(?:[A-Za-z]\.){2,}"""
    r"""|\b[A-Z][A-Za-z]{0,3}\.\d+(?:[.,/]\d+)*"""
    r"""|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Gov|Sen|Rep|Lt|Col|Prof|Rev|Hon|No|Nos|Inc|Ltd|Co|Corp|vs|etc|approx|"""
    r"""Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Ave|Blvd|Dept|Gov't)\."""
    r"""|\d+(?:[.,/]\d+)*"""
    r"""|\w+?(?=n['’]t\b)|n['’]t\b|['’][sS]\b"""
    r"""|\w+"""
    r"""|\.\.\.|\S"""
    r"""|\s+""",
)


class RegexTokenizer:
    """A rule-based tokenizer that builds spaCy Docs about twice as fast as spaCy's English tokenizer.

    Tokenisation is the largest cost of tagging; cdpd needs words, punctuation and line breaks, not spaCy's full
    prefix/suffix/infix machinery. Whitespace follows spaCy's convention: one space after a token is its
    ``whitespace_``, anything more is a whitespace token of its own, so character offsets are exact.
    """

    def __init__(self, vocab):
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        for piece in _TOKEN.findall(text):
            if piece[0].isspace() and piece.isspace():
                if words and not spaces[-1] and not words[-1].isspace() and piece[0] == " ":
                    spaces[-1] = True
                    piece = piece[1:]
                    if not piece:
                        continue
                words.append(piece)
                spaces.append(False)
            else:
                words.append(piece)
                spaces.append(False)
        return Doc(self.vocab, words=words, spaces=spaces)

    def pipe(self, texts, batch_size: int = 1000):
        for text in texts:
            yield self(text)

    def to_bytes(self, **_kwargs) -> bytes:
        return b""

    def from_bytes(self, _data: bytes, **_kwargs) -> "RegexTokenizer":
        return self


#: Typographic apostrophes read as the ASCII one, so "city’s" and "city's", "don’t" and "don't" give one lemma.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


class CaseFoldingLemmatizer(Lemmatizer):
    """spaCy's lookup lemmatizer, case-folded and cached; also sets NORM to the lemma.

    spaCy's lookup table is keyed on the exact token text, so "Sanctions" at the start of a sentence would stay
    unlemmatised. Folding case (and typographic apostrophes) first makes sentence-initial and headline words match
    their seeds, and NORM = lemma lets the PhraseMatcher match "condemned" with the seed "condemn".
    """

    def __init__(self, vocab, name="cdpd_lemmatizer", *, overwrite=True, scorer=None):
        super().__init__(vocab, model=None, name=name, mode="lookup", overwrite=overwrite, scorer=scorer)
        self._cache: dict[int, int] = {}

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        table = self.lookups.get_table("lemma_lookup", {})
        strings = self.vocab.strings
        cache = self._cache
        orths = doc.to_array(ORTH)
        uniques, inverse = numpy.unique(orths, return_inverse=True)
        mapped = numpy.empty(len(uniques), dtype="uint64")
        for j, orth in enumerate(uniques.tolist()):
            lemma = cache.get(orth)
            if lemma is None:
                lower = strings[orth].lower().translate(_APOSTROPHES)
                lemma = strings.add(table.get(lower, lower))
                cache[orth] = lemma
            mapped[j] = lemma
        lemmas = mapped[inverse]
        doc.from_array([LEMMA, NORM], numpy.stack([lemmas, lemmas], axis=1))
        return doc


@Language.factory("cdpd_lemmatizer", default_config={"overwrite": True, "scorer": None})
def make_case_folding_lemmatizer(nlp: Language, name: str, overwrite: bool, scorer):
    return CaseFoldingLemmatizer(nlp.vocab, name, overwrite=overwrite, scorer=scorer)


class ArraySentencizer(Sentencizer):
    """spaCy's sentencizer rule, read from token arrays instead of Token objects (3x faster), plus line breaks.

    Rule (as spaCy's): a sentence ends after a run of tokens from ``punct_chars``; the next token that is
    neither punctuation nor in ``punct_chars`` starts the next sentence. With ``line_breaks`` (the default), a
    token after a whitespace token holding a newline also starts a sentence: resolutions and lists put one
    clause per line, without a full stop.
    """

    def __init__(self, name="cdpd_sentencizer", *, punct_chars=None, overwrite=False, scorer=None,
                 line_breaks=True):
        super().__init__(name, punct_chars=punct_chars, overwrite=overwrite, scorer=scorer)
        self.line_breaks = line_breaks
        self._orth_kind: dict[int, int] = {}  # orth -> 1 sentence-final punctuation, 2 newline, 0 other

    def _kind(self, orth: int, strings) -> int:
        text = strings[orth]
        if text in self.punct_chars:
            return 1
        return 2 if self.line_breaks and "\n" in text and not text.strip() else 0

    def predict(self, docs):
        """Vectorised: a token starts a sentence if it is neither punctuation nor sentence-final and a
        sentence-final token stands between it and the previous such token; or if it follows a line break."""
        guesses = []
        for doc in docs:
            n = len(doc)
            if not n:
                guesses.append([])
                continue
            arr = doc.to_array([ORTH, IS_PUNCT])
            kind = self._kinds(arr[:, 0], doc.vocab.strings)
            final = kind == 1
            word = (arr[:, 1] == 0) & ~final
            starts = numpy.zeros(n, dtype=bool)
            starts[0] = True
            words = numpy.flatnonzero(word)
            if len(words):
                finals_before = numpy.cumsum(final)  # sentence-final tokens up to and including each token
                seen = finals_before[words - 1] - numpy.r_[0, finals_before[words[:-1]]]
                seen[0] = finals_before[words[0] - 1] if words[0] > 0 else 0
                starts[words[seen > 0]] = True
            if self.line_breaks:
                newline = kind == 2
                starts[1:] |= newline[:-1] & ~newline[1:]
            guesses.append(starts.tolist())
        return guesses

    def _kinds(self, orths: numpy.ndarray, strings) -> numpy.ndarray:
        """Per token: 1 sentence-final punctuation, 2 a whitespace token holding a newline, 0 other."""
        uniques, inverse = numpy.unique(orths, return_inverse=True)
        cache = self._orth_kind
        values = numpy.empty(len(uniques), dtype=numpy.int8)
        for j, orth in enumerate(uniques.tolist()):
            kind = cache.get(orth)
            if kind is None:
                kind = cache[orth] = self._kind(orth, strings)
            values[j] = kind
        return values[inverse.ravel()]


@Language.factory("cdpd_sentencizer",
                  default_config={"punct_chars": None, "overwrite": False, "scorer": None, "line_breaks": True})
def make_array_sentencizer(nlp: Language, name: str, punct_chars, overwrite: bool, scorer, line_breaks: bool):
    return ArraySentencizer(name, punct_chars=punct_chars, overwrite=overwrite, scorer=scorer,
                            line_breaks=line_breaks)


@dataclass
class Sentence:
    start: int  # character offsets into the document text
    end: int
    tokens: list[str]  # lower-cased lemmas of word tokens
    seeds: dict[str, int] = field(default_factory=dict)  # label id -> number of seed phrases matched


@dataclass
class Passage:
    index: int
    start: int
    end: int
    sentences: list[Sentence]
    text: str = ""  # the passage as it stands in the document: what the neural tiers read

    @cached_property
    def tokens(self) -> list[str]:
        return [tok for sent in self.sentences for tok in sent.tokens]

    @property
    def n_words(self) -> int:
        return len(self.tokens)

    @cached_property
    def _seed_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sent in self.sentences:
            for label, n in sent.seeds.items():
                counts[label] = counts.get(label, 0) + n
        return counts

    def seed_counts(self) -> dict[str, int]:
        return dict(self._seed_counts)



def seed_variants(seeds: Iterable[str]) -> list[str]:
    """Each seed phrase and its hyphenation variants, without repeats.

    Matching is on lemmas token by token, and a hyphen is a token: "sister city" would not match "sister-city",
    nor "people-to-people" match "people to people". Writers use both forms, and a tag should not depend on which.
    """
    out: dict[str, None] = {}
    for seed in seeds:
        out[seed] = None
        if " " in seed:
            out[seed.replace(" ", "-")] = None
        if "-" in seed:
            out[seed.replace("-", " ")] = None
    return list(out)


@spacy.registry.tokenizers("cdpd_regex_tokenizer")
def make_regex_tokenizer():
    def create(nlp: Language) -> RegexTokenizer:
        return RegexTokenizer(nlp.vocab)

    return create


def build_pipeline() -> Language:
    """``spacy.blank("en")`` + sentencizer (with line breaks) + case-folding lookup lemmatizer (spacy-lookups-data).

    The blank pipeline is made with the regex tokenizer from the start (through spaCy's tokenizer registry): the
    English tokenizer it would otherwise build, 1,300 special cases and three compiled regexes, costs ~0.15 s of
    every command's startup and would be thrown away."""
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "cdpd_regex_tokenizer"}}})
    nlp.max_length = MAX_CHARS
    nlp.add_pipe("cdpd_sentencizer")
    nlp.add_pipe("cdpd_lemmatizer")
    nlp.initialize()
    return nlp


@lru_cache(maxsize=1)
def shared_pipeline() -> Language:
    return build_pipeline()


class TextProcessor:
    """Turns raw texts into passages with lemmas and seed matches, for one codebook."""

    def __init__(self, codebook: Codebook, passage_words: int = PASSAGE_WORDS, nlp: Language | None = None):
        self.codebook = codebook
        self.passage_words = passage_words
        self.nlp = nlp or shared_pipeline()
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="NORM")
        for axis in codebook.axis_names:
            for label in codebook.axes[axis]:
                patterns = list(self.nlp.pipe(seed_variants(label.seeds)))
                if patterns:
                    self.matcher.add(label.id, patterns)

    def process(self, texts: Iterable[str], batch_size: int = 64) -> Iterator[list[Passage]]:
        """Yield the passages of each text, in order."""
        strings = self.nlp.vocab.strings
        words: dict[int, str] = {}
        # spaCy's tokenisation is non-destructive (doc.text == the input), and the input string is at hand:
        # rebuilding doc.text would create a Token object per token, about a tenth of all tagging time.
        clipped = ((text, text) for text in (t[:MAX_CHARS] for t in texts))
        for doc, text in self.nlp.pipe(clipped, batch_size=batch_size, as_tuples=True):
            sentences = self._sentences(doc, strings, words)
            if sentences:
                self._attach_seeds(doc, sentences, strings)
            yield self._pack(sentences, text)

    @staticmethod
    def _sentences(doc: Doc, strings, words: dict[int, str]) -> list[Sentence]:
        """Sentences with their word lemmas, read from arrays: creating a Token object per word is the slow part."""
        n = len(doc)
        if not n:
            return []
        arr = doc.to_array([NORM, IS_PUNCT, IS_SPACE, IDX, SENT_START, LENGTH])
        norms, punct, space, idx, sent_start, length = arr.T
        word_at = numpy.flatnonzero((punct == 0) & (space == 0))
        if not len(word_at):
            return []
        uniques, inverse = numpy.unique(norms[word_at], return_inverse=True)
        vocab_words = numpy.empty(len(uniques), dtype=object)
        for j, norm in enumerate(uniques.tolist()):
            word = words.get(norm)
            if word is None:
                word = words[norm] = strings[norm]
            vocab_words[j] = word
        tokens = vocab_words[inverse.ravel()]
        bounds = numpy.flatnonzero(sent_start.astype("int64") == 1)
        if not len(bounds) or bounds[0] != 0:
            bounds = numpy.r_[0, bounds]
        bounds = numpy.r_[bounds, n]
        # words per sentence, and each sentence's first and last non-space token (for character offsets)
        cuts = numpy.searchsorted(word_at, bounds)
        kept = numpy.flatnonzero(cuts[1:] > cuts[:-1])
        visible = numpy.flatnonzero(space == 0)
        first = visible[numpy.searchsorted(visible, bounds[kept])]
        last = visible[numpy.searchsorted(visible, bounds[kept + 1]) - 1]
        starts = idx[first].tolist()
        ends = (idx[last] + length[last]).tolist()
        pieces = numpy.split(tokens, cuts[1:-1])
        return [Sentence(a, b, pieces[k].tolist()) for k, a, b in zip(kept.tolist(), starts, ends)]

    def passages(self, text: str) -> list[Passage]:
        return next(self.process([text]))

    def _attach_seeds(self, doc: Doc, sentences: list[Sentence], vocab) -> None:
        starts = [s.start for s in sentences]
        for match_id, start, _end in self.matcher(doc):
            char = doc[start].idx
            i = bisect.bisect_right(starts, char) - 1
            if i < 0:
                continue
            label = vocab[match_id]
            seeds = sentences[i].seeds
            seeds[label] = seeds.get(label, 0) + 1

    def _pack(self, sentences: Sequence[Sentence], text: str = "") -> list[Passage]:
        """Greedily group whole sentences into passages of at most ``passage_words`` words."""
        passages: list[Passage] = []
        current: list[Sentence] = []
        words = 0
        for sent in sentences:
            n = len(sent.tokens)
            if current and words + n > self.passage_words:
                passages.append(Passage(len(passages), current[0].start, current[-1].end, current,
                                        text[current[0].start : current[-1].end]))
                current, words = [], 0
            current.append(sent)
            words += n
        if current:
            passages.append(Passage(len(passages), current[0].start, current[-1].end, current,
                                    text[current[0].start : current[-1].end]))
        return passages
