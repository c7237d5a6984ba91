"""Percentiles, slopes and --steps parsing of the density benchmark."""

from __future__ import annotations

import pytest

from containervps.bench.stats import linear_fit, percentile, summary
from containervps.bench.steps import parse_steps
from containervps.errors import InvalidInput


def test_percentile_interpolates() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0


def test_summary_has_the_reported_quantiles() -> None:
    out = summary([1.0, 2.0, 3.0])
    assert out["n"] == 3 and out["p50"] == 2.0 and out["min"] == 1.0 and out["max"] == 3.0


def test_linear_fit_recovers_a_line() -> None:
    fit = linear_fit([0, 10, 20, 30], [500, 630, 760, 890])
    assert fit is not None
    assert fit.slope == pytest.approx(13.0)
    assert fit.intercept == pytest.approx(500.0)
    assert fit.r2 == pytest.approx(1.0)


def test_linear_fit_needs_two_distinct_x() -> None:
    assert linear_fit([5, 5], [1, 2]) is None
    assert linear_fit([1, 2], [1, 2]) is not None


def test_parse_steps_for_all_and_per_kind() -> None:
    assert parse_steps(["50,10,25", "vm=4,1,2"]) == {"*": [10, 25, 50], "vm": [1, 2, 4]}


@pytest.mark.parametrize("value", ["kvm=1", "1,x", "0,3", "vm="])
def test_parse_steps_rejects_nonsense(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_steps([value])
