"""`nas arch sample|info|list`."""
from __future__ import annotations

import argparse

from nas.cli.common import print_table
from nas.cli.vocabulary import add_arch, add_archs, add_output, add_seed, add_space, command
from nas.errors import NasError
from nas.fileio import check_table_output, write_table
from nas.space.csv import parse_arch_row, read_arch_csv


def cmd_arch_sample(args: argparse.Namespace) -> None:
    from nas.space import load_space

    space = load_space(args.space)
    if args.n < 1:
        raise NasError(f"--n must be at least 1, got {args.n}", where="--n")
    texts = []
    for arch in space.sample_many(args.n, seed=args.seed):
        if args.format == "json":
            texts.append(arch.to_json())
        elif args.format == "native":
            texts.append(space.to_native(arch) or space.format(arch))
        else:
            texts.append(space.format(arch))
    if args.output:  # a CSV every --archs reads
        import pandas as pd

        from nas.fileio import check_table_output, write_table

        path = check_table_output(args.output)
        write_table(pd.DataFrame({"arch": texts}), path)
        print(f"wrote {len(texts)} architectures to {path}")
        return
    print("\n".join(texts))


def cmd_arch_info(args: argparse.Namespace) -> None:
    from nas.layers import plan
    from nas.space import load_space
    from nas.space.baselines import implied_space

    if args.arch and args.arch_text:
        raise NasError("give the architecture once: as an argument or with --arch", where="nas arch info")
    text = args.arch or args.arch_text
    if args.archs:
        if not args.space:
            raise NasError("--archs needs --space", where="--space", fix="e.g. --space mobilenet-c10")
        _arch_info_csv(args, load_space(args.space))
        return
    if not text:
        raise NasError("give an architecture or --archs IN.csv", where="nas arch info",
                       fix="e.g. nas arch info --space nas-bench-macro 01202110, or nas arch info --arch mobilenetv2-0.5")
    space = load_space(implied_space(text, args.space))
    arch = space.parse(text)
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
        bits += f" dw w{l.dw_wbits}a{l.dw_abits}" if l.per_role else ""
        rows.append((l.name, l.op, f"{l.h}x{l.w}x{l.cin}", f"{ho}x{wo}x{l.cout}", detail, act, bits,
                     f"{l.params():,}", f"{l.macs():,}"))
    print(f"space {space.name}: {space.format(arch)}")
    if space.native:
        print(f"native: {space.to_native(arch)}")
    print_table(("layer", "op", "input", "output", "shape", "act", "bits", "params", "MACs"), rows)
    print(f"total: {sum(l.params() for l in layers):,} params, {sum(l.macs() for l in layers):,} MACs "
          f"({sum(l.macs() for l in layers) / 1e6:.2f} M)")


def _arch_info_csv(args: argparse.Namespace, space) -> None:
    """`nas arch info --archs IN.csv -o OUT.csv`: one row per architecture, with its params and MACs."""
    import pandas as pd

    from nas.layers import plan

    if not args.output:
        raise NasError("--archs needs -o OUT.csv", where="-o", fix="add -o results.csv")
    out = check_table_output(args.output, reads={"archs": args.archs})
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
    write_table(pd.DataFrame(rows), out)
    print(f"wrote {len(rows)} rows to {out}")


def cmd_arch_list(args: argparse.Namespace) -> None:
    """The named baselines with their space, params, MACs and deployed size at fp32 and int8."""
    from nas.latency.signatures import deploy
    from nas.layers import count, plan
    from nas.space import list_baselines, load_space

    rows = []
    for b in list_baselines():
        layers = plan(b.arch, load_space(b.space))
        cost = count(layers)
        fp32, int8 = (count([deploy(l, dtype) for l in layers]).size_bytes / 1e6 for dtype in ("fp32", "int8"))
        rows.append((b.name, b.space, f"{cost.params:,}", f"{cost.macs / 1e6:.1f} M", f"{fp32:.2f} MB",
                     f"{int8:.2f} MB", b.description))
    print_table(("name", "space", "params", "MACs", "size fp32", "size int8", "what"), rows)
    print("use a name wherever an architecture is read, e.g. nas arch info --arch mobilenetv2-0.5 or "
          "nas export --arch mobilenetv2-0.5 --out-dir OUT (the name implies --space); Python: nas.space.baseline(NAME)")


def register(sub) -> None:
    group = sub.add_parser("arch", help="sample, describe and list architectures")
    arch = group.add_subparsers(dest="sub", required=True)
    sample = command(arch, "sample", help="random architectures of a space (canonical strings, JSON or native)",
                     examples=("nas arch sample --space mobilenet-c10 --n 3",
                               "nas arch sample --space mobilenet-c10 --n 20 -o archs.csv"))
    add_space(sample)
    sample.add_argument("--n", type=int, default=5, help="how many (default 5)")
    add_seed(sample, "sampling seed")
    sample.add_argument("--format", choices=("text", "json", "native"), default="text",
                        help="text (canonical, default), json, or the space's native encoding")
    add_output(sample, "CSV with a column 'arch', for any --archs", default="print one per line")
    sample.set_defaults(func=cmd_arch_sample)
    info = command(arch, "info", help="per-layer shapes, params and MACs",
                   examples=("nas arch info --arch mobilenetv2-0.5",
                             "nas arch info --space mobilenet-c10 --archs archs.csv -o info.csv"))
    add_space(info, required=False, what="search space (default: the one a baseline name implies; needed with "
                                         "--archs)")
    info.add_argument("arch_text", nargs="?", metavar="ARCH", help="the architecture, as with --arch (default: none)")
    add_arch(info)
    add_archs(info)
    add_output(info, "CSV for --archs: one row per architecture")
    info.set_defaults(func=cmd_arch_info)
    listing = command(arch, "list", help="the named hand-designed baselines: space, params, MACs, size",
                      examples=("nas arch list",))
    listing.set_defaults(func=cmd_arch_list)
