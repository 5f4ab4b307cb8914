"""The command line, run as a user runs it: summaries on success, one plain line on failure."""

import os
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
    assert lines[0].startswith("1. ") and "000_43ab17fb5869de75" in lines[0]  # the Lukoil/Rosneft passage
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
