"""`nas spaces list|show`."""
from __future__ import annotations

import argparse

from nas.cli.common import print_table
from nas.cli.vocabulary import add_space, command


def cmd_spaces_list(args: argparse.Namespace) -> None:
    from nas.space import list_spaces, load_space

    rows = []
    for name in list_spaces():
        s = load_space(name)
        res = s.resolutions[0] if len(s.resolutions) == 1 else f"{s.resolutions[0]}..{s.resolutions[-1]}"
        rows.append((name, f"10^{s.log10_count():.1f}", str(res), str(s.num_classes), s.description.split(". ")[0]))
    print_table(("space", "archs", "px", "classes", "description"), rows)


def cmd_spaces_show(args: argparse.Namespace) -> None:
    from nas.space import load_space

    if not (args.space or args.name):
        from nas.errors import NasError

        raise NasError("which space?", where="--space", fix="e.g. nas spaces show --space mobilenet-c10")
    s = load_space(args.space or args.name)
    print(f"{s.name}  ({s.path})")
    print(f"  {s.description}")
    if s.source:
        print(f"  source: {s.source}")
    size = f"{s.count():,} (10^{s.log10_count():.2f})" if s.log10_count() < 100 else f"10^{s.log10_count():.2f}"
    print(f"  distinct architectures: {size}")  # an int of thousands of digits cannot even be printed
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


def register(sub) -> None:
    group = sub.add_parser("spaces", help="list and inspect search spaces")
    spaces = group.add_subparsers(dest="sub", required=True)
    command(spaces, "list", help="the shipped search spaces: size, input, classes",
            examples=("nas spaces list",)).set_defaults(func=cmd_spaces_list)
    show = command(spaces, "show", help="the choices of one space and its size",
                   examples=("nas spaces show --space mobilenet-c10", "nas spaces show --space my-space.yaml"))
    add_space(show, required=False)
    show.add_argument("name", nargs="?", metavar="NAME|PATH", help="the space, as with --space (default: none)")
    show.set_defaults(func=cmd_spaces_show)
