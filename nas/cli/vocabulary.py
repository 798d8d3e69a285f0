"""The command line's one vocabulary: each concept has one spelling, defined here once and used by every command.

| concept | spelling |
|---|---|
| a search space | ``--space NAME|PATH`` |
| a latency table or model read | ``--device NAME|PATH`` (repeatable where a command reads several) |
| the tables a new device is derived from | ``--from DEVICE`` (repeatable; ``nas lut adapt``, ``suggest``) |
| a table or model a command writes | ``--device-name NAME`` (into your table folder, ``nas --tables-dir``) |
| one architecture / a CSV of them | ``--arch TEXT`` / ``--archs FILE.csv`` (column ``arch``) |
| an output file / an output folder | ``-o, --output FILE`` / ``--out-dir DIR`` |
| the deployment precision | ``--dtype {arch,fp32,int8}`` |
| seeds, threads, progress | ``--seed N``, ``--threads N``, ``--quiet`` |
| listing | ``nas <group> list`` (spaces, arch, lut, proxies) |

Old spellings keep working, hidden from help, with a one-line note naming the new one and the release that drops
them (:class:`Deprecated`). Every flag's help states its default, every command's help ends with an example.

An option's dest is the name of the API argument it gives (``--device`` -> ``device``; where Python forbids the
word or the API keeps a plural or a unit, the dest says so: ``--from`` -> ``sources``, ``--latency-budget`` ->
``latency_budget_ms``), so an error naming an API argument reads as its option with no table of flags
(:func:`nas.cli.common.flag_error`). Renamed keyword arguments keep working the same way (:mod:`nas.deprecation`).
"""
from __future__ import annotations

import argparse
import sys

from nas.deprecation import DROP_VERSION  # one release drops the old flags and the old keyword arguments


class Deprecated(argparse.Action):
    """An old spelling that still works, hidden from help: it sets the new option's destination and prints one
    line naming the new spelling and the release that drops the old one."""

    def __init__(self, option_strings, dest, *, new: str, nargs=None, **kwargs):
        kwargs["help"] = argparse.SUPPRESS
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        old = option_string or self.dest
        print(f"nas: note: {old} is deprecated, use {self.new} (it goes in nas {DROP_VERSION})", file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def example(*commands: str) -> str:
    """A command's help epilog: one or more examples, each runnable as written."""
    lines = "\n".join(f"  {c}" for c in commands)
    return f"example{'s' if len(commands) > 1 else ''}:\n{lines}"


def command(sub, name: str, *, help: str, description: str | None = None, examples: tuple[str, ...] = ()):
    """A subcommand parser whose help keeps the examples' line breaks."""
    return sub.add_parser(name, help=help, description=description or help,
                          epilog=example(*examples) if examples else None,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_space(p, *, required: bool = True, what: str = "search space") -> None:
    p.add_argument("--space", required=required, metavar="NAME|PATH",
                   help=f"{what}: a shipped name (`nas spaces list`) or a YAML file"
                        + ("" if required else " (default: none)"))


def add_arch(p, *, what: str = "one architecture", default: str = "none") -> None:
    p.add_argument("--arch", metavar="TEXT",
                   help=f"{what}: canonical string, JSON, the space's native encoding, or a baseline name "
                        f"(`nas arch list`) (default: {default})")


def add_archs(p, *, default: str = "none") -> None:
    p.add_argument("--archs", metavar="FILE.csv",
                   help=f"CSV of architectures, one per row in a column 'arch' (default: {default})")


def add_output(p, what: str, *, required: bool = False, default: str = "none") -> None:
    p.add_argument("-o", "--output", metavar="FILE", required=required,
                   help=f"{what} (a file)" + (" (required)" if required else f" (default: {default})"))


def add_out_dir(p, what: str, *, required: bool = True, old_o: bool = False) -> None:
    """``--out-dir DIR``; ``old_o``: ``-o DIR`` (the old spelling of this command) still works, deprecated."""
    p.add_argument("--out-dir", metavar="DIR", required=required and not old_o,
                   help=f"{what} (a folder; required)" if required else f"{what} (a folder)")
    if old_o:
        p.add_argument("-o", "--output", dest="out_dir", action=Deprecated, new="--out-dir")


def add_seed(p, what: str, default: int = 0) -> None:
    p.add_argument("--seed", type=int, default=default, help=f"{what} (default {default})")


def add_quiet(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: shown)")


def require_out_dir(args, command_name: str) -> None:
    """The folder is required; checked after parsing because its old spelling ``-o`` may have given it."""
    if not getattr(args, "out_dir", None):
        from nas.errors import NasError

        raise NasError("an output folder is required", where="--out-dir",
                       fix=f"add --out-dir DIR to {command_name}")
