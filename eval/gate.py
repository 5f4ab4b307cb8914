"""The quality gate: each set's floors and ceilings (eval/sets/<name>/thresholds.toml), and the
baseline citeqa must not fall behind, checked against a run's figures."""

from __future__ import annotations

import tomllib
from pathlib import Path

from citeqa.index.errors import InvalidInput

# citeqa must be at least as good as LangChain's default pipeline on these, on every collection.
VERSUS = ("hit_at_5", "key_fact_recall")


def load(path: Path) -> dict[str, dict[str, float]]:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"--thresholds: cannot read thresholds from {path} ({exc})") from exc
    unknown = set(raw) - {"floors", "ceilings"}
    if unknown:
        raise InvalidInput(f"--thresholds: {path} has unknown tables {sorted(unknown)}; "
                           "use [floors] and [ceilings]")
    return {"floors": raw.get("floors", {}), "ceilings": raw.get("ceilings", {})}


def check(metrics: dict[str, float | None], thresholds: dict[str, dict[str, float]]) -> list[str]:
    """One line per figure that misses its threshold; empty when the run passes."""
    failures = []
    for kind, worse in (("floors", "below"), ("ceilings", "above")):
        for key, limit in thresholds.get(kind, {}).items():
            if key not in metrics:
                failures.append(f"{key}: not a metric of this report (check {kind} in the thresholds file)")
                continue
            value = metrics[key]
            missed = value is None or (value < limit if kind == "floors" else value > limit)
            if missed:
                failures.append(f"{key}: {value} is {worse} its {kind[:-1]} {limit}")
    return failures


def versus(metrics: dict[str, float | None], baseline: dict[str, float | None], name: str,
           keys: tuple[str, ...] = VERSUS) -> list[str]:
    """One line per figure where citeqa falls behind the baseline `name`."""
    return [f"{key}: {metrics[key]} is below {name}'s {baseline[key]}" for key in keys
            if metrics.get(key) is None or (baseline.get(key) is not None and metrics[key] < baseline[key])]
