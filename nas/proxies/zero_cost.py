"""The training-free proxies. Each docstring says what it computes, the input, batch size and BN mode.

All are evaluated at initialisation (weights as ``build_model`` makes them under the seed) and on the
fake-quantized network when the architecture asks for fewer than 32 bits (see ``nas.nn.fakequant``). Higher is
better for every one of them.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from nas.layers import count
from nas.proxies.registry import register_proxy

ACT_TYPES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)


def _weighted(model):
    """(name, module) of every Conv2d / Linear, the layers whose weights proxies score."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _pool_index(specs) -> int:
    """Index of the global pool layer (the end of the feature extractor); the last layer if none."""
    for i, s in enumerate(specs):
        if s.op == "pool":
            return i
    return len(specs) - 1


# --------------------------------------------------------------------------------------------------------
# no model: the baselines every proxy must beat
# --------------------------------------------------------------------------------------------------------
@register_proxy("params", input="none", log_scale=True)
def params(probe) -> float:
    """Number of parameters (exact, from the layer plan; BN included). No input, no model."""
    return float(count(probe.specs).params)


@register_proxy("macs", input="none", log_scale=True)
def macs(probe) -> float:
    """Multiply-accumulates of conv and linear layers for one image (exact, from the layer plan)."""
    return float(count(probe.specs).macs)


# --------------------------------------------------------------------------------------------------------
# data-free
# --------------------------------------------------------------------------------------------------------
@register_proxy("synflow", input="noise", batch_size=1, bn="eval")
def synflow(probe) -> float:
    """log SynFlow (Tanaka et al. 2020): log sum |w * dR/dw|, R = sum of the output for an all-ones input.

    Input: one all-ones image (no data), every weight replaced by its absolute value, BN in eval mode
    (running statistics of a fresh network: identity), ReLU6/h-swish/SiLU replaced by ReLU (the linearised
    network SynFlow is defined on; bounded activations would saturate). Conv and linear weights are scored. Computed in
    float32 (float64 is 5-10x slower on CPU) and redone in float64 only if float32 overflows.
    """
    value = _synflow(probe, torch.float32)
    return value if math.isfinite(value) else _synflow(probe, torch.float64)


def _relu_everywhere(module: nn.Module) -> None:
    """Swap ReLU6 / h-swish / SiLU for ReLU: on SynFlow's all-positive signal ReLU is the identity, while the
    bounded ones saturate (ReLU6 caps at 6, h-swish is quadratic below 3) and would zero every gradient
    upstream of the first saturated layer. Squeeze-excite gates (hard-sigmoid) saturate to 1: identity."""
    for name, child in module.named_children():
        if isinstance(child, (nn.ReLU6, nn.Hardswish, nn.SiLU)):
            setattr(module, name, nn.ReLU())
        else:
            _relu_everywhere(child)


def _synflow(probe, dtype) -> float:
    model = probe.model(bn="eval", dtype=dtype)
    _relu_everywhere(model)
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    c, h, w = model.input_shape
    model(torch.ones(1, c, h, w, dtype=dtype)).sum().backward()
    with torch.no_grad():
        total = sum((m.weight.double() * m.weight.grad.double()).abs().sum()
                    for _, m in _weighted(model) if m.weight.grad is not None)
    return math.log(float(total)) if total > 0 else -math.inf


@register_proxy("zen", input="noise", batch_size=16, bn="train")
def zen(probe) -> float:
    """Zen-score (Lin et al. 2021): log E|f(x) - f(x + 0.01 e)| + sum over BN of log sqrt(mean batch var).

    As Zen-NAS defines it: every conv/linear weight re-drawn from N(0, 1) (BN weight 1, bias 0; not the
    network's own fan-out init, which would make the BN term reward narrow layers), then fake-quantized;
    x, e Gaussian noise (batch 16); f the feature map before global pooling; BN in train mode. The BN term
    uses each BN's batch variance on the unperturbed pass (Zen-NAS reads ``running_var`` after its two
    passes, a momentum-blurred version of the same quantity).
    """
    model = probe.model(bn="train", init="gaussian")
    n = probe.n(16)
    x, _ = probe.noise(2 * n)
    x, e = x[:n], x[n:]
    features = model.layers[:_pool_index(model.specs)]
    log_bn = []
    hooks = [m.register_forward_pre_hook(lambda _m, i: log_bn.append(
        0.5 * math.log(float(i[0].var(dim=(0, 2, 3), unbiased=False).mean()) + 1e-12)))
        for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        a = features(x)
        for hk in hooks:
            hk.remove()
        b = features(x + 0.01 * e)
    diff = float((a - b).abs().sum(dim=(1, 2, 3)).mean())
    return math.log(diff) + sum(log_bn) if diff > 0 else -math.inf  # no response to the perturbation: dead


# --------------------------------------------------------------------------------------------------------
# real images, no labels
# --------------------------------------------------------------------------------------------------------
@register_proxy("naswot", input="batch", batch_size=16, bn="train")
def naswot(probe) -> float:
    """NASWOT (Mellor et al. 2021): log det of the Hamming-similarity kernel of activation patterns.

    For every activation (ReLU, ReLU6, h-swish, SiLU) the binary code of each image is (pre-activation > 0);
    K[i, j] counts, over all units, the agreements between images i and j. Input: a real batch (16, labels
    unused; 16 ranks NAS-Bench-Macro as well as 32 at half the cost, see
    experiments/proxies/results/proxies_naswot_timing.md); BN in train mode.

    Computed exactly and cheaply: with codes c in {0, 1} and D units, agreements(i, j) = D - |c_i| - |c_j|
    + 2 c_i . c_j, so one float32 matrix product per activation (integer partial sums below 2**24: exact),
    accumulated in float64.
    """
    model = probe.model(bn="train")
    x, _ = probe.batch(probe.n(16))
    with NaswotKernel(model, x.shape[0]) as kernel, torch.no_grad():
        model(x)
    return kernel.logdet()


class NaswotKernel:
    """NASWOT's Hamming kernel of one forward pass: hooks on every activation while the ``with`` block runs.

    Shared by ``naswot`` and the quantization-aware ``qnaswot`` (which reads other tensors in the same pass)."""

    def __init__(self, model, n: int):
        self.model, self.n = model, n
        self.G = torch.zeros(n, n, dtype=torch.float64)  # sum of c_i . c_j
        self.ones = torch.zeros(n, dtype=torch.float64)  # sum of |c_i|
        self.units = 0
        self._hooks: list = []

    def _hook(self, _m, inputs):
        c = (inputs[0].detach().reshape(self.n, -1) > 0)
        c = c.double() if c.shape[1] >= 2 ** 24 else c.float()  # float32 counts exactly below 2**24
        self.G.add_((c @ c.t()).double())
        self.ones.add_(c.sum(dim=1).double())
        self.units += c.shape[1]

    def __enter__(self) -> "NaswotKernel":
        self._hooks = [m.register_forward_pre_hook(self._hook) for m in self.model.modules()
                       if isinstance(m, ACT_TYPES)]
        return self

    def __exit__(self, *exc) -> None:
        for hk in self._hooks:
            hk.remove()

    def logdet(self) -> float:
        K = self.units - self.ones[:, None] - self.ones[None, :] + 2 * self.G
        sign, logdet = torch.linalg.slogdet(K)
        return float(logdet) if sign > 0 else -math.inf


@register_proxy("meco", input="batch", batch_size=8, bn="train")
def meco(probe) -> float:
    """MeCo (Jiang et al. 2023): sum over conv layers of the minimum eigenvalue of the channel correlation.

    For each Conv2d output of the first image, the C x C Pearson correlation of its channels over spatial
    positions (NaN from constant channels set to 0, as in the reference code); layers with C > H*W have a
    rank-deficient matrix, lambda_min = 0, and are skipped exactly. Input: a real batch of 8 (BN statistics),
    BN in train mode.
    """
    model = probe.model(bn="train")
    x, _ = probe.batch(probe.n(8))
    total = [0.0]

    def hook(_m, _i, out):
        f = out[0].detach().reshape(out.shape[1], -1).double()
        if f.shape[0] > f.shape[1] or f.shape[0] < 2:
            return
        corr = torch.nan_to_num(torch.corrcoef(f), nan=0.0, posinf=0.0, neginf=0.0)
        total[0] += float(torch.linalg.eigvalsh(corr)[0])

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for hk in hooks:
        hk.remove()
    return total[0]


# --------------------------------------------------------------------------------------------------------
# real images with labels (gradients)
# --------------------------------------------------------------------------------------------------------
def _grads(probe, n: int, splits: int = 2):
    """Per-split gradients of the cross-entropy w.r.t. every conv/linear weight: list over splits of lists.

    snip, grad_norm and zico share one computation: the batch is cut in ``splits`` parts (BN statistics per
    part, as ZiCo's reference code does) and the full-batch gradient is the mean of the parts' gradients.
    """

    def compute():
        model = probe.model(bn="train")
        x, y = probe.batch(n)
        out = []
        for xs, ys in zip(x.chunk(splits), y.chunk(splits)):
            model.zero_grad()
            F.cross_entropy(model(xs), ys).backward()
            out.append([(m.weight.detach(), m.weight.grad.detach().clone()) for _, m in _weighted(model)])
        return out

    return probe.memo(("grads", n, splits), compute)


def _mean_grads(probe):
    parts = _grads(probe, probe.n(32))
    return [(w, sum(p[i][1] for p in parts) / len(parts)) for i, (w, _) in enumerate(parts[0])]


@register_proxy("snip", input="batch+labels", batch_size=32, bn="train", log_scale=True)
def snip(probe) -> float:
    """SNIP saliency (Lee et al. 2019): sum |w * dL/dw| over conv/linear weights; real batch of 32 with
    labels (two halves of 16, gradients averaged),
    cross-entropy, BN in train mode."""
    return float(sum((w * g).abs().sum() for w, g in _mean_grads(probe)))


@register_proxy("grad_norm", input="batch+labels", batch_size=32, bn="train", log_scale=True)
def grad_norm(probe) -> float:
    """Gradient norm: sum over conv/linear layers of ||dL/dw||_2; real batch of 32 with
    labels (two halves of 16, gradients averaged), BN in train mode."""
    return float(sum(g.norm() for _, g in _mean_grads(probe)))


@register_proxy("zico", input="batch+labels", batch_size=32, bn="train")
def zico(probe) -> float:
    """ZiCo (Li et al. 2023): sum over layers of log sum_w mean|g_w| / std(g_w), over 2 half-batches.

    Real batch of 32 with labels split in two halves of 16 (as the reference code splits its batch),
    cross-entropy, BN in train mode; weights whose gradient has zero spread are left out.
    """
    halves = _grads(probe, probe.n(32))
    total = 0.0
    for layer in range(len(halves[0])):
        g = torch.stack([h[layer][1].reshape(-1) for h in halves]).double()
        std = g.std(dim=0, unbiased=False)
        keep = std > 0
        s = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if s > 0:
            total += math.log(s)
    return total
