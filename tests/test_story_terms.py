"""Stories: the weighted terms of an article (aggregator/stories/terms.py)."""

from __future__ import annotations

import math
import subprocess
import sys

from aggregator.stories.terms import TermWeights, article_terms, term_key

PLAIN = TermWeights(title_weight=1.0, name_weight=1.0, number_weight=1.0, lead_words=1 << 30)


def by_name(title: str, paragraphs: list[str], weights: TermWeights) -> dict[str, float]:
    terms = article_terms(title, paragraphs, weights)
    return {terms.names[k]: w for k, w in terms.weights.items()}


def test_stems_join_forms_and_stop_words_carry_nothing() -> None:
    found = by_name("", ["The missiles were tapering; a missile tapers, it said."], PLAIN)
    assert set(found) == {"missil", "taper"}
    # Two occurrences of each stem: 1 + ln 2.
    assert math.isclose(found["taper"], 1 + math.log(2))
    assert math.isclose(found["missil"], 1 + math.log(2))


def test_names_and_numbers_weigh_more() -> None:
    text = ["Officials in the port of Harwick counted 26 ships, and the harwick crews agreed."]
    plain = by_name("", text, PLAIN)
    weighted = by_name("", text, TermWeights(name_weight=2.0, number_weight=1.5))
    assert math.isclose(weighted["harwick"], 2.0 * plain["harwick"])
    assert math.isclose(weighted["26"], 1.5 * plain["26"])
    assert math.isclose(weighted["ship"], plain["ship"])


def test_a_capital_at_a_sentence_start_or_in_a_title_case_headline_is_no_name() -> None:
    weights = TermWeights(name_weight=3.0, title_weight=1.0)
    title, body = "Storm Hits Coastal Towns Overnight", ["Storm damage was wide. Towns flooded."]
    assert article_terms(title, body, weights).kinds == {}
    # Title once and body once, no name weight: 1 + ln 2.
    assert math.isclose(by_name(title, body, weights)["storm"], 1 + math.log(2))
    sentence = article_terms("", ["The mayor of Dunmore spoke."], weights)
    kinds = {sentence.names[k]: v for k, v in sentence.kinds.items()}
    assert kinds == {"dunmor": "name"}


def test_the_title_and_the_lead_weigh_more_than_the_tail() -> None:
    weights = TermWeights(title_weight=2.0, lead_words=3)
    found = by_name("harbour", ["ferry ferry ferry", "ferry dredger"], weights)
    assert math.isclose(found["harbour"], 1 + math.log(2))  # counted twice
    # The first three words count 1 each, the two after them half.
    assert math.isclose(found["ferri"], 1 + math.log(3.5))
    assert math.isclose(found["dredger"], 0.5)


def test_term_keys_are_the_same_in_another_process() -> None:
    """Keys are stored (document frequencies, centroids): never Python's salted hash."""
    code = "from aggregator.stories.terms import term_key; print(term_key('missil'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == term_key("missil")
    assert 0 <= term_key("missil") < 2**63
