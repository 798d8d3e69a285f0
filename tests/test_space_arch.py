"""nas.space.arch: the JSON form of an architecture is read strictly (every number a finite value of its kind)."""
import json
import re

import pytest

from conftest import run_cli
from nas import Architecture, NasError, load_space


def _json(**changes):
    data = json.loads(load_space("mobilenet-c10").sample_many(1, seed=0)[0].to_json())
    for key, value in changes.items():
        if key in ("resolution", "space"):
            data[key] = value
        elif key == "width":
            data["stages"][1]["width"] = value
        else:
            data["stages"][1]["blocks"][0][key] = value
    return json.dumps(data)  # NaN and Infinity are written as JSON's non-standard literals, which json.loads reads


@pytest.mark.parametrize("key, value, problem", [
    ("resolution", float("nan"), "'resolution' must be a finite whole number, got nan"),
    ("resolution", float("inf"), "'resolution' must be a finite whole number, got inf"),
    ("resolution", 32.9, "'resolution' must be a finite whole number, got 32.9"),
    ("resolution", "32", "'resolution' must be a whole number, got '32'"),
    ("resolution", True, "'resolution' must be a whole number, got True"),
    ("width", 24.5, "stages[1]: 'width' must be a finite whole number, got 24.5"),
    ("kernel", float("nan"), "stages[1] block 0: 'kernel' must be a finite whole number, got nan"),
    ("wbits", 8.5, "stages[1] block 0: 'wbits' must be a finite whole number, got 8.5"),
    ("expand", float("inf"), "stages[1] block 0: 'expand' must be a finite positive number, got inf"),
    ("se", 1, "stages[1] block 0: 'se' must be true or false, got 1"),
    ("act", ["relu"], "stages[1] block 0: 'act' must be a string, got ['relu']"),
])
def test_item16_non_integer_and_non_finite_json_numbers_are_errors_naming_the_key(key, value, problem):
    text = _json(**{key: value})
    with pytest.raises(NasError, match="^architecture JSON: " + re.escape(problem)):
        Architecture.from_json(text)
    with pytest.raises(NasError, match=f"'{key}' must be"):
        load_space("mobilenet-c10").parse(text)


def test_item16_the_cli_says_one_line_for_a_nan_resolution(capsys):
    rc, _, err = run_cli(capsys, "arch", "info", "--space", "mobilenet-c10", _json(resolution=float("nan")))
    assert rc == 2 and "'resolution' must be a finite whole number, got nan" in err and err.count("\n") == 1


def test_whole_floats_read_as_integers():
    arch = Architecture.from_json(_json(resolution=32.0, wbits=8.0, width=24.0))
    assert arch.resolution == 32 and type(arch.resolution) is int and type(arch.stages[1].width) is int
    assert type(arch.stages[1].blocks[0].wbits) is int
    assert load_space("mobilenet-c10").parse(arch.to_json()) == arch


@pytest.mark.parametrize("e", [float("nan"), float("inf")])
def test_item16_a_non_finite_expansion_in_an_apq_spec_is_an_error(e):
    space = load_space("apq")
    spec = json.loads(space.to_native(space.sample_many(1, seed=0)[0]))
    spec["e"][0] = e
    with pytest.raises(NasError, match=r"APQ spec: e\[0\] = (nan|inf) is not a finite number"):
        space.parse(json.dumps(spec))
