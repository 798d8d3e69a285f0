"""Training-free accuracy proxies (and ``train:E``), registered by name, quantization-aware.

    from nas.proxies import Scorer, available, default_proxy
    scorer = Scorer("nas-bench-macro", ["synflow", "naswot"], data="fashion-mnist", seed=0)
    scorer.score("01202110")            # {'synflow': ..., 'naswot': ...}
    scorer.score_many(archs)            # DataFrame: arch + one column per proxy
    default_proxy(space)                # 'qnaswot' where blocks choose bits, else 'naswot'

Every proxy is higher-is-better; a degenerate network (NaN/inf activations or value) scores NaN, which ``rank``
puts last, while a proxy that raises on a network with finite activations is a NasError naming the proxy and
the architecture. Each architecture is fed images at its own resolution. Architectures with 4/8/16-bit
weights or 8/16-bit activations are scored on a fake-quantized copy (``nas.nn.fakequant``); ``qnaswot`` compares
that copy with the float network, so its score falls with the bits (``default_proxy(space)`` picks it for
spaces with bit choices).
``train:E`` (E epochs of real CPU training, validation accuracy) is accepted by the Scorer beside them.
"""
from __future__ import annotations

from nas.proxies.registry import PROXIES, Probe, Proxy, definition_versions, get_proxy, register_proxy
from nas.proxies import zero_cost as _zero_cost  # noqa: F401  (registers the proxies)
from nas.proxies import ensemble as _ensemble  # noqa: F401
from nas.proxies import quant as _quant  # noqa: F401
from nas.proxies.ensemble import ENSEMBLE_COMPONENTS
from nas.proxies.scorer import Scorer, parse_proxies, rank

DEFAULT_PROXY: str = "naswot"  # best Spearman on NAS-Bench-Macro dev (experiments/proxies/proxies_benchmark.py)
QUANT_PROXY: str = "qnaswot"  # the default of spaces with bit choices (experiments/quant/quant_score_benchmark.py)


def default_proxy(space) -> str:
    """The score a new search or ``nas score`` uses in ``space``: ``qnaswot`` where blocks choose bit-widths
    (naswot cannot see them), else ``naswot`` (the two agree exactly on float architectures)."""
    return QUANT_PROXY if space.searches_bits else DEFAULT_PROXY


def available() -> list[str]:
    """Names of the registered proxies (``train:E`` is accepted too, for any E >= 1)."""
    return sorted(PROXIES)


__all__ = ["DEFAULT_PROXY", "ENSEMBLE_COMPONENTS", "PROXIES", "Probe", "Proxy", "QUANT_PROXY", "Scorer", "available",
           "default_proxy", "definition_versions", "get_proxy", "parse_proxies", "rank", "register_proxy"]
