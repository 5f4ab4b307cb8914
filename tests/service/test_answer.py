"""Answer composition in-process, with the real model: what makes a sentence fit to be cited."""
import pytest

from citeqa.answer import pipeline as qa
from citeqa.answer.compose import (
    NEAR_DUPLICATE,
    candidates,
    is_dependent,
    names,
    states_something,
    unknown_names,
)
from citeqa.answer.condense import condense, needs_context
from citeqa.eval import dataset
from citeqa.eval.calibrate import calibrate, pick_threshold
from citeqa.index.records import Passage
from tests.support import SETTINGS, chunk_params, new_engine

TINY = {
    "harbour.txt": "Zorblat Harbour\n\nThe Zorblat harbour opened in 1911 on the northern shore. "
                   "Maria Quell ran it for thirty years. She doubled its grain trade to twelve million "
                   "tonnes a year.\n",
    "bees.md": "# Beekeeping in Tallin Vale\n\nTallin Vale keeps four hundred hives of black bees. "
               "Their honey is sold at the Saturday market.\n",
    "port.txt": "Port Talk\n\nOlaf Brenning chairs the Zorblat port board. The board wants a deeper channel "
                "for grain ships. \"We will dredge the channel by next spring,\" he said.\n",
    "setup.md": "# Zorblat settings\n\n## Files\n\nThe ZORB_HOME environment variable sets the folder where "
                "Zorblat keeps its files.\n\n## Cache\n\nPass keep_cache=True to keep the scratch folder "
                "between runs. The folder is then never wiped by Zorblat.\n\n## Walk depth\n\nDefault: 7\n\n"
                "## Ports\n\nThe Zorblat server listens on two ports:\n\n- 8080 for the web page\n"
                "- 9090 for the metrics\n\n## Clock\n\nThe canteen serves fish soup on Fridays. "
                "The crane was painted red. Gulls nest on the roof. The canteen closes early in winter. "
                "timestamps count seconds since the harbour opened.\n",
    "api.html": "<html><head><title>Zorblat API</title></head><body><h1>Zorblat API</h1>"
                "<dl class='py function'><dt class='sig'>zorblat.dredge(depth, speed=4, channel=None)</dt>"
                "<dd><p>Dredge the harbour channel.</p><dl class='field-list'><dt>Parameters</dt><dd><ul>"
                "<li><p>depth (int) – how deep to dig, in metres</p></li>"
                "<li><p>speed (int) – how fast the dredger moves, in knots</p></li>"
                "</ul></dd></dl></dd></dl></body></html>",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, embedder):
    from citeqa.index.building import sync_folder

    root = tmp_path_factory.mktemp("tiny")
    docs = root / "docs"
    docs.mkdir()
    for name, text in TINY.items():
        (docs / name).write_text(text, encoding="utf-8")
    sync_folder(root / "data", docs, embedder, chunk_params(), progress=False)
    return new_engine(root / "data", embedder).load()


def ask(engine, question, **kw):
    return qa.ask(engine, question, threshold=SETTINGS.abstain_threshold, top_k=SETTINGS.top_k, **kw)


def test_a_sentence_leaning_on_its_predecessor_brings_it_along(tiny):
    reply = ask(tiny, "How much grain did the harbour trade under her?")
    # Next to each other in one paragraph, the two are one citation.
    assert any("Maria Quell ran it for thirty years. She doubled" in c.quote for c in reply.answer.citations)


def test_the_sentence_leaning_on_a_cited_one_comes_along(tiny):
    answer = ask(tiny, "Who ran the Zorblat harbour for thirty years?").answer.answer
    assert "Maria Quell ran it for thirty years. She doubled its grain trade" in answer


def test_a_sentence_opening_mid_thought_is_never_cited_without_the_one_before(tiny):
    quotes = [c.quote for c in ask(tiny, "What do Zorblat timestamps count?").answer.citations]
    assert any(q.endswith("winter. timestamps count seconds since the harbour opened.") for q in quotes)


def test_a_quote_closed_by_he_said_brings_the_sentence_naming_the_speaker(tiny):
    answer = ask(tiny, "By when will the channel be dredged?").answer.answer
    assert "he said." in answer
    assert -1 < answer.find("Olaf Brenning chairs the Zorblat port board.") < answer.find("he said.")


def test_a_fact_told_over_two_sentences_of_a_paragraph_is_cited_whole(tiny):
    reply = ask(tiny, "How do I keep the scratch folder between runs?")
    assert any(c.quote == "Pass keep_cache=True to keep the scratch folder between runs. The folder is then "
               "never wiped by Zorblat." for c in reply.answer.citations)


def test_a_fragment_is_cited_with_its_heading_and_a_list_with_the_sentence_opening_it(tiny):
    quotes = [c.quote for c in ask(tiny, "What is Zorblat's walk depth by default?").answer.citations]
    assert "Walk depth\n\nDefault: 7" in quotes, "a fragment alone would say nothing"
    quotes = [c.quote for c in ask(tiny, "On which ports does the Zorblat server listen?").answer.citations]
    listed = "The Zorblat server listens on two ports:\n\n8080 for the web page\n\n9090 for the metrics"
    assert listed in quotes


def test_a_parameter_description_brings_the_signature_that_gives_its_default(tiny):
    assert "speed=4" in ask(tiny, "How fast does zorblat.dredge move the dredger by default?").answer.answer
    quotes = [c.quote for c in ask(tiny, "In which unit is the dredger's speed given?").answer.citations]
    assert "speed (int) – how fast the dredger moves, in knots" in quotes
    assert "zorblat.dredge(depth, speed=4, channel=None)" in quotes


def test_an_environment_variable_question_needs_a_sentence_naming_one(tiny):
    assert not ask(tiny, "Which environment variable sets the folder for Zorblat's files?").answer.abstained
    reply = ask(tiny, "Which environment variable sets the year the harbour opened?", doc_ids=["harbour"])
    assert reply.answer.abstained and reply.passages


def test_a_when_question_needs_a_time(tiny):
    assert ask(tiny, "When did the Zorblat harbour open?").answer.citations[0].quote.startswith(
        "The Zorblat harbour opened in 1911")
    assert ask(tiny, "When will Zorblat wipe the scratch folder?", doc_ids=["setup"]).answer.abstained


def test_identifiers_the_collection_never_mentions_are_unknown_names(tiny):
    snap = tiny.snapshot()
    assert unknown_names("Does Zorblat honour NO_COLOR or VISUAL?", snap) == ["NO_COLOR", "VISUAL"]
    assert unknown_names("Where does ZORB_HOME point?", snap) == []
    assert ask(tiny, "Does the Zorblat harbour honour NO_COLOR?").answer.abstained


def test_units_are_found_under_the_heading_that_names_their_subject(tiny):
    snap = tiny.snapshot()
    row = next(r for r in range(len(snap.sentence_ids)) if snap.sentence(r).startswith("The ZORB_HOME"))
    assert snap.sentence_sections[row] == "Zorblat settings > Files"
    assert {"zorblat", "file"} <= snap.section_terms[row]


def test_titles_and_headings_are_never_cited(tiny):
    reply = ask(tiny, "Zorblat Harbour")
    assert reply.answer.citations and all(c.quote != "Zorblat Harbour" for c in reply.answer.citations)
    assert not states_something("Pokrovsk at the heart of Russia’s offensive", "Some title")
    assert not states_something("Why does Russia want Pokrovsk so badly?", "t")
    assert states_something("Population: 60,000", "t")


def test_doc_ids_restrict_retrieval_and_citations(tiny):
    reply = ask(tiny, "How many hives are there?", doc_ids=["harbour"])
    assert {p.doc_id for p in reply.passages} == {"harbour"}
    assert all(c.doc_id == "harbour" for c in reply.answer.citations)
    assert ask(tiny, "How many hives are there?").answer.citations[0].doc_id == "bees"


def test_off_topic_questions_and_unknown_names_abstain(engine):
    for question in ("How do I reverse a list in Python?", "What did Chancellor Merz say about the harbour?"):
        reply = ask(engine, question)
        assert reply.answer.abstained and not reply.answer.citations and reply.passages
    assert unknown_names("What did German Chancellor Friedrich Merz say?", engine.snapshot()) == [
        "Chancellor", "Friedrich", "Merz"]
    assert unknown_names("What did the FAQ and the Germans say?", engine.snapshot()) == []


def test_no_two_citations_say_the_same_thing(engine):
    snap = engine.snapshot()
    row_at = {(d, int(st)): r for r, (d, st) in enumerate(zip(snap.sentence_docs, snap.sentence_starts,
                                                              strict=True))}
    for q in dataset.load()[:40]:
        rows = [row_at[(c.doc_id, c.start)] for c in ask(engine, q.question).answer.citations]
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                assert float(snap.sentence_vector(a) @ snap.sentence_vector(b)) <= NEAR_DUPLICATE, q.id


def test_a_follow_up_is_answered_from_the_earlier_topic(engine):
    history = [{"role": "user", "content": "Who is Pavel Podvig?"},
               {"role": "assistant", "content": "He is a Geneva-based analyst of nuclear forces. [1]"}]
    reply = ask(engine, "What did he tell NBC News about the Burevestnik?", history=history)
    assert "Podvig" in reply.query
    assert any("use" in c.quote and "Podvig" in c.quote or "NBC" in c.quote for c in reply.answer.citations)


def test_an_amount_question_is_declined_when_no_close_sentence_gives_that_amount(tiny):
    answered = ask(tiny, "How many hives does Tallin Vale keep?").answer
    assert not answered.abstained and "four hundred hives" in answered.citations[0].quote
    # The harbour text is on topic but gives no length: its nearest sentences would not answer.
    declined = ask(tiny, "How many kilometres long is the northern shore of Zorblat harbour?").answer
    assert declined.abstained and not declined.citations


def test_a_follow_up_tells_something_new_rather_than_repeating_the_last_answer(tiny):
    history = [{"role": "user", "content": "Who ran the Zorblat harbour?"},
               {"role": "assistant", "content": "Maria Quell ran it for thirty years. [1]"}]
    for question in ("And what did she achieve?", "What else do we know about her?"):
        quotes = [c.quote for c in ask(tiny, question, history=history).answer.citations]
        assert quotes and "Maria Quell ran it for thirty years." not in quotes
    # A sentence already said may still come back as the context a new one needs ("She doubled…").
    reply = ask(tiny, "What did she do to its grain trade?", history=history)
    assert any(c.quote.endswith("Maria Quell ran it for thirty years. She doubled its grain trade to twelve "
                                "million tonnes a year.") for c in reply.answer.citations)


def test_the_sentences_just_past_a_passage_edge_are_candidates_too(engine):
    """A chunk edge can fall between a quote and the sentence naming who said it."""
    snap = engine.snapshot()
    rows = snap.chunk_sentences
    row = next(r for r in range(len(rows)) if rows[r][0] > 0 and rows[r][-1] + 1 < len(snap.sentence_docs)
               and len({snap.sentence_docs[s] for s in (rows[r][0] - 1, rows[r][-1] + 1)}
                       | {snap.chunk(r).doc_id}) == 1)
    c = snap.chunk(row)
    passage = Passage(1, c.chunk_id, c.doc_id, c.title, c.text, c.start, c.end, 1.0)
    found = {x.row for x in candidates("troops", engine.embed_query("troops"), [passage], snap)}
    title = snap.documents[c.doc_id].title
    for edge in (rows[row][0] - 1, rows[row][-1] + 1):
        assert (edge in found) == states_something(snap.sentence(edge), title)
    assert set(rows[row]) & found


def test_condensing_leaves_a_standalone_question_alone():
    history = [{"role": "user", "content": "Who is Pavel Podvig?"}]
    assert condense("Which oil companies did the United States sanction last month?", history) == (
        "Which oil companies did the United States sanction last month?")
    assert needs_context("and why is it important?") and needs_context("Why?")
    assert condense("and why is it important?", history).startswith("and why is it important? Who is Pavel")


def test_helpers():
    assert names("Who is Pavel Podvig? He works at NBC.") == ["Pavel", "Podvig", "NBC"]
    assert is_dependent("He said so.") and is_dependent("“This is new,” she said.")
    assert not is_dependent("Hervé said so.")


def test_the_threshold_leaves_the_allowed_share_of_answerable_questions_under_it():
    supports = [0.3, 0.5, 0.6, 0.7, 0.8] * 20  # 100 questions
    assert pick_threshold(supports, 0.0) < 0.3
    t = pick_threshold(supports, 0.2)  # 20 may fall under: exactly the 0.3s
    assert 0.3 < t < 0.5 and sum(s < t for s in supports) == 20


def test_calibration_on_the_question_set_keeps_real_questions_and_drops_off_topic_ones(engine):
    questions = dataset.load()
    result = calibrate(engine, questions, SETTINGS.top_k)
    answerable = [q for q in questions if not q.unanswerable]
    assert sum(s < result.threshold for s in result.answerable) <= 0.02 * len(answerable)
    off_topic = [q for q in questions if q.unanswerable and "near_topic" not in q.tags]
    assert result.caught >= len(off_topic)
    assert result.false_abstentions <= 0.05 * len(answerable)
