"""train:E: a real, deterministic training loop that learns (digits, tiny budget)."""
import pytest

from nas.nn.build import build_model
from nas.space import load_space
from nas.data.train import evaluate, split_indices, train


TINY = """\
name: tiny-train
description: Small space for training tests.
input: {resolution: 8, channels: 1}
num_classes: 10
block: {op: ir, kernel: 3, expand: [1, 2], act: relu}
stem:
  - {op: conv, kernel: 3, stride: 1, width: 8, act: relu}
stages:
  - {width: 16, depth: 1, stride: 2}
head:
  - {op: pool}
  - {op: linear}
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    p = tmp_path_factory.mktemp("spaces") / "tiny_train.yaml"
    p.write_text(TINY)
    return load_space(p)


def test_train_learns_and_is_deterministic(space):
    arch = space.parse("ir_e2")
    untrained = evaluate(build_model(arch, space, seed=0), "digits", split="train")
    r1 = train(build_model(arch, space, seed=0), epochs=3, data="digits", n_train=800, n_val=300, batch_size=32)
    r2 = train(build_model(arch, space, seed=0), epochs=3, data="digits", n_train=800, n_val=300, batch_size=32)
    assert r1["accuracy"] == r2["accuracy"] and r1["loss"] == r2["loss"]
    assert r1["accuracy"] > max(0.4, untrained + 0.2)
    assert r1["n_train"] == 800 and r1["n_val"] == 287 and r1["steps"] == 3 * 25  # n_val capped at 1/5 of 1437


def test_validation_is_held_out():
    tr, val = split_indices(100, 20, seed=0)
    assert len(set(tr) & set(val)) == 0 and len(tr) == 80 and len(val) == 20
