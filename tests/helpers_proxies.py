"""What the tests/test_proxies_* files share (no tests of its own): a tiny quantizable space, a network with
all-ones weights, a Probe on a given batch, and a small ensemble reference sample."""
import math

import pytest
import torch
from torch import nn

import nas.nn.build
from nas.proxies.registry import Inputs, Probe
from nas.space import load_space


TINY_YAML = """\
name: tiny
description: Tiny space for proxy tests.
input: {resolution: 4, channels: 1}
num_classes: 2
block: {op: ir, kernel: 3, expand: [1, 2], act: [relu, hswish], wbits: [4, 8, 32], abits: [8, 32]}
stem:
  - {op: conv, kernel: 1, stride: 1, width: 2, act: relu}
stages:
  - {width: 3, depth: 1, stride: 1}
head:
  - {op: pool}
  - {op: linear}
"""
FLOAT = "ir_e1_relu_w32_a32"
BN = 1 / math.sqrt(1 + 1e-5)  # eval-mode BatchNorm of a fresh network: x / sqrt(1 + eps)


@pytest.fixture(autouse=True)
def small_reference(monkeypatch):
    """The ensemble's reference sample: 8 architectures instead of 32 keeps these tests fast."""
    import nas.proxies.scorer

    monkeypatch.setattr(nas.proxies.scorer, "REFERENCE_SIZE", 8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("spaces") / "tiny.yaml"
    path.write_text(TINY_YAML)
    return load_space(path)


@pytest.fixture
def ones_model(monkeypatch):
    """Every network built is the tiny one with all conv/linear weights set to 1."""
    real = nas.nn.build.build_model

    def build(arch, space=None, *, seed=0):
        m = real(arch, space, seed=seed)
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    mod.weight.fill_(1.0)
        return m

    monkeypatch.setattr(nas.nn.build, "build_model", build)


def probe_for(space, text, batch=None, *, batch_size=None, data="digits", seed=0):
    inputs = Inputs(space, data, seed)
    arch = space.parse(text)
    if batch is not None:
        inputs._cache[("data", len(batch[0]), arch.resolution)] = batch
        batch_size = len(batch[0])
    return Probe(arch, space, inputs, seed=seed, batch_size=batch_size)
