"""The `nas` command line: a thin shell that parses arguments, calls the API and prints.

Every NasError becomes one line on stderr and exit status 2; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from nas.arch_csv import parse_arch_row, read_arch_csv
from nas.errors import NasError


# --------------------------------------------------------------------------------------------------------
# spaces
# --------------------------------------------------------------------------------------------------------
def cmd_spaces_list(args: argparse.Namespace) -> None:
    from nas.space import list_spaces, load_space

    rows = []
    for name in list_spaces():
        s = load_space(name)
        res = s.resolutions[0] if len(s.resolutions) == 1 else f"{s.resolutions[0]}..{s.resolutions[-1]}"
        rows.append((name, f"10^{s.log10_count():.1f}", str(res), str(s.num_classes), s.description.split(". ")[0]))
    _print_table(("space", "archs", "px", "classes", "description"), rows)


def cmd_spaces_show(args: argparse.Namespace) -> None:
    from nas.space import load_space

    s = load_space(args.name)
    print(f"{s.name}  ({s.path})")
    print(f"  {s.description}")
    if s.source:
        print(f"  source: {s.source}")
    print(f"  distinct architectures: {s.count():,} (10^{s.log10_count():.2f})")
    print(f"  input: {'/'.join(map(str, s.resolutions)) if len(s.resolutions) < 6 else f'{s.resolutions[0]}..{s.resolutions[-1]} ({len(s.resolutions)} choices)'}"
          f" px x {s.in_channels} ch; classes: {s.num_classes}; native encoding: {s.native or '-'}")
    for i, l in enumerate(s.stem):
        print(f"  stem[{i}]: conv k{l.kernel} s{l.stride} -> {l.width} {l.act} w{l.wbits}a{l.abits}")
    for i, st in enumerate(s.stages):
        print(f"  stage {i}: width {_choices(st.widths)} depth {_choices(st.depths)} stride {st.stride}")
        if st.first_block is not st.block:
            print(f"    first block: {st.first_block.describe()}")
        print(f"    blocks: {st.block.describe()}")
    for i, l in enumerate(s.head):
        desc = {"conv": f"conv k{l.kernel} -> {l.width} {l.act}", "pool": "global average pool",
                "linear": f"linear -> {l.width}{'' if l.act == 'none' else ' ' + l.act}"}[l.op]
        print(f"  head[{i}]: {desc}")


def _choices(values) -> str:
    return str(values[0]) if len(values) == 1 else "{" + ",".join(map(str, values)) + "}"


# --------------------------------------------------------------------------------------------------------
# arch
# --------------------------------------------------------------------------------------------------------
def cmd_arch_sample(args: argparse.Namespace) -> None:
    from nas.space import load_space

    space = load_space(args.space)
    if args.n < 1:
        raise NasError(f"--n must be at least 1, got {args.n}", where="--n")
    for arch in space.sample_many(args.n, seed=args.seed):
        if args.format == "json":
            print(arch.to_json())
        elif args.format == "native":
            print(space.to_native(arch) or space.format(arch))
        else:
            print(space.format(arch))


def cmd_arch_info(args: argparse.Namespace) -> None:
    from nas.layers import plan
    from nas.space import load_space

    space = load_space(args.space)
    if args.archs:
        if not args.output:
            raise NasError("--archs needs -o OUT.csv", where="-o", fix="add -o results.csv")
        df = read_arch_csv(args.archs)
        rows = []
        for i, text in enumerate(df["arch"]):
            arch = parse_arch_row(space, text, args.archs, i)
            layers = plan(arch, space)
            row = {"arch": text, "canonical": space.format(arch)}
            if space.native:
                row["native"] = space.to_native(arch)
            row.update(params=sum(l.params() for l in layers), macs=sum(l.macs() for l in layers))
            rows.append(row)
        import pandas as pd

        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)
        print(f"wrote {len(rows)} rows to {out}")
        return
    if not args.arch:
        raise NasError("give an architecture or --archs IN.csv", where="nas arch info",
                       fix="e.g. nas arch info --space nas-bench-macro 01202110")
    arch = space.parse(args.arch)
    layers = plan(arch, space)
    rows = []
    for l in layers:
        ho, wo = l.out_hw
        detail = ""
        if l.op in ("conv", "ir"):
            detail = f"k{l.kernel} s{l.stride}"
        if l.op == "ir":
            detail += f" e{l.expand} mid{l.mid}" + (f" g{l.groups}" if l.groups > 1 else "") + (" se" if l.se else "")
        if l.op == "skip":
            detail = "1x1 projection" if l.projects else "identity"
        act = l.act if l.op in ("conv", "ir", "linear") else ""
        bits = f"w{l.wbits}a{l.abits}" if l.op in ("conv", "ir", "linear") or l.projects else ""
        rows.append((l.name, l.op, f"{l.h}x{l.w}x{l.cin}", f"{ho}x{wo}x{l.cout}", detail, act, bits,
                     f"{l.params():,}", f"{l.macs():,}"))
    print(f"space {space.name}: {space.format(arch)}")
    if space.native:
        print(f"native: {space.to_native(arch)}")
    _print_table(("layer", "op", "input", "output", "shape", "act", "bits", "params", "MACs"), rows)
    print(f"total: {sum(l.params() for l in layers):,} params, {sum(l.macs() for l in layers):,} MACs "
          f"({sum(l.macs() for l in layers) / 1e6:.2f} M)")


def _print_table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


# --------------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------------
# Modules that add their own subcommands: each defines ``register(subparsers)``. Keep heavy imports
# (torch, onnxruntime, optuna) inside the command functions so `nas --help` stays fast.
SUBCOMMAND_MODULES: tuple[str, ...] = ("nas.cli_lut", "nas.cli_score", "nas.cli_search", "nas.cli_export")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nas", description="Hardware-aware neural architecture search.")
    sub = p.add_subparsers(dest="command", required=True)

    spaces = sub.add_parser("spaces", help="list and inspect search spaces").add_subparsers(dest="sub", required=True)
    spaces.add_parser("list", help="list shipped search spaces").set_defaults(func=cmd_spaces_list)
    show = spaces.add_parser("show", help="show the choices of one space")
    show.add_argument("name", help="space name or path to a YAML file")
    show.set_defaults(func=cmd_spaces_show)

    arch = sub.add_parser("arch", help="sample and describe architectures").add_subparsers(dest="sub", required=True)
    sample = arch.add_parser("sample", help="print random architectures (canonical strings)")
    sample.add_argument("--space", required=True)
    sample.add_argument("--n", type=int, default=5)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--format", choices=("text", "json", "native"), default="text")
    sample.set_defaults(func=cmd_arch_sample)
    info = arch.add_parser("info", help="per-layer shapes, params and MACs")
    info.add_argument("--space", required=True)
    info.add_argument("arch", nargs="?", help="canonical string, JSON, or the space's native encoding")
    info.add_argument("--archs", help="CSV with a column 'arch'")
    info.add_argument("-o", "--output", help="output CSV for --archs")
    info.set_defaults(func=cmd_arch_info)

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
