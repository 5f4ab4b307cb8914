"""The command line, run as a user runs it: summaries on success, one plain line on failure."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, SEEDS

CITEQA = str(Path(sys.executable).with_name("citeqa"))


def run(*args, cwd=ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([CITEQA, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, docs)
    (docs / "broken.txt").write_bytes(b"\xff\xfe\x00binary")
    data = tmp_path_factory.mktemp("data")
    result = run("index", "build", "--docs", str(docs), "--data", str(data))
    return docs, data, result


def test_build_reports_what_it_indexed_and_warns_about_skipped_files(built):
    _, _, result = built
    assert result.returncode == 0, result.stderr
    assert "indexed 5 documents" in result.stdout
    assert "chunks" in result.stdout and "sentences" in result.stdout
    assert "warning: skipped" in result.stderr and "broken.txt" in result.stderr
    assert "embedding" in result.stderr  # the tqdm progress bar


def test_rebuild_of_unchanged_folder_embeds_nothing(built):
    docs, data, _ = built
    result = run("index", "build", "--docs", str(docs), "--data", str(data))
    assert result.returncode == 0 and "embedded 0 texts" in result.stdout and "unchanged 5" in result.stdout


def test_stats_and_search(built):
    _, data, _ = built
    stats = run("index", "stats", "--data", str(data))
    assert stats.returncode == 0 and "documents:   5" in stats.stdout and "all-MiniLM-L6-v2" in stats.stdout
    found = run("search", "Which oil companies did the sanctions hit?", "--k", "3", "--data", str(data))
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    first = " ".join(found.stdout.split("\n2. ")[0].split())  # the first result, however it was wrapped
    assert lines[0].startswith("1. ") and "(000_43ab17fb5869de75)" in first  # the Lukoil/Rosneft passage
    assert sum(line[:3] in ("1. ", "2. ", "3. ") for line in lines) == 3


@pytest.mark.parametrize("args, message", [
    (["index", "build", "--docs", "/nonexistent/folder"], "no such folder"),
    (["index", "stats", "--data", "/nonexistent/data"], "no index in"),
    (["search", "anything", "--data", "/nonexistent/data"], "no index in"),
    (["search", "   "], "QUESTION is empty"),
])
def test_bad_input_gets_one_line_and_a_non_zero_exit(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_empty_folder_is_an_error(tmp_path):
    result = run("index", "build", "--docs", str(tmp_path), "--data", str(tmp_path / "data"))
    assert result.returncode == 1 and "no .txt, .md, .html, .pdf or .docx files" in result.stderr


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_a_missing_optional_extra_is_named_in_one_line(command, tmp_path):
    """As if citeqa[eval] were not installed: matplotlib cannot be imported."""
    code = (f"import sys; sys.modules['matplotlib'] = None; sys.argv = ['citeqa', {command!r}]; "
            "from citeqa.service.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'citeqa[eval]'" in done.stderr and "matplotlib" in done.stderr


def test_version():
    result = run("--version")
    assert result.returncode == 0 and re.fullmatch(r"citeqa \d+\.\d+\.\d+\n", result.stdout), result.stdout


def test_outside_the_repository_nothing_relies_on_a_hidden_seeds_folder(tmp_path):
    result = run("index", "build", "--data", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "citeqa index build --docs FOLDER" in result.stderr


def test_stats_as_json(built):
    _, data, _ = built
    stats = json.loads(run("index", "stats", "--data", str(data), "--json").stdout)
    assert stats["documents"] == 5 and stats["model"] == "all-MiniLM-L6-v2" and stats["dim"] == 384


def test_ask_and_search_a_running_server_print_its_answer_with_the_quotes(server):
    question = "What did Kyiv admit on Monday about Russian troops in Pokrovsk?"
    body = json.loads(run("ask", question, "--url", server, "--json").stdout)
    assert body["question"] == question and body["citations"] and not body["abstained"]
    shown = run("ask", question, "--url", server)
    assert shown.returncode == 0, shown.stderr
    flat = " ".join(shown.stdout.split())
    assert flat.startswith(" ".join(body["answer"].split()))
    assert max(len(line) for line in shown.stdout.splitlines()) <= 100  # wrapped
    for c in body["citations"]:
        assert f"[{c['id']}] {c['title']} ({c['doc_id']})" in flat
        assert f"“{' '.join(c['quote'].split())}”" in flat  # the words it quotes, not where they are
        assert f"{c['start']}-{c['end']}" not in flat
    found = json.loads(run("search", "oil sanctions", "--url", server, "--k", "3", "--json").stdout)
    assert [r["rank"] for r in found["results"]] == [1, 2, 3]


@pytest.mark.parametrize("args, message", [
    (["ask", "Where is Pokrovsk?", "--url", "http://127.0.0.1:9"], "could not reach http://127.0.0.1:9"),
    (["ask", "Where is Pokrovsk? " * 400, "--url", "SERVER"], "answered 422: question"),
])
def test_a_server_that_cannot_answer_is_one_line(server, args, message):
    result = run(*[server if a == "SERVER" else a for a in args])
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and message in result.stderr, \
        result.stderr
