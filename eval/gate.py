"""The quality gate: floors (and ceilings) from eval/thresholds.toml, checked against a run's figures."""

from __future__ import annotations

import tomllib
from pathlib import Path

from citeqa.index.errors import InvalidInput

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.toml")


def load(path: Path = DEFAULT_THRESHOLDS) -> dict[str, dict[str, float]]:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"--check: cannot read thresholds from {path} ({exc})") from exc
    unknown = set(raw) - {"floors", "ceilings"}
    if unknown:
        raise InvalidInput(f"--check: {path} has unknown tables {sorted(unknown)}; "
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
