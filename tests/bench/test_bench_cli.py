"""`citeqa bench --quick` runs end to end and writes its figures: no timing is asserted here."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from citeqa.bench.report import TARGETS
from tests.support import ROOT, SEEDS


def test_the_quick_benchmark_measures_every_target_and_writes_the_report(tmp_path):
    """Over two of the seeds: the command's whole path, at a fraction of the time."""
    report, docs = tmp_path / "benchmarks.md", tmp_path / "docs"
    docs.mkdir()
    for name in ("000_43ab17fb5869de75.txt", "002_716abe37c6478c8a.txt"):
        shutil.copy(SEEDS / name, docs)
    command = [str(Path(sys.executable).with_name("citeqa")), "bench", "--quick", "--docs", str(docs),
               "--out", str(tmp_path / "results"), "--report", str(report)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "quick.json").read_text())
    serving = result["serving"]
    assert serving["sequential"]["n"] == 60 and serving["load"]["requests"] > 0
    assert serving["load"]["non_2xx"] == 0 and serving["load"]["socket_errors"] == 0
    assert 0 < serving["cold_start_s"] and serving["peak_rss_mb"] > 100
    cpu = serving["load"]["cpu"]  # where the CPU went under load: what explains the throughput reached
    assert 0 < cpu["machine_busy"] <= 1
    assert 0 < cpu["server_ms_per_answer"] <= cpu["machine_ms_per_answer"] * 1.1
    assert cpu["mean_batch"] >= 1 and cpu["ceiling_per_s"] >= serving["load"]["requests_per_s"] * 0.9
    assert result["query_model"][result["query_backend"]]["cpu_ms_per_question"] > 0
    assert result["answer_vs_langchain"]["ratio"] > 0
    assert result["ingestion"]["texts_embedded"] > result["ingestion"]["chunks"] > 0
    assert [r["n"] for r in result["scale"]] == [10_000] and 0 < result["scale"][0]["recall_at_10"] <= 1
    assert result["bm25"]["passages"] > 0
    text = report.read_text()
    assert "## Targets" in text and "| cold start to /readyz (s) |" in text
    assert "**Where the CPU goes**" in text
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000
    # One verdict line per target, each with its measured value and ok or MISSED.
    lines = [line for line in done.stdout.splitlines() if line.endswith((" ok", " MISSED"))]
    assert [line[:42].strip() for line in lines] == list(TARGETS), done.stdout
    assert all(re.search(r"\d", line[42:]) for line in lines), "every target has a figure"
    assert serving["rss_after_asks_mb"] > 50


def test_a_missing_collection_is_one_line_and_exit_1(tmp_path):
    done = subprocess.run([str(Path(sys.executable).with_name("citeqa")), "bench", "--quick", "--docs",
                           str(tmp_path / "nope")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0 and "--docs" in done.stderr
