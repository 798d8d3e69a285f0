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

