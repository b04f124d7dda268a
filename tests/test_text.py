"""Text processing: sentences, lemmas, passages of whole sentences, and seed matches on inflected forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nlp.text import PASSAGE_WORDS, TextProcessor

WORD = re.compile(r"[A-Za-z0-9]")


def sentences_of(processor, text):
    return [s for p in processor.passages(text) for s in p.sentences]


def check_passages(text, passages, limit):
    """Whole sentences, in order, offsets slicing ``text``, at most ``limit`` words unless one sentence is longer."""
    previous_end = 0
    index = 0
    for p in passages:
        assert p.index == index
        index += 1
        assert p.sentences, "a passage without sentences"
        assert p.start == p.sentences[0].start and p.end == p.sentences[-1].end
        assert p.text == text[p.start : p.end]
        assert p.n_words == sum(len(s.tokens) for s in p.sentences) == len(p.tokens)
        assert p.n_words <= limit or len(p.sentences) == 1, (p.index, p.n_words, len(p.sentences))
        for s in p.sentences:
            piece = text[s.start : s.end]
            assert piece and piece == piece.strip()  # offsets on the sentence's first and last character
            assert s.start >= previous_end  # in order, never overlapping
            gap = text[previous_end : s.start]
            assert not WORD.search(gap), f"text lost between sentences: {gap!r}"
            previous_end = s.end
            assert s.tokens and all(t == t.lower() for t in s.tokens)
    assert not WORD.search(text[previous_end:]), "text lost after the last sentence"


# ------------------------------------------------------------------------------------------- passages


def test_long_speech_is_cut_into_passages_of_whole_sentences(processor):
    import pandas as pd

    speeches = pd.read_parquet(Path(__file__).resolve().parents[1] / "corpora" / "ungdc_sample.parquet", columns=["id", "text"]).head(3)
    for text in speeches.text:
        passages = processor.passages(text)
        assert len(passages) >= 2
        check_passages(text, passages, PASSAGE_WORDS)
        assert all(p.n_words > PASSAGE_WORDS * 0.8 for p in passages[:-1])  # greedy packing fills them up
        # a passage ends where the next sentence would have overflowed it
        for p, q in zip(passages, passages[1:]):
            assert p.n_words + len(q.sentences[0].tokens) > PASSAGE_WORDS


def test_short_documents_are_one_passage(processor, state_department, king_county):
    for text in list(state_department.text.head(10)) + list(king_county.text.head(10)):
        passages = processor.passages(text)
        check_passages(text, passages, PASSAGE_WORDS)
        if len(text.split()) < 300:
            assert len(passages) == 1


def test_smaller_passages_on_request(codebook, state_department):
    small = TextProcessor(codebook, passage_words=60)
    text = state_department.text.iloc[0]
    passages = small.passages(text)
    check_passages(text, passages, 60)
    assert len(passages) >= 3


def test_a_sentence_longer_than_a_passage_stays_whole(processor):
    long_sentence = " ".join(f"word{i}" for i in range(520)) + "."
    text = f"A short opening sentence. {long_sentence} A closing sentence follows it. And one more."
    passages = processor.passages(text)
    check_passages(text, passages, PASSAGE_WORDS)
    assert [len(p.sentences) for p in passages] == [1, 1, 2]
    assert passages[1].n_words == 520 and passages[1].text == long_sentence
    assert passages[0].text == "A short opening sentence."
    assert passages[2].text == "A closing sentence follows it. And one more."


def test_line_breaks_start_sentences(processor):
    text = ("Whereas the city values its sister cities\nResolved that the council supports twinning\n\n"
            "  - a list item without a full stop\nThe end.")
    pieces = [text[s.start : s.end] for s in sentences_of(processor, text)]
    assert pieces == ["Whereas the city values its sister cities", "Resolved that the council supports twinning",
                      "- a list item without a full stop", "The end."]
    # without the line breaks, nothing ends a sentence before the final full stop
    assert len(sentences_of(processor, text.replace("\n", " "))) == 1


def test_abbreviations_and_offsets(processor):
    text = "  The U.S. Ambassador met with Mr. Smith on Jan. 5.   Then he left!\n"
    sentences = sentences_of(processor, text)
    assert [text[s.start : s.end] for s in sentences][-1] == "Then he left!"
    assert sentences[0].start == 2
    assert sentences[0].tokens[:3] == ["the", "u.s.", "ambassador"]


def test_empty_text_has_no_passages(processor):
    assert processor.passages("") == []
    assert processor.passages("   \n\n\t ") == []
    assert processor.passages("... !!! --") == []  # punctuation only: no words, no sentence
    out = list(processor.process(["", "The Mayor visited Paris.", "", "  "]))
    assert [len(x) for x in out] == [0, 1, 0, 0]


# --------------------------------------------------------------------------------------------- lemmas, seeds


def test_tokens_are_case_folded_lemmas(processor):
    (sentence,) = sentences_of(processor, "The Mayors Visited Paris, and the Councils Welcomed Them.")
    assert sentence.tokens == ["the", "mayor", "visit", "paris", "and", "the", "council", "welcome", "them"]


def test_inflected_forms_match_lemma_seeds(processor):
    text = ("The Secretary condemned the attack. Sanctions on the regime were announced. "
            "She called on the Council to act. Nothing to see here.")
    s1, s2, s3, s4 = sentences_of(processor, text)
    assert s1.seeds.get("advocacy") == 1  # "condemned" -> seed "condemn"
    assert s1.seeds.get("peace") == 1  # "attack"
    assert s2.seeds == {"coercive_measures": 1}  # capitalised "Sanctions" at the start of a sentence
    assert s3.seeds == {"advocacy": 1}  # "called on" -> seed "calls on"
    assert s4.seeds == {}


@pytest.mark.parametrize("text, label", [
    ("SANCTIONS IMPOSED ON THE JUNTA", "coercive_measures"),
    ("The two towns signed a sister-city agreement; they are Sister Cities now.", "twinning"),
    ("Mayors hosted delegations from abroad.", "representation_protocol"),
    ("We Condemn this and we are urging restraint.", "advocacy"),
    ("Vaccines reached every hospital.", "health"),
])
def test_seed_matching_ignores_case_and_inflection(processor, text, label):
    counts = processor.passages(text)[0].seed_counts()
    assert counts.get(label, 0) >= 1, counts


def test_seed_counts_add_up_over_sentences(processor):
    text = "Sanctions were imposed. More sanctions and an embargo followed.\nThe embargo holds."
    (passage,) = processor.passages(text)
    assert [s.seeds.get("coercive_measures", 0) for s in passage.sentences] == [1, 2, 1]
    assert passage.seed_counts()["coercive_measures"] == 4


def test_seeds_of_a_third_axis_are_matched(tmp_path):
    import yaml

    from nlp.codebook import DEFAULT_CODEBOOK, load_codebook

    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    data["tone"] = [{"id": "urgent", "definition": "d", "seeds": ["immediately", "emergency"]},
                    {"id": "calm", "definition": "d", "seeds": ["in due course"]}]
    path = tmp_path / "cb.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = TextProcessor(load_codebook(path))
    counts = proc.passages("Emergencies were declared. Act immediately, not in due course.")[0].seed_counts()
    assert counts["urgent"] == 2 and counts["calm"] == 1


def test_array_sentencizer_follows_spacys_rule_on_real_documents(state_department):
    """Without line breaks, cdpd's array sentencizer splits exactly as spaCy's own sentencizer does."""
    import spacy

    ours = spacy.blank("en")
    ours.add_pipe("cdpd_sentencizer", config={"line_breaks": False})
    ref = spacy.blank("en")
    ref.add_pipe("sentencizer")
    texts = list(state_department.text.head(150))
    for a, b in zip(ours.pipe(texts), ref.pipe(texts)):
        assert [s.start for s in a.sents] == [s.start for s in b.sents]


def test_regex_tokenizer_round_trips_real_documents(state_department, king_county):
    """Every character is kept: token texts and whitespace rebuild each document exactly (offsets are exact)."""
    from nlp.text import shared_pipeline

    nlp = shared_pipeline()
    texts = list(state_department.text.head(100)) + list(king_county.text.head(50)) + ["", "  \n\t x  y\n"]
    for text in texts:
        doc = nlp.make_doc(text)
        assert doc.text == text
        assert all(not t.text.isspace() or t.is_space for t in doc)


def test_regex_tokenizer_keeps_abbreviations_and_splits_clitics():
    from nlp.text import shared_pipeline

    doc = shared_pipeline()("The U.S. and Mr. Smith's team can't stay. They left.")
    assert [t.text for t in doc][:8] == ["The", "U.S.", "and", "Mr.", "Smith", "'s", "team", "ca"]
    assert "n't" in [t.text for t in doc]
    assert [s.text for s in doc.sents] == ["The U.S. and Mr. Smith's team can't stay.", "They left."]


def test_bill_numbers_stay_whole_and_do_not_end_a_sentence(processor):
    """"S.1186" and "A.8742" (New York bills) are one token each, as spaCy's English tokenizer keeps them, so a
    resolution's title is not cut after "S."; a lower-case word before a footnote number still ends its sentence."""
    import spacy

    title = "Resolution calling on Congress to pass S.1186 - Burma Human Rights and Freedom Act of 2019."
    (sentence,) = sentences_of(processor, title)
    assert "s.1186" in sentence.tokens and "burma" in sentence.tokens
    english = [t.text for t in spacy.blank("en")("pass S.6570/A.8742 and Res.0423 now")]
    from nlp.text import shared_pipeline

    ours = [t.text for t in shared_pipeline()("pass S.6570/A.8742 and Res.0423 now")]
    assert ours == english
    footnote = sentences_of(processor, "The city will reach the targets.5 The plan follows.")
    assert len(footnote) == 2
