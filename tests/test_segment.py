"""Normalisation and sentence segmentation."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from aggregator.segment import normalise, segment_paragraph, split_sentences, tokenise


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_abbreviations_initials_and_acronyms_do_not_end_sentences() -> None:
    text = (
        "Mr. Smith met Gen. Jones in the U.S. capital on Dec. 6 with J. K. Rowling. "
        "The U.N. said nothing."
    )
    assert _sentences(text) == [
        "Mr. Smith met Gen. Jones in the U.S. capital on Dec. 6 with J. K. Rowling.",
        "The U.N. said nothing.",
    ]


def test_decimals_do_not_split_and_quotes_stay_with_their_sentence() -> None:
    text = 'Growth was 2.5 percent. He said "It works." Then he left! Did he? "Yes," she said.'
    assert _sentences(text) == [
        "Growth was 2.5 percent.",
        'He said "It works."',
        "Then he left!",
        "Did he?",
        '"Yes," she said.',
    ]


def test_curly_quote_opens_a_new_sentence() -> None:
    assert _sentences("He agreed. \u201cWe will go,\u201d he said.") == [
        "He agreed.",
        "\u201cWe will go,\u201d he said.",
    ]


def test_lowercase_after_period_is_not_a_boundary() -> None:
    assert len(_sentences("It cost 5 p.m. prices. ok then.")) == 1


def test_tokenise_folds_unicode_quotes_dashes_and_case() -> None:
    assert tokenise("Russia\u2019s el\u2013Zour \uff21BC") == ["russia's", "el-zour", "abc"]
    assert tokenise("\u201cConstructive partner\u201d") == tokenise('"constructive PARTNER"')


def test_short_sentences_merge_with_a_neighbour() -> None:
    text = (
        "Short one here. Another very short. This third sentence is long enough to be a unit "
        "on its own merits. Tail bit."
    )
    units = list(segment_paragraph(text, 0, min_words=12))
    assert all(len(u.tokens) >= 12 for u in units)
    assert units[0].start == 0
    assert units[-1].end == len(text)
    assert text[units[-1].start : units[-1].end].endswith("Tail bit.")


def test_short_paragraph_makes_no_unit() -> None:
    assert list(segment_paragraph("Read more.", 0, min_words=12)) == []
    assert len(list(segment_paragraph("one two three four five six seven eight", 0, 12))) == 1


@given(st.text(min_size=0, max_size=300))
def test_sentence_spans_are_ordered_and_inside_the_text(text: str) -> None:
    spans = split_sentences(text)
    previous = 0
    for start, end in spans:
        assert previous <= start < end <= len(text)
        previous = end


@given(st.text(alphabet=st.sampled_from("ab .!?\n\"'U.S"), max_size=200))
def test_units_cover_their_tokens(text: str) -> None:
    for unit in segment_paragraph(text, 0, min_words=3):
        assert tuple(tokenise(text[unit.start : unit.end])) == unit.tokens


@given(st.text(max_size=80))
def test_ascii_fast_path_agrees_with_the_full_fold(text: str) -> None:
    from aggregator.segment import _FOLD

    full = unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()
    assert normalise(text) == full


def test_lowercase_words_that_look_like_abbreviations_still_end_sentences() -> None:
    assert _sentences("He cast a vote for the sen. The count went on.") == [
        "He cast a vote for the sen.",
        "The count went on.",
    ]
    assert _sentences("The answer was no. Then he left.") == ["The answer was no.", "Then he left."]
    assert len(_sentences("It was item No. 10 on the list. Sen. Smith agreed.")) == 2
