"""The `nas` command line: a thin shell that parses arguments, calls the API and prints.

Every NasError becomes one line on stderr and exit status 2; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from nas.cli.common import command_parser, flag_error, host_warnings
from nas.errors import NasError


# Modules that add their own subcommands: each defines ``register(subparsers)``. Keep heavy imports
# (torch, onnxruntime, optuna) inside the command functions so `nas --help` stays fast.
SUBCOMMAND_MODULES: tuple[str, ...] = ("nas.cli.spaces", "nas.cli.arch", "nas.cli.lut", "nas.cli.proxies",
                                        "nas.cli.score", "nas.cli.search", "nas.cli.export")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nas", description="Hardware-aware neural architecture search.")
    p.add_argument("--version", action="version", version=f"nas {_version()}")
    p.add_argument("--tables-dir", metavar="DIR", default=None,
                   help="folder of your own latency tables: written by `nas lut profile/fit/adapt` and "
                        "`validate --calibrate`, looked up before the shipped ones (default: $NAS_TABLES_DIR, "
                        "else ~/.local/share/nas/latency_tables)")
    sub = p.add_subparsers(dest="command", required=True)

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
        exc = flag_error(exc, command_parser(parser, args))  # API argument -> the flag whose dest it is
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nas ... | head` closed the pipe: stop quietly, as other command-line tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
