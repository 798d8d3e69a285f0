"""YAML search spaces - a user file loads; mistakes name the file, the key and the fix."""
import random

import pytest

from nas import NasError, list_spaces, load_space
from nas.space import load_space_file

SPACES = list_spaces()


BASE_YAML = """
name: tiny
input: {resolution: 32}
num_classes: 10
block: {kernel: [3, 5], expand: [1, 6]}
stem: [{op: conv, kernel: 3, stride: 1, width: 16, act: relu}]
stages:
  - {width: [16, 24], depth: [1, 2], stride: 2}
head: [{op: conv, kernel: 1, width: 64, act: relu}, {op: pool}, {op: linear}]
"""


def _write(tmp_path, text):
    p = tmp_path / "tiny.yaml"
    p.write_text(text)
    return p


def test_user_yaml_space_loads_and_counts(tmp_path):
    space = load_space_file(_write(tmp_path, BASE_YAML))
    # 2 widths x (4 blocks + 4^2 blocks)
    assert space.count() == 2 * (4 + 16)
    arch = space.random(random.Random(0))
    assert load_space(str(tmp_path / "tiny.yaml")).parse(space.format(arch)) == arch


@pytest.mark.parametrize("change, message", [
    (("block: {kernel: [3, 5]", "block: {kernel: [3, 5"), "malformed YAML at line"),
    (("num_classes: 10", "num_classes: 10\nnum_clases: 10"), "unknown key 'num_clases'.*did you mean 'num_classes'"),
    (("kernel: [3, 5]", "kernel: []"), "block.kernel: empty choice list"),
    (("stride: 2}", "stride: 3}"), r"stages\[0\].stride: invalid value 3"),
    (("width: [16, 24]", "width: [16, -24]"), r"stages\[0\].width: invalid value -24"),
    (("kernel: [3, 5]", "kernel: [3, 4]"), r"block.kernel: invalid value 4"),
    (("block: {kernel: [3, 5], expand: [1, 6]}", "block: {kernel: 3, expand: 1, groups: 3}"), "groups=3 does not divide"),
    (("resolution: 32", "resolution: 1"), "smaller than the total stride"),
    (("{op: linear}", "{op: linear, width: 7}"), "num_classes is 10"),
])
def test_bad_yaml_names_file_key_and_fix(tmp_path, change, message):
    path = _write(tmp_path, BASE_YAML.replace(*change))
    with pytest.raises(NasError, match=message) as info:
        load_space_file(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)



@pytest.mark.parametrize("change, message", [
    (("depth: [1, 2]", "depth: [1, 100000]"), r"stages\[0\].depth: 100000 is above the limit of 64 blocks per stage"),
    (("width: [16, 24]", "width: [16, 10000000]"), r"stages\[0\].width: 10000000 is above the limit of 16384 channels"),
    (("resolution: 32", "resolution: [32, 100000]"), r"input.resolution: 100000 is above the limit of 4096 pixels"),
    (("resolution: 32", "resolution: {min: 32, max: 100000, step: 4}"),
     r"input.resolution.max: 100000 is above the limit of 4096 pixels"),
    (("resolution: 32", "resolution: 32, channels: 5000"), r"input.channels: 5000 is above the limit of 1024 channels"),
    (("num_classes: 10", "num_classes: 10000000"), r"num_classes: 10000000 is above the limit of 1000000 classes"),
    (("kernel: [3, 5]", "kernel: [3, 101]"), r"block.kernel: 101 is above the limit of 31"),
    (("expand: [1, 6]", "expand: [1, 1000.5]"), r"block.expand: 1000.5 is above the limit of 64"),
    (("width: 64, act", "width: 99999999, act"), r"head\[0\].width: 99999999 is above the limit of 16384 channels"),
])
def test_item16_values_beyond_sane_bounds_name_file_key_and_limit(tmp_path, change, message):
    path = _write(tmp_path, BASE_YAML.replace(*change))
    with pytest.raises(NasError, match=message) as info:
        load_space_file(path)
    assert str(info.value).startswith(f"{path}: ") and "(fix: " in str(info.value)


def test_item16_more_stages_than_the_limit_is_an_error(tmp_path):
    text = BASE_YAML.replace("  - {width: [16, 24], depth: [1, 2], stride: 2}\n",
                             "  - {width: 16, depth: 1, stride: 1}\n" * 65)
    with pytest.raises(NasError, match=r"tiny.yaml: stages: 65 stages are above the limit of 64"):
        load_space_file(_write(tmp_path, text))


def test_item16_the_largest_space_within_the_bounds_is_shown(tmp_path, capsys):
    """`nas spaces show` on the deepest space the bounds allow (64 stages of 64 blocks of 36 choices: ~10^6375
    architectures, beyond Python's 4,300-digit int-to-text limit) prints its size as a power of ten."""
    from conftest import run_cli

    text = BASE_YAML.replace("block: {kernel: [3, 5], expand: [1, 6]}",
                             "block: {kernel: [3, 5, 7], expand: [1, 2, 3, 4, 5, 6], se: [false, true]}")
    text = text.replace("  - {width: [16, 24], depth: [1, 2], stride: 2}\n",
                        "  - {width: 16, depth: [1, 64], stride: 1}\n" * 64)
    rc, out, err = run_cli(capsys, "spaces", "show", _write(tmp_path, text))
    assert rc == 0, err
    assert "distinct architectures: 10^6374.62" in out
