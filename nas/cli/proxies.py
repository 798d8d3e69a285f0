"""`nas proxies list`: the training-free accuracy proxies and what each needs."""
from __future__ import annotations

import argparse

from nas.cli.vocabulary import command


def cmd_proxies_list(args: argparse.Namespace) -> None:
    from nas.proxies import DEFAULT_PROXY, PROXIES, QUANT_PROXY

    marks = {DEFAULT_PROXY: "default: float spaces", QUANT_PROXY: "default: spaces with bit choices"}
    for name in sorted(PROXIES):
        p = PROXIES[name]
        batch = f"batch {p.batch_size}" if p.batch_size else "-"
        mark = f" ({marks[name]})" if name in marks else ""
        print(f"{name:<20} input {p.input:<13} {batch:<9} BN {p.bn:<5} {p.summary}{mark}")
    print(f"{'train:E':<20} input batch+labels  batch 128 BN train E epochs of real CPU training; validation accuracy")


def register(subparsers) -> None:
    group = subparsers.add_parser("proxies", help="training-free accuracy proxies: list")
    sub = group.add_subparsers(dest="sub", required=True)
    ls = command(sub, "list", help="list the proxies: input, batch, BatchNorm mode, what each measures",
                 examples=("nas proxies list",))
    ls.set_defaults(func=cmd_proxies_list)
