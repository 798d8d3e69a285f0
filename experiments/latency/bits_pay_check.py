"""Does lowering bits pay on a bit-aware table? The same 50 random architectures re-assigned to uniform bit-widths,
priced by the table (median over the architectures, ratio to the 8-bit / float assignment).

* ``apq`` on ``bitfusion`` (APQ's BitFusion accelerator): point-wise and depth-wise weight / activation bits
  separately, latency and energy; a 7x7 depth-wise conv is set to 5x5 where the depth-wise activations are 4-bit
  (APQ's table has no such conv).
* ``mobilenet-c10`` on ``x86-2vcpu`` (this machine's onnxruntime, every bit-width the space allows, precision
  boundaries included): every block at one (weight, activation) pair.

Usage: python -m experiments.latency.bits_pay_check [--n 50] [--seed 5] [--out-dir DIR]
Writes <out-dir>/bits_pay_check.{md,json} (out-dir: experiments/latency/results). Table lookups only: a few seconds.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from experiments.harness import add_out_dir, write_results
from nas.latency import load
from nas.space import Architecture, load_space

APQ = [(8, 8, 8, 8), (6, 6, 6, 6), (4, 4, 4, 4), (4, 8, 8, 8), (8, 4, 8, 8), (8, 8, 4, 8), (8, 8, 8, 4),
       (4, 4, 8, 8), (8, 8, 4, 4), (8, 8, 6, 6), (6, 6, 8, 8)]
X86 = [(32, 32), (8, 8), (4, 8), (32, 8), (8, 32), (4, 32)]


def apq_rows(n: int, seed: int) -> list[str]:
    space, model = load_space("apq"), load("bitfusion")
    out = {}
    for bits in APQ:
        lat, energy = [], []
        for arch in space.sample_many(n, seed=seed):
            spec = json.loads(space.to_native(arch))
            if bits[3] == 4:
                spec["ks"] = [5 if k == 7 else k for k in spec["ks"]]
            for key, b in zip(("pw_w_bits_setting", "pw_a_bits_setting", "dw_w_bits_setting", "dw_a_bits_setting"),
                              bits):
                spec[key] = [b] * 21
            pred = model.predict(space.parse(json.dumps(spec)), space)
            lat.append(pred.latency_ms)
            energy.append(pred.energy_mJ)
        out[bits] = float(np.median(lat)), float(np.median(energy))
    base = out[APQ[0]]
    lines = ["## apq on bitfusion (APQ's BitFusion table)", "",
             "| point-wise | depth-wise | latency ms | vs W8A8 | energy mJ | vs W8A8 |", "|---|---|---|---|---|---|"]
    for b, (l, e) in out.items():
        lines.append(f"| W{b[0]}A{b[1]} | W{b[2]}A{b[3]} | {l:.2f} | {l / base[0]:.2f}x | {e:.2f} | {e / base[1]:.2f}x |")
    return lines


def x86_rows(n: int, seed: int) -> list[str]:
    space, model = load_space("mobilenet-c10"), load("x86-2vcpu")
    out = {}
    for w, a in X86:
        lat = []
        for arch in space.sample_many(n, seed=seed):
            stages = tuple(replace(st, blocks=tuple(replace(b, wbits=w, abits=a) for b in st.blocks))
                           for st in arch.stages)
            lat.append(model.predict(Architecture(arch.space, arch.resolution, stages), space).latency_ms)
        out[w, a] = float(np.median(lat))
    base = out[32, 32]
    lines = ["## mobilenet-c10 on x86-2vcpu (onnxruntime 1 thread, boundaries included)", "",
             "| every block | latency ms | vs float |", "|---|---|---|"]
    for (w, a), l in out.items():
        lines.append(f"| w{w}a{a} | {l:.3f} | {l / base:.2f}x |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50, help="random architectures (default 50)")
    p.add_argument("--seed", type=int, default=5, help="seed of the architectures (default 5)")
    add_out_dir(p, "latency")
    args = p.parse_args()
    lines = ["# Does lowering bits pay?", "",
             f"Median over {args.n} random architectures (seed {args.seed}), each re-assigned to the bits shown.", ""]
    lines += apq_rows(args.n, args.seed) + [""] + x86_rows(args.n, args.seed)
    write_results(args.out_dir, "bits_pay_check", md="\n".join(lines), summary={"n": args.n, "seed": args.seed})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
