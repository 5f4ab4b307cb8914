"""Hostile inputs are parsed and cut in time linear in their size: four times the bytes costs about four
times the seconds, never sixteen (a quadratic step). The bound is loose: it catches that, not a slow day."""

import time

import pytest

from citeqa.bench.shapes import SHAPES, ingest, make, seconds_per_mb


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_hostile_shape_costs_time_linear_in_its_size(shape):
    small, large = _measure(shape)
    assert large <= 2.5 * small + 0.3, f"{shape}: {small:.3f} s/MB at 50 kB, {large:.3f} s/MB at 200 kB"


def _measure(shape: str) -> tuple[float, float]:
    out = []
    for size in (50_000, 200_000):
        name, data = make(shape, size)
        began = time.perf_counter()
        ingest(name, data)
        out.append((time.perf_counter() - began) / (len(data) / 1e6))
    return out[0], out[1]


def test_too_deep_or_textless_markup_is_refused_and_the_rest_are_cut_into_units():
    outcomes = {r["shape"]: r["outcome"] for r in seconds_per_mb((50_000,))}
    refused = {"nested divs (.html)", "unclosed attributes (.html)"}  # too deep; all inside one attribute
    assert all(outcomes[s] == "refused (invalid_input)" for s in refused), outcomes
    assert all(o.endswith(" units") for s, o in outcomes.items() if s not in refused), outcomes
