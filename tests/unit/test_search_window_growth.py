"""SpatiaLite's nearest-first windows widen by how many rows the last one held."""

from __future__ import annotations

import math

import pytest

from referral_net.domain.search.bound import _growth


def test_an_empty_window_widens_the_most() -> None:
    assert _growth(found=0, wanted=10) == 4.0


@pytest.mark.parametrize("found", range(1, 10))
def test_growth_covers_the_missing_area_with_a_margin_within_bounds(found: int) -> None:
    growth = _growth(found=found, wanted=10)
    assert 1.5 <= growth <= 4.0
    # Where the density is even, the widened window's area holds at least the rows wanted.
    assert found * growth**2 >= 10 or growth == 4.0
    assert growth == pytest.approx(min(4.0, max(1.5, 1.25 * math.sqrt(10 / found))))


def test_fewer_rows_found_never_widens_less() -> None:
    steps = [_growth(found=n, wanted=10) for n in range(0, 10)]
    assert steps == sorted(steps, reverse=True)
