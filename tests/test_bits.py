"""nas.bits: labels, checks and the one symmetric weight rounding (shared by scoring and deployment)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from nas.bits import Bits, check_bits, parse_label, symmetric_weights
from nas.errors import NasError


def test_labels_round_trip():
    for wbits, abits in [(32, 32), (8, 8), (4, 8), (8, 32), (32, 8), (16, 16)]:
        b = Bits(wbits, abits)
        assert parse_label(b.label) == b
    assert Bits(32, 32).label == "fp32" and Bits(8, 8).label == "int8" and Bits(4, 32).label == "w4a32"


def test_bad_bits_are_precise_errors():
    with pytest.raises(NasError, match="w2a8 cannot be deployed"):
        check_bits(2, 8)
    with pytest.raises(NasError, match="unknown precision 'int3'"):
        parse_label("int3")


def test_symmetric_weights_by_hand():
    w = np.array([[-1.0, 0.6, 0.1], [0.0, 0.0, 0.0]], dtype=np.float32)
    levels, scale = symmetric_weights(w, 4, axis=0)  # qmax 7: scale = max|w| / 7
    assert scale[0] == pytest.approx(1 / 7)
    assert levels[0].tolist() == [-7, 4, 1]  # 4.2 -> 4, 0.7 -> 1
    assert levels[1].tolist() == [0, 0, 0]


@given(st.integers(2, 16), st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=20))
def test_largest_weight_is_exact_and_levels_bounded(bits, values):
    w = np.array([values], dtype=np.float32)
    levels, scale = symmetric_weights(w, bits, axis=0)
    qmax = 2 ** (bits - 1) - 1
    assert np.abs(levels).max() <= qmax
    if np.abs(w).max() > 0:
        i = int(np.abs(w).argmax())
        assert levels[0, i] * scale[0] == pytest.approx(w[0, i], rel=1e-5)
