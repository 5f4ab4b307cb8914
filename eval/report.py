"""Write an evaluation report: report.json, report.md, and PNG plots; and the summary table."""

from __future__ import annotations

import json
from pathlib import Path

# (key, label, better) where better is "high" or "low"; the order of the tables and plots.
METRICS = [
    ("hit_at_1", "hit@1", "high"),
    ("hit_at_5", "hit@5", "high"),
    ("mrr_at_10", "MRR@10", "high"),
    ("evidence_recall", "evidence recall@k", "high"),
    ("key_fact_recall", "key-fact recall", "high"),
    ("token_f1", "token F1", "high"),
    ("citation_validity", "citation validity", "high"),
    ("citation_recall", "citation recall", "high"),
    ("citation_precision", "citation precision", "high"),
    ("abstention_recall", "abstention recall", "high"),
    ("abstention_precision", "abstention precision", "high"),
    ("false_abstention_rate", "false-abstention rate", "low"),
    ("latency_p50_ms", "latency p50 (ms)", "low"),
    ("latency_p95_ms", "latency p95 (ms)", "low"),
]
WORST = 10


def _cell(value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if isinstance(value, float) and value > 1.5 else f"{value:.3f}"


def table(report: dict, markdown: bool = False) -> str:
    """Metrics down, systems across: the summary printed after a run and shown in report.md."""
    names = list(report["systems"])
    rows = [["metric", *names]]
    for key, label, better in METRICS:
        arrow = "↑" if better == "high" else "↓"
        rows.append([f"{label} {arrow}", *(_cell(report["systems"][n]["metrics"][key]) for n in names)])
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" + "---:|" * len(names)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))) for r in rows)


def worst(records: list[dict], n: int = WORST) -> list[dict]:
    """The questions with the most problems, ties broken by the lowest token F1."""
    bad = [r for r in records if r["problems"]]
    return sorted(bad, key=lambda r: (-len(r["problems"]), r["f1"], r["id"]))[:n]


def markdown(report: dict, plots: list[str]) -> str:
    first = next(iter(report["systems"]))
    lines = [
        "# citeqa evaluation",
        "",
        f"{report['questions']} questions ({report['answerable']} answerable, {report['unanswerable']} "
        f"unanswerable) from `{report['set']}`, k = {report['k']}, run {report['created']}.",
        "",
        table(report, markdown=True),
        "",
        "↑ higher is better, ↓ lower is better. Retrieval figures count a passage as a hit when it holds a "
        "gold evidence quote; grounding follows ALCE (see eval/grounding.py).",
        "",
    ]
    lines += [f"- **{name}**: {s['describe']}" for name, s in report["systems"].items()]
    lines += ["", f"## Worst questions ({first})", ""]
    for r in worst(report["systems"][first]["records"]):
        answer = r["answer"] if len(r["answer"]) <= 240 else r["answer"][:240] + "…"
        lines += [f"- **{r['id']}** {r['question']}", f"  - went wrong: {'; '.join(r['problems'])}",
                  f"  - answered: {answer}"]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def plot(report: dict, out: Path) -> list[Path]:
    """Per-metric bars for every system side by side, and each system's latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(report["systems"])
    ratios = [(k, label) for k, label, _ in METRICS if not k.startswith("latency")]
    x = np.arange(len(ratios))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for i, name in enumerate(names):
        values = [report["systems"][name]["metrics"][k] or 0.0 for k, _ in ratios]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [label for _, label in ratios], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("citeqa against the baselines (false-abstention rate: lower is better)")
    bars = _save(fig, ax, out / "metrics.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    for name in names:
        ms = [r["ms"] for r in report["systems"][name]["records"]]
        ax.hist(ms, bins=30, alpha=0.6, label=f"{name} (p50 {np.percentile(ms, 50):.0f} ms)")
    ax.set_xlabel("time to answer one question (ms)")
    ax.set_ylabel("questions")
    return [bars, _save(fig, ax, out / "latency.png")]


def _save(fig, ax, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(report: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(report, out)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(markdown(report, [str(p) for p in plots]), encoding="utf-8")
    return [out / "report.json", out / "report.md", *plots]
