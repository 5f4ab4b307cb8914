"""`citeqa eval` as a user runs it: every collection against its thresholds and LangChain's default, the
report, the baselines, HTTP."""

import json

import pytest

from citeqa.eval import dataset, sets
from citeqa.eval.gate import check, load, versus
from citeqa.index.errors import InvalidInput
from tests.test_cli import run

LATENCY = ("latency_p50_ms", "latency_p95_ms")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Every set of eval/sets/, each on its own collection (news, HTML docs, Markdown docs), gated."""
    out = tmp_path_factory.mktemp("eval")
    result = run("eval", "--all", "--out", str(out), "--check")
    reports = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/report.json")}
    return out, result, reports


def test_every_collection_meets_its_floors_and_beats_langchains_default(evaluated):
    _, result, reports = evaluated
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(reports) == set(sets.names()) and len(reports) >= 3
    for name, report in reports.items():
        assert f"every figure of {name} meets" in result.stdout
        m = {system: s["metrics"] for system, s in report["systems"].items()}
        assert m["citeqa"]["hit_at_5"] >= m["langchain"]["hit_at_5"], name
        assert m["citeqa"]["key_fact_recall"] >= m["langchain"]["key_fact_recall"], name


def test_the_seeds_report_is_written(evaluated):
    out, result, reports = evaluated
    out, report = out / "seeds", reports["seeds"]
    assert "key-fact recall" in result.stdout  # the summary table
    for name in ("report.json", "report.md", "metrics.png", "latency.png"):
        assert (out / name).stat().st_size > 1000, name
    markdown = (out / "report.md").read_text()
    assert "| hit@5 ↑ |" in markdown and "## Worst questions (citeqa)" in markdown
    assert "went wrong:" in markdown
    assert report["questions"] == len(dataset.load())
    assert set(report["systems"]) == {"citeqa", "bm25", "langchain"}


def test_citeqa_beats_both_baselines_on_retrieval_facts_and_abstention(evaluated):
    m = {name: s["metrics"] for name, s in evaluated[2]["seeds"]["systems"].items()}
    for base in ("bm25", "langchain"):
        assert m["citeqa"]["hit_at_5"] > m[base]["hit_at_5"]
        assert m["citeqa"]["key_fact_recall"] > m[base]["key_fact_recall"]
        assert m["citeqa"]["false_abstention_rate"] <= m[base]["false_abstention_rate"] or base == "langchain"
    assert m["langchain"]["abstention_recall"] == 0.0  # it never abstains: the reference point


def test_every_system_cites_exact_offsets(evaluated):
    """The baselines' citations are checked the same way: a figure is only a reference if it is right."""
    for collection, report in evaluated[2].items():
        for name, s in report["systems"].items():
            assert s["metrics"]["citation_validity"] == 1.0, (collection, name)
            assert all(r["ms"] > 0 for r in s["records"]), (collection, name)


def test_over_http_the_figures_match_the_in_process_run(evaluated, server, tmp_path):
    result = run("eval", "--url", server, "--no-baselines", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    remote = json.loads((tmp_path / "report.json").read_text())["systems"]["citeqa"]["metrics"]
    local = evaluated[2]["seeds"]["systems"]["citeqa"]["metrics"]
    assert {k: v for k, v in remote.items() if k not in LATENCY} == \
        {k: v for k, v in local.items() if k not in LATENCY}


def test_a_figure_under_its_floor_fails_the_run_and_names_it(seeds_data, tmp_path):
    questions = tmp_path / "three.jsonl"
    questions.write_text("\n".join((dataset.DEFAULT_SET.read_text().splitlines())[:3]) + "\n")
    bar = tmp_path / "bar.toml"
    bar.write_text("[floors]\nkey_fact_recall = 1.01\n[ceilings]\nfalse_abstention_rate = 0.5\n")
    result = run("eval", "--set", str(questions), "--no-baselines", "--out", str(tmp_path / "out"),
                 "--thresholds", str(bar), "--data", str(seeds_data))  # an index built already: only reads it
    assert result.returncode == 1
    assert "key_fact_recall" in result.stderr and "false_abstention_rate" not in result.stderr
    assert (tmp_path / "out" / "report.md").exists()  # the report is still written, to see why


def test_bad_input_is_one_plain_line_and_a_non_zero_exit(tmp_path):
    missing = run("eval", "--thresholds", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and missing.stderr.startswith("error: --thresholds:")
    unknown = run("eval", "--set", "no-such-set")
    assert unknown.returncode == 1 and "choose one of" in unknown.stderr and "seeds" in unknown.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "question": }\n')
    result = run("eval", "--set", str(broken))
    assert result.returncode == 1 and "broken.jsonl:1" in result.stderr
    unreachable = run("eval", "--url", "http://127.0.0.1:9", "--no-baselines")
    assert unreachable.returncode == 1 and "is `citeqa serve` running" in unreachable.stderr


def test_the_gate_checks_floors_and_ceilings(tmp_path):
    bar = {"floors": {"hit_at_5": 0.95}, "ceilings": {"false_abstention_rate": 0.05}}
    assert check({"hit_at_5": 0.96, "false_abstention_rate": 0.01}, bar) == []
    assert check({"hit_at_5": 0.94, "false_abstention_rate": 0.06}, bar) == [
        "hit_at_5: 0.94 is below its floor 0.95", "false_abstention_rate: 0.06 is above its ceiling 0.05"]
    assert check({"hit_at_5": None, "false_abstention_rate": 0.0}, bar) == [
        "hit_at_5: None is below its floor 0.95"]
    assert "not a metric" in check({}, {"floors": {"typo": 1.0}})[0]
    ours, theirs = {"hit_at_5": 0.8, "key_fact_recall": 0.9}, {"hit_at_5": 0.85, "key_fact_recall": 0.9}
    assert versus(ours, theirs, "langchain") == ["hit_at_5: 0.8 is below langchain's 0.85"]
    odd = tmp_path / "odd.toml"
    odd.write_text("[flors]\nhit_at_5 = 1\n")
    with pytest.raises(InvalidInput, match="unknown tables"):
        load(odd)
