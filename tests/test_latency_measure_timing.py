"""The timing protocol (nas.latency.measure.timing): paired ratios, values from them."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency.measure.timing import (Measured, measure_onnx, measure_paired, overhead_timer, reference_timer,
                                        summarize, value)


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


def test_item14_nonpositive_measurement_is_remeasured_then_recorded_failed(tmp_path):
    """A network as fast as the per-call overhead (the overhead model itself, 16 times) comes out at or below it
    most of the time: it is measured again, and a value that stays there is NaN with its reason, never 0 ms."""
    overhead_timer(tmp_path, 1)  # writes overhead.onnx: a 1-element Identity
    m = measure_onnx([(tmp_path / "overhead.onnx", (1,))] * 16, threads=1, rounds=2, warmup=1, repeats=4,
                     progress=False)
    assert len(m.values) == len(m.failures) == 16
    for (ms, iqr), why in zip(m.values, m.failures):
        assert ms != 0.0
        if why is None:
            assert ms > 0 and math.isfinite(iqr)
        else:
            assert math.isnan(ms) and math.isnan(iqr) and "again when re-measured" in why and "not 0" in why
    assert m.remeasured and all(m.values[i][0] > 0 for i in range(16) if i not in m.remeasured)
    assert not any(m.failures[i] for i in range(16) if i not in m.remeasured)
