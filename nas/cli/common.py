"""What every command shares: printing tables, and turning API errors into flag errors."""
from __future__ import annotations


def print_table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def command_parser(parser, args):
    """The parser of the command that ran: ``parser`` followed down the subcommands ``args`` chose."""
    import argparse

    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) not in subs[0].choices:
            return parser
        parser = subs[0].choices[getattr(args, subs[0].dest)]


def option_flags(parser) -> dict[str, str]:
    """dest -> the flag that gives it (its first long option string) for every option of ``parser``: an API
    argument is named as the option's dest (``--from`` sets ``sources``), so this is the whole mapping. Old
    spellings (:class:`~nas.cli.vocabulary.Deprecated`) and positionals are left out."""
    from nas.cli.vocabulary import Deprecated

    flags: dict[str, str] = {}
    for action in parser._actions:
        if action.option_strings and not isinstance(action, Deprecated) and action.dest not in flags:
            longs = [o for o in action.option_strings if o.startswith("--")]
            flags[action.dest] = (longs or action.option_strings)[0]
    return flags


def flag_error(exc, parser):
    """The same NasError in the command line's terms (``parser``: the command's): ``argument`` becomes the flag
    whose dest it is (as ``where``), and mentions of API arguments in the fix become ``--flag value``:
    ``name=value`` for any argument, a bare ``name`` only where it cannot be an ordinary word (it has a ``_``)."""
    import re

    from nas.errors import NasError

    flags = option_flags(parser)
    where = exc.where
    if exc.argument and not where:
        where = flags.get(exc.argument) or f"argument '{exc.argument}'"
    fix = exc.fix

    def to_flag(m):
        flag = flags[m.group(1)]
        value = m.group(2) or ""
        if value.startswith("["):  # a list: its items, comma-separated (e.g. dtypes=['arch'] -> --dtype arch)
            value = ",".join(re.findall(r"[^\[\],'\"\s]+", value))
        value = value.strip("'\"")
        return flag if value in ("", "True") else f"{flag} {value}"

    if fix and flags:
        known = sorted(flags, key=len, reverse=True)
        assigned = "|".join(re.escape(n) for n in known)
        fix = re.sub(rf"(?<![-\w])({assigned})=('[^']*'|\[[^\]]*\]|[^\s,;)]+)", to_flag, fix)
        bare = "|".join(re.escape(n) for n in known if "_" in n)
        if bare:
            fix = re.sub(rf"(?<![-\w])({bare})()(?![\w=-])", to_flag, fix)
    return NasError(exc.problem, where=where, fix=fix)


def host_warnings(space: str | None = None):
    """A context in which a :class:`nas.latency.measure.host.HostMismatchWarning` prints as one line
    ``nas: warning: ...`` on stderr, once per distinct message (a search or export loads a table several times),
    with ``--space SPACE`` in its suggested command filled in from the command's ``space``."""
    import sys
    import warnings
    from contextlib import contextmanager

    from nas.latency.measure.host import HostMismatchWarning

    @contextmanager
    def context():
        seen: set[str] = set()
        with warnings.catch_warnings():
            warnings.simplefilter("always", HostMismatchWarning)
            previous = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                if not issubclass(category, HostMismatchWarning):
                    return previous(message, category, filename, lineno, file, line)
                text = str(message).replace("--space SPACE", f"--space {space}") if space else str(message)
                if text not in seen:
                    seen.add(text)
                    print(f"nas: warning: {text}", file=sys.stderr)

            warnings.showwarning = show
            yield

    return context()
