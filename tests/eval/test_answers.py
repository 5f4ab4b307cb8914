"""Answer scores: key facts stated, and SQuAD-style token F1."""

import pytest

from citeqa.eval.answers import missing_facts, states_facts, token_f1
from citeqa.eval.dataset import Question

Q = Question(id="x", question="?", answer="Kyiv controls one-third of Donbas.",
             facts=[["one-third", "one third"], ["Donbas"]])


def test_facts_are_found_in_any_spelling_ignoring_case_markers_and_quote_style():
    assert states_facts("kyiv still controls One Third [1] of “DONBAS”.", Q)
    assert missing_facts("Kyiv controls one-third of the east. [1]", Q) == ["Donbas"]
    assert not states_facts("The documents do not answer this question.", Q)


def test_token_f1_ignores_case_punctuation_articles_and_markers():
    assert token_f1("Kyiv controls one-third of Donbas. [1]", Q.answer) == pytest.approx(1.0)
    # "one-third" is two tokens; 5 of the 6 tokens on each side match ("the" is dropped): F1 = 5/6.
    assert token_f1("the Kyiv controls one-third of Russia", Q.answer) == pytest.approx(5 / 6)
    assert token_f1("Lukoil and Rosneft", Q.answer) == 0.0
    assert token_f1("", Q.answer) == 0.0
