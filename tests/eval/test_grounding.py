"""Grounding scores: statements and their markers, support, and ALCE citation recall and precision."""

from citeqa.eval.grounding import Statement, grounding, statements, supports

QUOTE = "Kyiv still controls one-third of Donbas, and Pokrovsk’s fall will pave the way for more."


def test_an_answer_splits_into_statements_with_the_markers_that_follow_them():
    assert statements("A is so. [1] B is so. [2][3] C dangles.") == [
        Statement("A is so.", (1,)), Statement("B is so.", (2, 3)), Statement("C dangles.", ())]
    assert statements("") == []


def test_a_verbatim_statement_is_supported_whatever_its_quote_marks_and_spacing():
    assert supports([QUOTE], "Kyiv still controls  one-third of Donbas, and Pokrovsk's fall will pave")
    assert supports(["Kyiv still controls one-third", "of Donbas."], "Kyiv still controls one-third of")


def test_the_entailment_proxy_rejects_new_figures_negations_and_other_topics():
    assert supports([QUOTE], "Pokrovsk's fall will pave the way; Kyiv still controls one-third of Donbas.")
    assert not supports(["Russia captured 505 square kilometres in November."],
                        "Russia captured 550 square kilometres in November.")
    assert not supports(["The sanctions have real bite."], "The sanctions do not have real bite.")
    assert not supports([QUOTE], "Trump imposed sanctions on Lukoil and Rosneft.")
    assert not supports([], "Anything at all.")


def test_citation_recall_and_precision_follow_alce():
    quotes = {1: "Lukoil was sanctioned.", 2: "Gunvor dropped its bid.", 3: "Rosneft was sanctioned."}
    # One statement cited by a supporting quote and an irrelevant one: supported, half precise.
    one = grounding("Lukoil was sanctioned. [1][2]", quotes)
    assert (one.recall, one.precision) == (1.0, 0.5)
    # A statement that needs two quotes together: both are needed, so both are precise.
    both = grounding("Lukoil was sanctioned. Gunvor dropped its bid. [1][2]", quotes)
    assert (both.recall, both.precision) == (1.0, 1.0)
    # A statement its citation does not support: neither recalled nor precise.
    wrong = grounding("Rosneft was sanctioned. [2] Gunvor dropped its bid. [2]", quotes)
    assert (wrong.statements, wrong.supported, wrong.citations, wrong.precise) == (2, 1, 2, 1)
    # Text after the last marker cites nothing and is unsupported; a marker with no citation counts too.
    dangling = grounding("Lukoil was sanctioned. [1] Rosneft too. [9] And more.", quotes)
    assert (dangling.statements, dangling.supported) == (3, 1)
