"""nas.train.qat: quantization-aware fine-tuning at the bits a network deploys at, on a tiny space (digits, 8 px):
deterministic, recorded, skipped where nothing deploys quantized, and resumed only by a run at the same bits."""
from dataclasses import replace

import pytest
import torch

from nas.data import datasets
from nas.latency.signatures import deploy
from nas.layers import plan
from nas.nn.build import build_model
from nas.train.loop import train
from nas.train.qat import quantization_aware


@pytest.fixture(scope="module")
def setup(train_space):
    arch = train_space.parse("ir_e2")
    data = datasets.load("digits", split="train", resolution=8, channels=1)
    int8 = [deploy(s, "int8") for s in plan(arch, train_space)]
    return train_space, arch, data, int8


def _trained(space, arch, data):
    model = build_model(arch, space, seed=0)
    train(model, epochs=1, data=data, n_train=128, batch_size=32)
    return model


def test_fine_tunes_at_the_given_bits_deterministically_and_records_it(setup):
    space, arch, data, int8 = setup
    opts = dict(epochs=1, lr=0.01, seed=0, n_train=64, bn_samples=32)
    a, b = _trained(space, arch, data), _trained(space, arch, data)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    ra, rb = quantization_aware(a, data, int8, **opts), quantization_aware(b, data, int8, **opts)
    assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert any(not torch.equal(v, before[k]) for k, v in a.state_dict().items())
    assert ra["epochs"] == 1 and ra["lr"] == 0.01 and ra["n_train"] == 64 and ra["steps"] == 1
    assert ra["fake_quantized"]["weights"] > 0 and ra["fake_quantized"]["inputs"] > 0
    assert ra["bn_recalibration"]["samples"] == 32 and 0 <= ra["val_accuracy_fake_quant"] <= 1
    assert ra["resumed_from_epoch"] == 0
    # the fine-tuning draws with seed + 1: another seed, other weights
    c = _trained(space, arch, data)
    quantization_aware(c, data, int8, **{**opts, "seed": 1})
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_a_network_deployed_in_float_is_left_as_it_is(setup):
    space, arch, data, int8 = setup
    model = build_model(arch, space, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = quantization_aware(model, data, [deploy(s, "fp32") for s in int8], epochs=1)
    assert record == {"epochs": 0, "skipped": "every layer deploys in float: nothing to fine-tune"}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_item9_qat_checkpoint_is_keyed_by_the_bits(setup, tmp_path):
    """Item 9: the QAT checkpoint's fingerprint (tensor shapes and recipe) was the same at every bit-width, so
    a qat.ckpt left by a w4 fine-tuning was resumed as the w8 one."""
    space, arch, data, int8 = setup
    w4 = [replace(s, wbits=4, dw_wbits=4) if s.weight_params() else s for s in int8]
    ckpt = tmp_path / "qat.ckpt"
    opts = dict(epochs=1, n_train=32, bn_samples=0, checkpoint=ckpt)
    first = build_model(arch, space, seed=0)
    quantization_aware(first, data, w4, **opts)
    assert ckpt.is_file()
    second = build_model(arch, space, seed=0)
    record = quantization_aware(second, data, int8, **opts)
    assert record["steps"] > 0 and record["resumed_from_epoch"] == 0
    assert any(not torch.equal(v, first.state_dict()[k]) for k, v in second.state_dict().items())
    again = quantization_aware(build_model(arch, space, seed=0), data, int8, **opts)
    assert again["resumed_from_epoch"] == 1  # the same bits resume it
