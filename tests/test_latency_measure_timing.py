"""The timing protocol (nas.latency.measure.timing): paired ratios, values from them."""
from __future__ import annotations

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency.measure.timing import Measured, measure_paired, overhead_timer, reference_timer, summarize, value


def test_paired_ratios_cancel_the_machine_speed(tmp_path):
    """The reference timed against itself is a ratio of ~1; the overhead model's ratio is far below 1."""
    ref = reference_timer(tmp_path, 1)
    paired = measure_paired([overhead_timer(tmp_path, 1), ref], ref, warmup=2, repeats=15, rounds=2)
    assert len(paired.reference) == 60 and all(len(r) == 30 for r in paired.ratios)
    assert 0.7 < float(np.median(paired.ratios[1])) < 1.4
    assert float(np.median(paired.ratios[0])) < 0.2


def test_values_from_ratios_are_not_clamped():
    ratios = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert value(ratios) == pytest.approx(0.3) and value(ratios, "min") == pytest.approx(0.1)
    ms, iqr, n = summarize(ratios, 0.1, 2.0)
    assert (ms, iqr, n) == (pytest.approx(0.4), pytest.approx(0.4), 5)
    assert summarize(ratios, 0.35, 2.0)[0] == pytest.approx(-0.1)  # the caller decides what a non-positive means
    with pytest.raises(NasError, match="unknown statistic 'p99'") as exc:
        value(ratios, "p99")
    assert exc.value.argument == "stat"


def test_measured_speed_note():
    m = Measured([(1.0, 0.1)], reference_ms=0.1, session_reference_ms=0.15)
    assert m.slowdown == pytest.approx(1.5) and "1.50x slower than" in m.speed_note()
    assert "as fast as" in Measured([], 0.1, 0.1005).speed_note()
