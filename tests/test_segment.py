"""Normalisation and sentence segmentation."""

from __future__ import annotations

import itertools
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import DedupConfig
from aggregator.dedup.segment import DOMINANT_SHARE, SENTENCE_WORDS, segment, segment_paragraph
from aggregator.model import Unit
from aggregator.sentences import normalise, split_sentences, tokenise


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
    units = list(segment_paragraph(text, 0, min_words=12, sentence_words=0))
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
    from aggregator.sentences import _FOLD

    full = unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()
    assert normalise(text) == full


def test_lowercase_words_that_look_like_abbreviations_still_end_sentences() -> None:
    assert _sentences("He cast a vote for the sen. The count went on.") == [
        "He cast a vote for the sen.",
        "The count went on.",
    ]
    assert _sentences("The answer was no. Then he left.") == ["The answer was no.", "Then he left."]
    assert len(_sentences("It was item No. 10 on the list. Sen. Smith agreed.")) == 2


# -- sentence units (issue 11): sentences are units of their own as well ---------------

# Sentences of 5, 9, 10 and 6 words: merged into two units of 14 and 16 words.
TWO_COPIED = (
    "The convoy reached the northern border crossing on Friday. "
    "Aid workers said the road beyond it was still closed."
)
ORIGINAL = f"Aid agencies had waited weeks. {TWO_COPIED} Nobody was hurt in the attack."


def _texts(text: str, units: list[Unit]) -> list[str]:
    return [text[u.start : u.end] for u in units]


def test_sentences_of_a_merged_unit_are_units_of_their_own_too() -> None:
    merged = list(segment_paragraph(ORIGINAL, 0, min_words=12, sentence_words=0))
    assert [len(u.tokens) for u in merged] == [14, 16]
    units = list(segment_paragraph(ORIGINAL, 0, min_words=12))
    assert _texts(ORIGINAL, units) == [
        "Aid agencies had waited weeks. The convoy reached the northern border crossing on Friday.",
        "The convoy reached the northern border crossing on Friday.",
        "Aid workers said the road beyond it was still closed. Nobody was hurt in the attack.",
        "Aid workers said the road beyond it was still closed.",
    ]
    # Ordered by start (a merged unit before the sentences inside it); positions are
    # that order, unique in the paragraph.
    assert [u.position for u in units] == [0, 1, 2, 3]
    assert [u.tokens for u in units if u.tokens in [m.tokens for m in merged]] == [
        m.tokens for m in merged
    ]


def test_a_copied_sentence_has_the_same_tokens_whatever_its_neighbours() -> None:
    copy = f"Rain fell across the region overnight. {TWO_COPIED} More convoys are due."
    original = {u.tokens for u in segment_paragraph(ORIGINAL, 0, 12)}
    copied = {u.tokens for u in segment_paragraph(copy, 0, 12)}
    for sentence in split_sentences(TWO_COPIED):
        assert tuple(tokenise(TWO_COPIED[slice(*sentence)])) in original & copied
    # Merged alone, the two paragraphs share no unit.
    merged_only = {u.tokens for u in segment_paragraph(copy, 0, 12, sentence_words=0)}
    assert not merged_only & {u.tokens for u in segment_paragraph(ORIGINAL, 0, 12, 0)}


def test_a_sentence_that_dominates_its_unit_is_not_repeated() -> None:
    # 10 of 12 words (83%): any copy shares at least 0.64 Jaccard with this unit already.
    text = "The ministry said the talks would resume in Geneva soon. He agreed."
    units = list(segment_paragraph(text, 0, min_words=12))
    assert _texts(text, units) == [text]
    assert DOMINANT_SHARE <= 10 / 12
    # 9 of 12 (75%) is repeated.
    text = "The ministry said the talks would resume in Geneva. He agreed fully."
    assert len(list(segment_paragraph(text, 0, min_words=12))) == 2


def test_sentences_below_sentence_words_are_not_units_of_their_own() -> None:
    text = "The ministry said the talks would resume. Officials in Geneva declined to comment."
    # Sentences of 7 and 6 words, one merged unit of 13.
    assert [len(u.tokens) for u in segment_paragraph(text, 0, 12)] == [13]
    assert [len(u.tokens) for u in segment_paragraph(text, 0, 12, sentence_words=7)] == [13, 7]
    # A sentence of `sentence_words` closes its merged unit: nothing is merged into it
    # from after it, so two such sentences are two units rather than three.
    assert [len(u.tokens) for u in segment_paragraph(text, 0, 12, sentence_words=6)] == [7, 6]


def test_the_default_sentence_words_is_the_configured_one() -> None:
    assert DedupConfig().min_sentence_words == SENTENCE_WORDS == 8


# -- lost boundaries: a full stop before a lower-case word -----------------------------

FIRST = "The rebels moved the hostages along a narrow mountain trail at night in small groups."
SECOND = (
    "Reportedly they were taken by truck to a small village near the Turkish border on Tuesday."
)
THIRD = "The army said it had no information about the hostages or the route they took."


def test_a_lost_boundary_cuts_pieces_that_match_the_original_sentences() -> None:
    original = f"{FIRST} {SECOND} {THIRD}"
    lost = f"{FIRST} {SECOND[0].lower()}{SECOND[1:]} {THIRD}"
    assert len(split_sentences(lost)) == 2  # no boundary is detected before "reportedly"
    original_units = list(segment_paragraph(original, 0, 12))
    assert [len(u.tokens) for u in original_units] == [15, 16, 15]  # one sentence each
    copy_units = list(segment_paragraph(lost, 0, 12))
    assert (
        _texts(lost, copy_units)
        == [
            f"{FIRST} {SECOND[0].lower()}{SECOND[1:]}",  # the merged unit, as before
            FIRST,
            f"{SECOND[0].lower()}{SECOND[1:]}",
            THIRD,
        ]
    )
    assert {u.tokens for u in original_units} <= {u.tokens for u in copy_units}


def test_a_lost_boundary_is_not_a_boundary_for_merging_and_respects_abbreviations() -> None:
    text = "It was 5 p.m. local time when the convoy left the town. e.g. the first truck left."
    assert len(split_sentences(text)) == 1
    # "p.m." is an acronym, not a lost boundary; "town. e.g." is one.
    units = list(segment_paragraph(text, 0, min_words=12))
    assert _texts(text, units) == [text, "It was 5 p.m. local time when the convoy left the town."]
    # Nor after a capitalised title: no piece "the army ... today." of 9 words.
    text = "Orders came from the {}. the army was told to hold the line today."
    assert len(list(segment_paragraph(text.format("Gen"), 0, 12))) == 1
    assert len(list(segment_paragraph(text.format("gin"), 0, 12))) == 2


PARAGRAPHS = st.lists(
    st.sampled_from(["ab", "Cd", "ef", " ", " ", ". ", "! ", "? ", ". e", "\n", '"', "U.S"]),
    max_size=80,
).map("".join)


@given(PARAGRAPHS, st.integers(0, 5))
def test_units_are_merged_units_and_sentences_inside_them(text: str, sentence_words: int) -> None:
    units = list(segment_paragraph(text, 0, min_words=6, sentence_words=sentence_words))
    assert [u.position for u in units] == list(range(len(units)))
    assert [(u.start, -u.end) for u in units] == sorted((u.start, -u.end) for u in units)
    assert len({(u.start, u.end) for u in units}) == len(units)
    # The units inside no other unit (the merged ones) do not overlap...
    tiles = [
        (u.start, u.end)
        for u in units
        if not any(o is not u and o.start <= u.start and u.end <= o.end for o in units)
    ]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(tiles))
    for unit in units:
        # ...every other unit lies inside one of them, and has its tokens.
        assert sum(s <= unit.start and unit.end <= e for s, e in tiles) == 1
        assert tuple(tokenise(text[unit.start : unit.end])) == unit.tokens
        if (unit.start, unit.end) not in tiles:
            assert len(unit.tokens) >= sentence_words > 0


def test_segment_numbers_units_per_paragraph() -> None:
    units = segment([ORIGINAL, "Too short.", ORIGINAL], 12)
    assert [(u.paragraph, u.position) for u in units] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
    ]
