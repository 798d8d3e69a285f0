"""The named baselines (nas.space.baselines): each is the published network in mobilenet-c10's CIFAR layout.

The expected figures are checked two ways: against a table written here, and against a small reimplementation
of the reference code (torchvision's mobilenetv2.py / mobilenetv3.py structure, written out in this file without
any of nas), which must also reproduce torchvision's published ImageNet parameter counts.
"""
import numpy as np
import pytest
import torch
from torch import nn

from nas import NasError
from nas.layers import count, plan
from nas.nn.build import build_model
from nas.nn.onnx import export_onnx, ort_session, run_onnx
from nas.space import Architecture, baseline, list_baselines, load_space

NAMES = ["mobilenetv2-0.35", "mobilenetv2-0.5", "mobilenetv2-0.75", "mobilenetv2-1.0", "mobilenetv3-small",
         "mobilenetv3-large"]

# name: (convs, params, MACs, activation functions by kind, largest feature map in elements) at 32 px, 10 classes.
# convs count every Conv2d (squeeze-excite's two 1x1 convs included); MACs count convs and linears.
EXPECTED = {
    "mobilenetv2-0.35": (52, 408_938, 15_611_136, {"ReLU6": 35}, 49_152),
    "mobilenetv2-0.5": (52, 700_490, 27_969_024, {"ReLU6": 35}, 98_304),
    "mobilenetv2-0.75": (52, 1_368_234, 59_310_080, {"ReLU6": 35}, 147_456),
    "mobilenetv2-1.0": (52, 2_236_682, 87_976_448, {"ReLU6": 35}, 147_456),
    "mobilenetv3-small": (52, 1_528_106, 17_507_328, {"ReLU": 14, "Hardswish": 19, "Hardsigmoid": 9}, 73_728),
    "mobilenetv3-large": (62, 4_214_842, 66_459_008, {"ReLU": 19, "Hardswish": 21, "Hardsigmoid": 8}, 73_728),
}


# --------------------------------------------------------------------------------------------------------
# an independent reimplementation of the reference networks
# --------------------------------------------------------------------------------------------------------
def divisible(v: float, d: int = 8) -> int:
    """torchvision's _make_divisible (from tensorflow/models slim): nearest multiple of d, never 10 % below."""
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def conv_bn_act(cin, cout, k, stride=1, groups=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        s = divisible(c // 4)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, s, 1), nn.ReLU(), nn.Conv2d(s, c, 1),
                                nn.Hardsigmoid())

    def forward(self, x):
        return x * self.fc(x)


class Bottleneck(nn.Module):
    def __init__(self, cin, k, mid, cout, se, act, stride):
        super().__init__()
        parts = [conv_bn_act(cin, mid, 1, act=act)] if mid != cin else []
        parts += [conv_bn_act(mid, mid, k, stride, groups=mid, act=act)]
        parts += [SqueezeExcite(mid)] if se else []
        parts += [conv_bn_act(mid, cout, 1)]
        self.body, self.residual = nn.Sequential(*parts), stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def cifar(strides):
    """The CIFAR layout: the first two stride-2 layers (stem included) run at stride 1."""
    out, left = [], 2
    for s in strides:
        out.append(1 if s == 2 and left else s)
        left -= s == 2 and left > 0
    return out


V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
# torchvision _mobilenet_v3_conf / Howard et al. Tables 1, 2: input, kernel, expanded, output, SE, h-swish, stride
V3_LARGE = [(16, 3, 16, 16, 0, 0, 1), (16, 3, 64, 24, 0, 0, 2), (24, 3, 72, 24, 0, 0, 1), (24, 5, 72, 40, 1, 0, 2),
            (40, 5, 120, 40, 1, 0, 1), (40, 5, 120, 40, 1, 0, 1), (40, 3, 240, 80, 0, 1, 2), (80, 3, 200, 80, 0, 1, 1),
            (80, 3, 184, 80, 0, 1, 1), (80, 3, 184, 80, 0, 1, 1), (80, 3, 480, 112, 1, 1, 1),
            (112, 3, 672, 112, 1, 1, 1), (112, 5, 672, 160, 1, 1, 2), (160, 5, 960, 160, 1, 1, 1),
            (160, 5, 960, 160, 1, 1, 1)]
V3_SMALL = [(16, 3, 16, 16, 1, 0, 2), (16, 3, 72, 24, 0, 0, 2), (24, 3, 88, 24, 0, 0, 1), (24, 5, 96, 40, 1, 1, 2),
            (40, 5, 240, 40, 1, 1, 1), (40, 5, 240, 40, 1, 1, 1), (40, 5, 120, 48, 1, 1, 1), (48, 5, 144, 48, 1, 1, 1),
            (48, 5, 288, 96, 1, 1, 2), (96, 5, 576, 96, 1, 1, 1), (96, 5, 576, 96, 1, 1, 1)]


def reference_v2(width, classes, layout):
    strides = [2] + [s for _, _, n, s in V2 for s in [s] + [1] * (n - 1)]
    strides = iter(cifar(strides) if layout == "cifar" else strides)
    c = divisible(32 * width)
    layers = [conv_bn_act(3, c, 3, next(strides), act=nn.ReLU6)]
    for t, out, n, _ in V2:
        for _ in range(n):
            layers.append(Bottleneck(c, 3, int(round(c * t)), divisible(out * width), False, nn.ReLU6, next(strides)))
            c = divisible(out * width)
    last = divisible(1280 * max(1.0, width))
    return nn.Sequential(*layers, conv_bn_act(c, last, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(last, classes))


def reference_v3(table, last_channel, classes, layout):
    strides = [2] + [row[-1] for row in table]
    strides = iter(cifar(strides) if layout == "cifar" else strides)
    layers = [conv_bn_act(3, 16, 3, next(strides), act=nn.Hardswish)]
    for cin, k, mid, cout, se, hs, _ in table:
        layers.append(Bottleneck(cin, k, mid, cout, se, nn.Hardswish if hs else nn.ReLU, next(strides)))
    c = table[-1][3]
    return nn.Sequential(*layers, conv_bn_act(c, 6 * c, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6 * c, last_channel), nn.Hardswish(), nn.Linear(last_channel, classes))


def reference(name, classes=10, layout="cifar"):
    if name.startswith("mobilenetv2"):
        return reference_v2(float(name.split("-")[1]), classes, layout)
    table, last = (V3_SMALL, 1024) if name == "mobilenetv3-small" else (V3_LARGE, 1280)
    return reference_v3(table, last, classes, layout)


def measure(model, resolution=32):
    """(convs, params, MACs, activation functions by kind, largest conv output) of a model, from its modules and
    a forward pass's real shapes."""
    macs, largest, kinds = 0, 0, {}

    def hook(mod, _inp, out):
        nonlocal macs, largest
        if isinstance(mod, nn.Conv2d):
            macs += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            largest = max(largest, out.numel())
        else:
            macs += mod.in_features * mod.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid)):
            kinds[type(m).__name__] = kinds.get(type(m).__name__, 0) + 1
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    return convs, sum(p.numel() for p in model.parameters()), macs, kinds, largest


# --------------------------------------------------------------------------------------------------------
# the reimplementation is the published network
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, params, mmacs", [("mobilenetv2-1.0", 3_504_872, 300), ("mobilenetv3-large", 5_483_032, 217),
                                                 ("mobilenetv3-small", 2_542_856, 56)])
def test_reference_reproduces_the_published_imagenet_networks(name, params, mmacs):
    """torchvision's num_params at 224 px, 1000 classes; MACs within 2 % of the papers' (V2: 300 M, V3-Large:
    217 M as TF's checkpoint table, V3-Small: 56 M)."""
    convs, got_params, macs, _, _ = measure(reference(name, classes=1000, layout="imagenet"), resolution=224)
    assert got_params == params
    assert abs(macs / 1e6 - mmacs) / mmacs < 0.02, macs


def test_cifar_layout_halves_the_first_two_stride_2_layers_only():
    assert cifar([2, 1, 2, 2, 2, 1, 2, 1]) == [1, 1, 1, 2, 2, 1, 2, 1]
    assert cifar([2, 2, 2, 1, 2]) == [1, 1, 2, 1, 2]


@pytest.mark.parametrize("name", NAMES)
def test_reference_gives_the_table(name):
    assert measure(reference(name)) == EXPECTED[name]


# --------------------------------------------------------------------------------------------------------
# the baselines
# --------------------------------------------------------------------------------------------------------
def test_registry_names_and_order():
    assert [b.name for b in list_baselines()] == NAMES
    assert baseline("MobileNetV2-0.5") is baseline("mobilenetv2-0.5")
    with pytest.raises(NasError, match="unknown baseline 'mobilenetv2-0.6' \\(did you mean 'mobilenetv2-0.5'") as exc:
        baseline("mobilenetv2-0.6")
    assert exc.value.argument == "name" and "nas arch list" in exc.value.fix


@pytest.mark.parametrize("name", NAMES)
def test_baseline_builds_and_matches_the_table(name):
    b = baseline(name)
    space = load_space(b.space)
    assert measure(build_model(b.arch, space)) == EXPECTED[name]
    cost = count(b.arch, space)
    assert (cost.params, cost.macs) == EXPECTED[name][1:3]


@pytest.mark.parametrize("name", NAMES)
def test_baseline_round_trips_and_parses_by_name(name):
    b = baseline(name)
    space = load_space(b.space)
    text = space.format(b.arch)
    assert space.parse(text) == b.arch and space.format(space.parse(text)) == text
    assert space.parse(b.arch.to_json()) == b.arch and Architecture.from_json(b.arch.to_json()) == b.arch
    assert space.parse(name) == b.arch and space.parse(f"  {name.upper()} ") == b.arch
    if b.space != "mobilenet-c10":  # a space of its own holds exactly the baseline
        assert space.count() == 1 and space.sample_many(1)[0] == b.arch


@pytest.mark.parametrize("name", NAMES)
def test_baseline_exports_to_onnx_at_32_px(name):
    b = baseline(name)
    model = build_model(b.arch, load_space(b.space))
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_onnx(ort_session(export_onnx(model)), x.numpy())
    assert got.shape == (1, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_mobilenetv2_widths_follow_the_reference_rounding():
    for name in NAMES[:4]:
        width = float(name.split("-")[1])
        space = load_space(baseline(name).space)
        assert [st.width for st in baseline(name).arch.stages] == [divisible(c * width) for _, c, _, _ in V2]
        assert space.stem[0].width == divisible(32 * width) and space.head[0].width == 1280
    assert [st.width for st in baseline("mobilenetv2-0.35").arch.stages] == [8, 8, 16, 24, 32, 56, 112]


def test_mobilenetv3_expansions_are_the_published_channel_counts():
    for name, table in (("mobilenetv3-small", V3_SMALL), ("mobilenetv3-large", V3_LARGE)):
        b = baseline(name)
        blocks = [l for l in plan(b.arch, load_space(b.space)) if l.op == "ir"]
        assert [(l.cin, l.kernel, l.mid, l.cout, int(l.se), int(l.act == "hswish")) for l in blocks] == \
            [row[:6] for row in table]
        assert [l.stride for l in blocks] == cifar([2] + [row[-1] for row in table])[1:]


def test_a_baseline_read_in_another_space_names_its_own():
    with pytest.raises(NasError, match="baseline 'mobilenetv3-small' is an architecture of space "
                                       "'mobilenetv3-small-c10', not of 'mobilenet-c10'") as exc:
        load_space("mobilenet-c10").parse("mobilenetv3-small")
    assert exc.value.fix.startswith("use space mobilenetv3-small-c10")
    with pytest.raises(NasError, match="unknown baseline 'mobilenetv2-2.0'"):
        load_space("mobilenet-c10").parse("mobilenetv2-2.0")
