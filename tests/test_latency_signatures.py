"""Which layer signatures a space needs (nas.latency.signatures), and deployment dtypes."""
from __future__ import annotations

import pytest

from nas.errors import NasError
from nas.latency.signatures import arch_layers, check_dtype, space_signatures
from nas.layers import plan
from nas.space import list_spaces, load_space


@pytest.mark.parametrize("name", list_spaces())
def test_space_signatures_contain_every_planned_layer(name):
    s = load_space(name)
    sigs = space_signatures(s)
    for arch in s.sample_many(40, seed=11):
        for spec in plan(arch, s):
            assert spec.signature in sigs, (name, spec.key)


def test_dtype_rewrites_bits_of_signatures():
    s = load_space("mobilenet-c10")
    archs = s.sample_many(3, seed=2)
    for dtype, bits in (("fp32", (32, 32)), ("int8", (8, 8))):
        assert {sig[-2:] for sig in arch_layers(archs, s, dtype)} == {bits}
    assert len({sig[-2:] for sig in arch_layers(archs, s, None)}) > 1


def test_unknown_dtype_names_the_api_argument():
    assert check_dtype(None) == "arch"
    with pytest.raises(NasError, match="unknown dtype 'fp16'") as exc:
        check_dtype("fp16")
    assert exc.value.argument == "dtype" and "use one of arch, fp32, int8" in exc.value.fix
    with pytest.raises(NasError) as exc:
        check_dtype("fp16", argument="dtypes")
    assert exc.value.argument == "dtypes"
