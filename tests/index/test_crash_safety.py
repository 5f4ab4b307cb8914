"""Writes are atomic: kill -9 at any moment of a build or an update leaves the old state or the new one.

Real model, real SQLite, real FAISS, and the real `citeqa index build` command in a subprocess. Every
kill lands on a fresh copy of a built index. Most kill points are tied to what the process is seen
doing (embedding progress on its stderr, the database file being written, a new generation of FAISS
and BM25 files appearing, the manifest being replaced) rather than to wall-clock guesses, so every
phase is hit on a slow machine as on a fast one. Whatever the timing, the assertions hold: a kill
that arrives after the process has finished is simply the "new state" case.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from citeqa.index import derived, manifest, snapshot
from citeqa.index.building import sync_folder
from citeqa.index.chunking import chunk_sentences
from citeqa.index.embedding import Embedder
from citeqa.index.loading import make_document
from citeqa.index.sentences import split_sentences
from citeqa.index.snapshot import INDEX_DIR, store_at
from tests.support import chunk_params, new_engine

MODEL = "all-MiniLM-L6-v2"
BIN = Path(sys.executable).parent
CLI = str(BIN / "citeqa")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
DEADLINE = 180.0  # seconds; a subprocess still running then is a hang, not a slow machine

RIVERS = ["Alna", "Tana", "Glomma", "Otra", "Lagen", "Drammenselva", "Orkla", "Gaula", "Namsen", "Vefsna"]
THINGS = ["boats", "barges", "ferries", "canoes", "rafts", "kayaks"]
SEASONS = ["spring", "summer", "autumn", "winter"]
TOWNS = ["Lillestrom", "Hamar", "Skien", "Arendal", "Kongsberg", "Molde", "Steinkjer", "Mosjoen"]


def doc_text(i: int, edition: int = 0, paras: int = 1, per: int = 3) -> str:
    """A deterministic little report: a title line, then paragraphs of varied sentences."""
    r = random.Random(i * 1000 + edition)
    lines = [f"Report {i} on the river {RIVERS[i % len(RIVERS)]}, edition {edition}", ""]
    for _ in range(paras):
        lines.append(" ".join(
            f"Document {i} says the river {r.choice(RIVERS)} carries {r.randint(10, 999)} "
            f"{r.choice(THINGS)} each {r.choice(SEASONS)} past {r.choice(TOWNS)}." for _ in range(per)))
        lines.append("")
    return "\n".join(lines)


def folder_state(folder: Path) -> dict[str, str]:
    """What the index must hold for `folder`: doc_id (file stem) -> the file's text, kept whole."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}


@dataclass(frozen=True)
class State:
    docs: dict[str, str]
    counts: dict[str, int]
    fingerprint: str


def read_state(data: Path) -> State:
    store = store_at(data)
    return State({d.doc_id: d.text for d in store.documents()}, store.counts(), store.fingerprint())


# -- running a subprocess and killing it at a chosen moment ----------------------------------------------

@dataclass
class Run:
    """A subprocess whose stderr is collected as it comes, and what its data folder looked like before."""

    proc: subprocess.Popen
    data: Path
    started: float
    stderr: bytearray = field(default_factory=bytearray)
    db_before: tuple[int, int] = (0, 0)
    files_before: frozenset[str] = frozenset()
    manifest_before: int = 0

    @classmethod
    def start(cls, cmd: list[str], data: Path, stdin: bool = False) -> Run:
        db = data / snapshot.DB_NAME
        folder = data / INDEX_DIR
        before = dict(db_before=(db.stat().st_mtime_ns, db.stat().st_size),
                      files_before=frozenset(visible(folder)),
                      manifest_before=(folder / manifest.NAME).stat().st_ino)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        run = cls(proc, data, time.perf_counter(), **before)
        threading.Thread(target=run._drain, daemon=True).start()
        return run

    def _drain(self) -> None:
        while chunk := os.read(self.proc.stderr.fileno(), 65536):
            self.stderr.extend(chunk)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    # Each probe is monotonic: once true it stays true, so polling can be late but never miss it.
    def db_written(self) -> bool:
        db = self.data / snapshot.DB_NAME
        wal = db.with_name(db.name + "-wal")
        try:
            if wal.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        return (db.stat().st_mtime_ns, db.stat().st_size) != self.db_before

    def new_generation(self) -> bool:
        return bool(visible(self.data / INDEX_DIR) - self.files_before)

    def manifest_replaced(self) -> bool:
        try:
            return (self.data / INDEX_DIR / manifest.NAME).stat().st_ino != self.manifest_before
        except FileNotFoundError:
            return False

    def wait_for(self, ready) -> None:
        """Poll until `ready()` or the process ends."""
        while self.proc.poll() is None and not ready():
            if self.elapsed() > DEADLINE:
                self.proc.kill()
                pytest.fail(f"subprocess hung: {self.proc.args}\n{self.stderr.decode(errors='replace')}")
            time.sleep(0.002)

    def go_and_kill(self, ready) -> tuple[float, bool]:
        """Tell a waiting worker to go, kill it once `ready(self)`: (seconds after go, died of it)."""
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        self.started = time.perf_counter()
        self.wait_for(lambda: ready(self))
        at = self.elapsed()
        return at, self.kill()

    def kill(self) -> bool:
        """SIGKILL now; True when the process was still running and died of it."""
        self.proc.send_signal(signal.SIGKILL)  # does nothing when the process has already been reaped
        self.proc.wait(timeout=60)
        return self.proc.returncode == -signal.SIGKILL

    def finish(self) -> str:
        self.proc.wait(timeout=DEADLINE)
        out = self.proc.stdout.read().decode()
        assert self.proc.returncode == 0, f"{self.proc.args} failed:\n{out}\n{self.stderr.decode()}"
        return out


def visible(folder: Path) -> set[str]:
    return {n for n in os.listdir(folder) if not n.startswith(".")}


def copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- what must hold after any kill ---------------------------------------------------------------------

def check_index(data: Path, embedder: Embedder, states: dict[str, State]) -> str:
    """The index opens and is whole, and equals exactly one of `states`; returns that state's name."""
    with closing(sqlite3.connect(data / snapshot.DB_NAME)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snap = snapshot.load(data, MODEL)  # repairs derived files when it must, so it comes first
    now = read_state(data)
    names = [name for name, state in states.items() if state.docs == now.docs]
    assert len(names) == 1, (f"documents match none of {list(states)}: "
                             f"{sorted(now.docs)} vs " + str({n: sorted(s.docs) for n, s in states.items()}))
    name = names[0]
    assert now.counts == states[name].counts, f"{name} documents but rows of a mix: {now.counts}"
    assert now.fingerprint == states[name].fingerprint

    # The base on disk plus the changes SQLite records add up to SQLite: FAISS holds every live row once,
    # and every row it names belongs to a stored document.
    live = sum(s.part.chunk_index.ntotal - s.dead_chunks for s in snap.segments)
    assert live == now.counts["chunks"] == snap.counts()["chunks"]
    sentences = sum(s.part.sentence_index.ntotal - s.dead_sentences for s in snap.segments)
    assert sentences == now.counts["sentences"]
    live_chunks = [r for r in range(snap.chunk_count) if snap.chunk_sentences[r]]
    assert {snap.chunk_docs[r] for r in live_chunks} == set(now.docs)  # all searchable, nothing else
    assert manifest.load(data / INDEX_DIR) == snap.manifest  # the repair, if any, is on disk
    for table in ("chunks", "sentences"):
        assert derived.faiss_path(data / INDEX_DIR, snap.manifest.generation, table).exists()

    passages = new_engine(data, embedder).load().search("river boats", k=3)  # hybrid: FAISS and BM25
    assert len(passages) == 3
    for p in passages:
        assert p.doc_id in now.docs
        assert p.text == now.docs[p.doc_id][p.start:p.end]
    return name


# -- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def module_embedder(embedder) -> Embedder:
    """The session's real model (see conftest), under the name this module's tests use."""
    return embedder


@dataclass(frozen=True)
class Corpus:
    old_docs: Path
    new_docs: Path
    old_data: Path  # built from old_docs by the CLI, never written to afterwards
    old: State


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, request) -> Corpus:
    root = tmp_path_factory.mktemp("crash")
    old_docs, new_docs, old_data = root / "old-docs", root / "new-docs", root / "old-data"
    old_docs.mkdir()
    for i in range(30):
        (old_docs / f"doc{i:02d}.txt").write_text(doc_text(i), encoding="utf-8")
    # The change: three files edited, three added, three deleted; the edited and added ones are longer,
    # so the update embeds several batches of texts and spends a few seconds in the model.
    shutil.copytree(old_docs, new_docs)
    for i in (27, 28, 29):
        (new_docs / f"doc{i:02d}.txt").unlink()
    for i in (3, 11, 19, 30, 31, 32):
        (new_docs / f"doc{i:02d}.txt").write_text(doc_text(i, edition=1, paras=2, per=6), encoding="utf-8")

    proc = subprocess.Popen([CLI, "index", "build", "--docs", str(old_docs), "--data", str(old_data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    request.getfixturevalue("module_embedder")  # loads meanwhile
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err.decode()
    old = read_state(old_data)
    assert old.docs == folder_state(old_docs)
    assert old.counts["documents"] == 30 and old.counts["chunks"] >= 30
    return Corpus(old_docs, new_docs, old_data, old)


# -- the tests -----------------------------------------------------------------------------------------

def test_build_killed_at_any_moment_leaves_old_or_new_index(corpus, module_embedder, tmp_path):
    build = [CLI, "index", "build", "--docs", str(corpus.new_docs), "--data"]

    # One unkilled build of the change, watched, gives the new state and the timeline to aim at.
    data = copy_data(corpus.old_data, tmp_path / "measured")
    run = Run.start(build + [str(data)], data)
    marks = {}
    for name, ready in (("embedding", lambda: b"embedding:" in run.stderr),
                        ("database", run.db_written), ("generation", run.new_generation),
                        ("manifest", run.manifest_replaced)):
        run.wait_for(ready)
        marks[name] = run.elapsed()
    out = run.finish()
    marks["exit"] = run.elapsed()
    new = read_state(data)
    assert new.docs == folder_state(corpus.new_docs)
    assert new.fingerprint != corpus.old.fingerprint
    embedded = int(re.search(r"embedded (\d+) texts", out).group(1))
    assert embedded > 64  # enough for several embedding batches, so "mid-embedding" exists
    states = {"old": corpus.old, "new": new}
    assert check_index(data, module_embedder, states) == "new"

    progress = re.compile(rb"\b(\d+)/" + str(embedded).encode() + rb"\b")

    def mid_embedding(run: Run) -> bool:  # tqdm has reported at least one batch embedded
        return any(int(n) > 0 for n in progress.findall(run.stderr))

    # (label, when to kill a run): the first at a fixed time, before any write; the rest are events.
    kill_points = [
        ("0.3 s: interpreter starting", lambda run: run.elapsed() >= 0.3),
        ("mid-embedding", mid_embedding),
        ("SQLite being written", Run.db_written),
        ("new base part being written", Run.new_generation),
        ("manifest just replaced", Run.manifest_replaced),
    ]
    outcomes = []
    for i, (label, ready) in enumerate(kill_points):
        data = copy_data(corpus.old_data, tmp_path / f"kill{i}")
        run = Run.start(build + [str(data)], data)
        run.wait_for(lambda run=run, ready=ready: ready(run))
        at = run.elapsed()
        died = run.kill()
        outcome = check_index(data, module_embedder, states)
        outcomes.append((label, round(at, 2), "killed" if died else "had finished", outcome))

        # A normal build afterwards reaches the new state, redoing exactly what the kill lost.
        report = sync_folder(data, corpus.new_docs, module_embedder, chunk_params(), progress=False)
        assert report.embedded == (embedded if outcome == "old" else 0), outcomes
        assert check_index(data, module_embedder, states) == "new"

    print(f"\nmeasured build: {marks}")
    for row in outcomes:
        label, at, how, outcome = row
        print(f"  kill at {label:<38} {at:6.2f} s  {how:<12} -> {outcome} state")
    by_label = {label: outcome for label, _, _, outcome in outcomes}
    # Only the code's order makes these certain: a build commits to SQLite, which records what changed,
    # and only then folds the change into a new base part and replaces the manifest.
    assert by_label["0.3 s: interpreter starting"] == "old", outcomes
    assert by_label["new base part being written"] == "new", outcomes
    assert by_label["manifest just replaced"] == "new", outcomes


PUT_SCRIPT = """
import sys
from pathlib import Path

from citeqa.index.building import put_document
from citeqa.index.loading import make_document
from tests.support import chunk_params, new_embedder

data, source = Path(sys.argv[1]), Path(sys.argv[2])
embedder = new_embedder().load()
embedder.encode(["warm up"])
doc = make_document(source.read_text(encoding="utf-8"), "extra_doc")
print("ready", file=sys.stderr, flush=True)
sys.stdin.readline()
put_document(data, doc, embedder, chunk_params())
"""


def test_put_document_killed_midway_stores_all_of_it_or_nothing(corpus, module_embedder, tmp_path):
    text = doc_text(99, edition=7, paras=6, per=10)  # about 60 sentences and half a dozen chunks
    source = tmp_path / "extra.txt"
    source.write_text(text, encoding="utf-8")

    # The new state, worked out without the model's vectors: what put_document will store.
    doc = make_document(text, "extra_doc")
    count = module_embedder.count_tokens
    sents = split_sentences(doc.doc_id, doc.text, doc.content, count, chunk_params().chunk_tokens)
    chunks = chunk_sentences(doc.doc_id, doc.title, doc.text, sents, count, chunk_params().chunk_tokens,
                             chunk_params().overlap_tokens)
    old = corpus.old
    with_extra = {**old.docs, "extra_doc": text}
    new_counts = {"documents": old.counts["documents"] + 1, "chunks": old.counts["chunks"] + len(chunks),
                  "sentences": old.counts["sentences"] + len(sents)}

    kill_points = [
        ("as the write begins", lambda run: True),
        ("0.5 s into cutting and embedding", lambda run: run.elapsed() >= 0.5),
        ("SQLite being written", Run.db_written),
        ("just after", lambda run: False),  # waits for the process to end
    ]
    # The workers load the model side by side, then each waits for its go.
    runs = []
    for i in range(len(kill_points)):
        data = copy_data(corpus.old_data, tmp_path / f"put{i}")
        runs.append(Run.start([sys.executable, "-c", PUT_SCRIPT, str(data), str(source)], data, stdin=True))
    outcomes = []
    new = None
    try:
        for run in runs:
            run.wait_for(lambda run=run: b"ready" in run.stderr)
            assert run.proc.poll() is None, run.stderr.decode()
        for run, (label, ready) in zip(runs, kill_points, strict=True):
            at, died = run.go_and_kill(ready)
            after = read_state(run.data)
            if "extra_doc" in after.docs:
                assert after.docs == with_extra  # the whole text, not a piece of it
                assert after.counts == new_counts
                new = new or after
            else:
                assert after.docs == old.docs
            states = {"old": old} | ({"new": new} if new else {})
            outcome = check_index(run.data, module_embedder, states)
            outcomes.append((label, round(at, 2), "killed" if died else "had finished", outcome))
    finally:
        for run in runs:  # a failure above must not leave workers waiting on their go
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(timeout=60)

    for row in outcomes:
        label, at, how, outcome = row
        print(f"  put_document killed {label:<38} {at:6.2f} s  {how:<12} -> {outcome} state")
    by_label = {label: outcome for label, _, _, outcome in outcomes}
    assert by_label["as the write begins"] == "old", outcomes
    assert by_label["just after"] == "new", outcomes  # a write touches no index file: SQLite holds it


def test_damaged_or_missing_derived_files_are_rebuilt_from_sqlite(corpus, module_embedder, tmp_path):
    old = corpus.old
    states = {"old": old}
    current = manifest.load(corpus.old_data / INDEX_DIR)
    assert current is not None and current.base_version == store_at(corpus.old_data).version()

    garbage = copy_data(corpus.old_data, tmp_path / "garbage")
    path = derived.faiss_path(garbage / INDEX_DIR, current.generation, "chunks")
    path.write_bytes(random.Random(1).randbytes(path.stat().st_size))

    truncated = copy_data(corpus.old_data, tmp_path / "truncated")
    path = derived.faiss_path(truncated / INDEX_DIR, current.generation, "sentences")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    no_manifest = copy_data(corpus.old_data, tmp_path / "no-manifest")
    (no_manifest / INDEX_DIR / manifest.NAME).unlink()

    for data in (garbage, truncated, no_manifest):
        snap = snapshot.load(data, MODEL)
        assert snap.segments[0].part.chunk_index.ntotal == old.counts["chunks"] == snap.chunk_count
        assert snap.segments[0].part.sentence_index.ntotal == old.counts["sentences"]
        assert check_index(data, module_embedder, states) == "old"
        if data is not no_manifest:
            assert snap.manifest.generation != current.generation  # rewritten, not trusted


MERGE_SCRIPT = """
import sys
from pathlib import Path

from citeqa.index.engine import Engine
from citeqa.index.loading import make_document
from tests.support import chunk_params, new_embedder

data, source = Path(sys.argv[1]), Path(sys.argv[2])
engine = Engine(data, new_embedder().load(), chunk_params(), depth=20, merge_rows=10**9).load()
engine.put(make_document(source.read_text(encoding="utf-8"), "extra_doc"))
engine.delete("doc05")
print("ready", file=sys.stderr, flush=True)
sys.stdin.readline()
engine.merge()
"""


def test_a_merge_killed_at_any_phase_loses_nothing(corpus, module_embedder, tmp_path):
    """A write is in SQLite when it returns; a merge only rewrites index files. Killed while writing the
    new base, or after the manifest names it but before SQLite forgets the changes it holds, the index
    that opens next still shows every write exactly once."""
    source = tmp_path / "extra.txt"
    source.write_text(doc_text(98, edition=3, paras=4, per=8), encoding="utf-8")
    kill_points = [
        ("as the merge begins", lambda run: True),
        ("new base part being written", Run.new_generation),
        ("manifest just replaced", Run.manifest_replaced),
        ("just after", lambda run: False),
    ]
    runs = []
    for i in range(len(kill_points)):
        data = copy_data(corpus.old_data, tmp_path / f"merge{i}")
        runs.append(Run.start([sys.executable, "-c", MERGE_SCRIPT, str(data), str(source)], data, stdin=True))
    outcomes = []
    try:
        for run in runs:
            run.wait_for(lambda run=run: b"ready" in run.stderr)
            assert run.proc.poll() is None, run.stderr.decode()
        for run, (label, ready) in zip(runs, kill_points, strict=True):
            before = manifest.load(run.data / INDEX_DIR)
            at, died = run.go_and_kill(ready)
            new = read_state(run.data)
            assert "extra_doc" in new.docs and "doc05" not in new.docs
            assert check_index(run.data, module_embedder, {"new": new}) == "new"
            merged = manifest.load(run.data / INDEX_DIR).generation != before.generation
            outcomes.append((label, round(at, 2), "killed" if died else "had finished", merged))
    finally:
        for run in runs:
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(timeout=60)
    for label, at, how, merged in outcomes:
        print(f"  merge killed {label:<30} {at:6.2f} s  {how:<12} -> {'merged' if merged else 'old base'}")
    by_label = {label: merged for label, _, _, merged in outcomes}
    assert not by_label["as the merge begins"] and not by_label["new base part being written"], outcomes
    assert by_label["manifest just replaced"] and by_label["just after"], outcomes
