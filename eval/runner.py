"""Run a question set through each system and score it: retrieval, answers, grounding, abstention, latency."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
from tqdm import tqdm

from citeqa.eval.answers import missing_facts, token_f1
from citeqa.eval.dataset import Question
from citeqa.eval.grounding import grounding
from citeqa.eval.retrieval import first_hit, holds
from citeqa.eval.systems import System

HIT_AT = 5  # hit@5 is reported whatever k the answers use


def score_question(system: System, q: Question, k: int) -> dict:
    out = system.run(q, k)
    rank = first_hit(out.ranked, q) if q.evidence else None
    top = out.ranked[:k]
    found = [any(holds(p, e) for p in top) for e in q.evidence]
    texts = {d: system.text(d) for d in {c["doc_id"] for c in out.citations}}
    valid = [texts[c["doc_id"]] is not None and texts[c["doc_id"]][c["start"]:c["end"]] == c["quote"]
             for c in out.citations]
    g = grounding(out.answer, {c["id"]: c["quote"] for c in out.citations}) if not out.abstained else None
    missing = missing_facts(out.answer, q) if not q.unanswerable and not out.abstained else \
        [f[0] for f in q.facts]
    record = {
        "id": q.id, "question": q.question, "tags": q.tags, "unanswerable": q.unanswerable,
        "answer": out.answer, "abstained": out.abstained, "citations": out.citations,
        "first_hit": rank, "evidence_found": sum(found) / len(found) if found else None,
        "facts_stated": not q.unanswerable and not out.abstained and not missing,
        "missing_facts": missing if not q.unanswerable else [],
        "f1": token_f1(out.answer, q.answer) if not q.unanswerable and not out.abstained else 0.0,
        "citations_valid": sum(valid), "grounding": asdict(g) if g else None, "ms": round(out.ms, 2),
    }
    record["problems"] = problems(record, q)
    return record


def problems(r: dict, q: Question) -> list[str]:
    """What went wrong with one answer, in words a reader of the report can act on."""
    out = []
    if q.unanswerable:
        if not r["abstained"]:
            out.append("answered a question the documents do not answer")
    else:
        if r["abstained"]:
            out.append("abstained on an answerable question")
        if r["first_hit"] is None or r["first_hit"] > HIT_AT:
            out.append(f"no gold passage in the top {HIT_AT}")
        if r["missing_facts"] and not r["abstained"]:
            out.append("missing: " + "; ".join(r["missing_facts"]))
    if r["citations_valid"] < len(r["citations"]):
        out.append(f"{len(r['citations']) - r['citations_valid']} citation(s) not at their offsets")
    g = r["grounding"]
    if g and g["supported"] < g["statements"]:
        out.append(f"{g['statements'] - g['supported']} statement(s) not supported by their citations")
    return out


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(records: list[dict]) -> dict:
    answerable = [r for r in records if not r["unanswerable"]]
    ranked = [r for r in answerable if r["evidence_found"] is not None]
    unanswerable = [r for r in records if r["unanswerable"]]
    answered = [r for r in records if not r["abstained"]]
    grounded = [r["grounding"] for r in answered if r["grounding"] and r["grounding"]["statements"]]
    cited = [g for g in grounded if g["citations"]]
    abstained = [r for r in records if r["abstained"]]
    ms = [r["ms"] for r in records]
    return {
        "hit_at_1": _ratio(sum(r["first_hit"] == 1 for r in ranked), len(ranked)),
        "hit_at_5": _ratio(sum(r["first_hit"] is not None and r["first_hit"] <= HIT_AT for r in ranked),
                           len(ranked)),
        "mrr_at_10": _mean([1 / r["first_hit"] if r["first_hit"] else 0.0 for r in ranked]),
        "evidence_recall": _mean([r["evidence_found"] for r in ranked]),
        "key_fact_recall": _ratio(sum(r["facts_stated"] for r in answerable), len(answerable)),
        "token_f1": _mean([r["f1"] for r in answerable]),
        "citation_validity": _ratio(sum(r["citations_valid"] for r in answered),
                                    sum(len(r["citations"]) for r in answered)),
        "citation_recall": _mean([g["supported"] / g["statements"] for g in grounded]),
        "citation_precision": _mean([g["precise"] / g["citations"] for g in cited]),
        "abstention_recall": _ratio(sum(r["abstained"] for r in unanswerable), len(unanswerable)),
        "abstention_precision": _ratio(sum(r["unanswerable"] for r in abstained), len(abstained)),
        "false_abstention_rate": _ratio(sum(r["abstained"] for r in answerable), len(answerable)),
        "latency_p50_ms": round(float(np.percentile(ms, 50)), 2) if ms else None,
        "latency_p95_ms": round(float(np.percentile(ms, 95)), 2) if ms else None,
    }


def evaluate(systems: list[System], questions: list[Question], k: int, source: str = "") -> dict:
    """The whole report: every system on every question, with per-question records."""
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "set": source, "k": k, "questions": len(questions),
        "answerable": sum(not q.unanswerable for q in questions),
        "unanswerable": sum(q.unanswerable for q in questions),
        "systems": {},
    }
    for system in systems:
        records = [score_question(system, q, k)
                   for q in tqdm(questions, desc=f"eval {system.name}", unit="q", leave=False)]
        report["systems"][system.name] = {"describe": system.describe, "info": system.info,
                                          "metrics": summarise(records), "records": records}
    return report
