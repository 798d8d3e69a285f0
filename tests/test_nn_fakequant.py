"""Fake quantization: hand-computed rounding, STE gradient, and what it does to a built network."""
import torch

from nas.nn import fakequant as quant
from nas.nn.build import build_model
from nas.space import load_space


SPACE = load_space("mobilenet-c10")


def test_weight_per_channel_symmetric_by_hand():
    w = torch.tensor([[1.0, 0.52, -0.26], [0.09, -0.2, 0.05]])
    q = quant.quantize_weight(w, 4)  # 7 levels each side, scale = max|w| / 7 per row
    expected = torch.tensor([[1.0, 4 / 7, -2 / 7], [0.2 * 3 / 7, -0.2, 0.2 * 2 / 7]])
    assert torch.allclose(q, expected, atol=1e-7)
    assert torch.equal(quant.quantize_weight(w, 32), w)
    assert (quant.quantize_weight(w, 8) - w).abs().max() <= 1.0 / 127 / 2 + 1e-7


def test_activation_unsigned_and_asymmetric_ranges_and_ste():
    x = torch.linspace(0, 1, 1001, requires_grad=True)
    q = quant.quantize_activation(x, 8)
    assert torch.allclose(q * 255, torch.round(q.detach() * 255), atol=1e-4)  # multiples of 1/255
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # straight-through
    # h-swish-like tensor with a small negative lobe: the range [min, max] is asymmetric, zero stays exact
    y = torch.tensor([-0.375, 0.0, 1.0, 6.0])
    qy = quant.quantize_activation(y, 8)
    assert qy[1] == 0 and (qy - y).abs().max() <= 6.375 / 255 / 2 + 1e-6


def _arch(bits_w, bits_a):
    text = "/".join(["ir_k3_se0_relu6_w{w}_a{a}"] + ["c16:ir_k3_e6_se0_relu6_w{w}_a{a}"]
                    + ["c32:" + "-".join(["ir_k3_e6_se0_relu6_w{w}_a{a}"] * 2)]
                    + ["c64:" + "-".join(["ir_k3_e6_se0_relu6_w{w}_a{a}"] * 2)]
                    + ["c96:" + "-".join(["ir_k3_e6_se0_relu6_w{w}_a{a}"] * 2)]
                    + ["c160:" + "-".join(["ir_k3_e6_se0_relu6_w{w}_a{a}"] * 2)] + ["c160:ir_k3_e6_se0_relu6_w{w}_a{a}"])
    return SPACE.parse(text.format(w=bits_w, a=bits_a))


def test_apply_changes_quantized_layers_only_and_error_grows_with_fewer_bits():
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = build_model(_arch(32, 32), SPACE, seed=0)
    assert len(quant.apply(ref)) == 3  # float blocks: no hooks; the space's stem conv, head conv, linear are a8
    sqnr = {}
    for w, a in ((8, 32), (4, 32), (8, 8), (4, 8)):
        m = build_model(_arch(w, a), SPACE, seed=0)
        m.load_state_dict(build_model(_arch(32, 32), SPACE, seed=0).state_dict())
        float_m = build_model(_arch(32, 32), SPACE, seed=0)
        handles = quant.apply(m)
        assert (len(handles) > 3) == (a < 32)
        sqnr[(w, a)] = quant.output_sqnr(float_m, m, x)
    assert sqnr[(8, 32)] > sqnr[(4, 32)] and sqnr[(8, 32)] > sqnr[(4, 8)]
    assert all(v < float("inf") for v in sqnr.values())


def test_depthwise_conv_takes_the_blocks_depthwise_bits():
    """Per-role bits (apq space): the depth-wise conv at dw_wbits, the point-wise convs at wbits."""
    import json

    from nas.nn import fakequant
    from nas.nn.build import build_model
    from nas.space import load_space

    space = load_space("apq")
    spec = json.loads(space.to_native(space.sample_many(1, seed=0)[0]))
    spec.update(pw_w_bits_setting=[4] * 21, dw_w_bits_setting=[8] * 21)
    arch = space.parse(json.dumps(spec))
    model = build_model(arch, space, seed=0)
    fakequant.apply(model, activations=False)
    block = model.layers[2]  # stage 1, first searchable MBConv
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    levels = [len(torch.unique(c.weight[0])) for c in convs]  # distinct weights of one output channel
    depthwise = [c.groups == c.in_channels for c in convs]
    assert depthwise == [False, True, False]
    assert max(levels[0], levels[2]) <= 15  # 4-bit: at most 15 symmetric levels
    assert levels[1] > 7  # 8-bit depth-wise (k x k = 9+ weights keep distinct values)


def test_training_weights_round_exactly_as_deployed_and_pass_gradients():
    torch.manual_seed(0)
    for shape in [(16, 8, 1, 1), (24, 1, 5, 5), (10, 40)]:
        w = (torch.randn(shape) * 0.2).requires_grad_()
        for bits in (4, 6, 8):
            q = quant.fake_quantize_weight(w, bits)
            assert torch.equal(q.detach(), quant.quantize_weight(w.detach(), bits))  # the quantizer's grid
        w.grad = None
        quant.fake_quantize_weight(w, 4).sum().backward()
        assert torch.equal(w.grad, torch.ones_like(w))  # straight-through


def test_quant_aware_computes_the_fake_quantized_network_and_detaches_cleanly():
    """Attached: the network computes what ``apply`` makes of a copy (weights and inputs per role); detached: the
    float network again, same parameters and state-dict keys (so the optimiser and the export see no change)."""
    import copy
    import dataclasses

    arch = SPACE.sample_many(1, seed=5)[0]
    model = build_model(arch, SPACE, seed=0).train()  # batch statistics: outputs of a realistic scale
    specs = [dataclasses.replace(s, dw_wbits=4) if s.op == "ir" else s for s in model.specs]  # per role
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        float_out = model(x)
        reference = copy.deepcopy(model)
        reference.specs = specs
        quant.apply(reference)
        want = reference(x)
    keys = list(model.state_dict())
    with quant.QuantAware(model, specs) as qat:
        assert qat.weight_layers > 0 and qat.activation_layers > 0
        with torch.no_grad():
            got = model(x)
        scale = want.abs().max()
        assert (got - want).abs().max() <= 1e-4 * scale and (got - float_out).abs().max() > 1e-2 * scale
        out = model(x).sum()
        out.backward()
        assert all(p.grad is not None for p in model.parameters() if p.dim() > 1)
    with torch.no_grad():
        assert torch.equal(model(x), float_out)
    assert list(model.state_dict()) == keys
