"""The `nas` command line: a thin shell that parses arguments, calls the API and prints.

Every NasError becomes one line on stderr and exit status 2; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from nas.cli.common import flag_error, host_warnings
from nas.errors import NasError
from nas.cli.arch import cmd_arch_info, cmd_arch_list, cmd_arch_sample
from nas.cli.spaces import cmd_spaces_list, cmd_spaces_show


# --------------------------------------------------------------------------------------------------------
# spaces
# --------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------
# arch
# --------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------------
# Modules that add their own subcommands: each defines ``register(subparsers)``. Keep heavy imports
# (torch, onnxruntime, optuna) inside the command functions so `nas --help` stays fast.
SUBCOMMAND_MODULES: tuple[str, ...] = ("nas.cli.lut", "nas.cli.score", "nas.cli.search", "nas.cli.export")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nas", description="Hardware-aware neural architecture search.")
    p.add_argument("--version", action="version", version=f"nas {_version()}")
    p.add_argument("--tables-dir", metavar="DIR", default=None,
                   help="folder of your own latency tables: written by `nas lut profile/fit/adapt` and "
                        "`validate --calibrate`, looked up before the shipped ones (default: $NAS_TABLES_DIR, "
                        "else ~/.local/share/nas/latency_tables)")
    sub = p.add_subparsers(dest="command", required=True)

    spaces = sub.add_parser("spaces", help="list and inspect search spaces").add_subparsers(dest="sub", required=True)
    spaces.add_parser("list", help="list shipped search spaces").set_defaults(func=cmd_spaces_list)
    show = spaces.add_parser("show", help="show the choices of one space")
    show.add_argument("name", help="space name or path to a YAML file")
    show.set_defaults(func=cmd_spaces_show, flags={"space": "NAME"})

    arch = sub.add_parser("arch", help="sample and describe architectures").add_subparsers(dest="sub", required=True)
    sample = arch.add_parser("sample", help="print random architectures (canonical strings)")
    sample.add_argument("--space", required=True)
    sample.add_argument("--n", type=int, default=5)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--format", choices=("text", "json", "native"), default="text")
    sample.set_defaults(func=cmd_arch_sample)
    info = arch.add_parser("info", help="per-layer shapes, params and MACs")
    info.add_argument("--space", help="search space (default: the one a baseline name implies; needed with --archs)")
    info.add_argument("arch_text", nargs="?", metavar="ARCH", help="the architecture, as with --arch")
    info.add_argument("--arch", help="canonical string, JSON, the space's native encoding, or a baseline name "
                                     "(`nas arch list`)")
    info.add_argument("--archs", help="CSV with a column 'arch'")
    info.add_argument("-o", "--output", help="output CSV for --archs")
    info.set_defaults(func=cmd_arch_info)
    listing = arch.add_parser("list", help="the named hand-designed baselines: space, params, MACs, size")
    listing.set_defaults(func=cmd_arch_list)

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


def _version() -> str:
    """The installed distribution's version (package metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nas-edge")
    except PackageNotFoundError:
        from nas import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tables_dir:  # the library reads it from the environment; workers this process starts inherit it
        import os
        from pathlib import Path

        os.environ["NAS_TABLES_DIR"] = str(Path(args.tables_dir).expanduser().resolve())
    try:
        with host_warnings(getattr(args, "space", None)):
            args.func(args)
    except NasError as exc:
        exc = flag_error(exc, getattr(args, "flags", {}), set(vars(args)))
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
