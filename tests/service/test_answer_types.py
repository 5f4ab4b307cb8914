"""Expected answer types: an amount question needs an amount, in the unit it asks for."""

from citeqa.answer.kinds import asks_amount, can_answer, gives_date, names_variable, numbers, units_asked


def test_amount_questions_are_recognised_and_degree_questions_are_not():
    assert asks_amount("How many drones did Russia launch?")
    assert asks_amount("What share of Donbas does Kyiv hold?")
    assert asks_amount("By how many dollars did revenues fall?")
    assert not asks_amount("How much does Trump care about Ukraine?")
    assert not asks_amount("Why does Moscow want Pokrovsk?")


def test_a_sentence_without_a_new_amount_cannot_answer_an_amount_question():
    question = "How many Tomahawks did the Pentagon say it could spare in 2025?"
    assert not can_answer(question, "The Pentagon said it could spare some Tomahawks.")
    assert not can_answer(question, "In 2025 the Pentagon reviewed its stocks.")  # a year is a date
    assert can_answer(question, "The Pentagon could spare twenty Tomahawks.")
    assert can_answer("Why does Moscow want Pokrovsk?", "It is a logistics hub.")


def test_the_unit_asked_for_must_be_the_unit_given():
    assert units_asked("What is its range in kilometres?") == ["kilomet", "range"]
    assert not can_answer("What is its range in kilometres?", "It can fly 300 miles.")
    assert can_answer("What is its range in kilometres?", "It can fly 500km.")
    assert can_answer("What share of Russians are tired?", "Some 80 percent are tired.")
    assert not can_answer("What share of Russians are tired?", "Some 80 people said so.")
    assert numbers("one-third of 1,300 people since 2022") == {"one", "third", "1,300"}


def test_an_environment_variable_is_named_in_capitals_and_an_acronym_is_not_one():
    assert names_variable("Set PAGER to the program you like.")
    assert names_variable("It reads _{PROG_NAME}_COMPLETE first.")
    assert not names_variable("The API and the CLI print nothing.")
    assert not can_answer("Which environment variable picks the pager?", "The pager is chosen for you.")
    assert asks_amount("What numeric exit code does it return?")


def test_a_when_question_needs_a_time_and_a_when_clause_does_not():
    assert gives_date("It opened in 1911.") and gives_date("They met last week.") and gives_date("On Monday.")
    assert not gives_date("It opened after the war.")
    assert not can_answer("When did the harbour open?", "The harbour is on the northern shore.")
    assert can_answer("When I test a command, is stderr mixed?", "It is mixed by default.")
