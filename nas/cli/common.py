"""What every command shares: printing tables, and turning API errors into flag errors."""
from __future__ import annotations


def print_table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def flag_of(argument: str, flags: dict[str, str], dests: set[str]) -> str | None:
    """The command-line flag of an API argument: the command's own mapping, else --the-same-name if the
    command has that option."""
    if argument in flags:
        return flags[argument]
    if argument == "output" and argument in dests:  # every command's output file is -o/--output
        return "-o"
    return "--" + argument.replace("_", "-") if argument in dests else None


def flag_error(exc, flags: dict[str, str], dests: set[str]):
    """The same NasError in the command line's terms: ``argument`` becomes its flag (as ``where``), and
    ``name=value`` / bare ``name`` mentions of API arguments in the fix become ``--flag value``."""
    import re

    from nas.errors import NasError

    where = exc.where
    if exc.argument and not where:
        where = flag_of(exc.argument, flags, dests) or f"argument '{exc.argument}'"
    fix = exc.fix

    def to_flag(m):
        flag = flag_of(m.group(1), flags, dests)
        if flag is None:
            return m.group(0)
        value = (m.group(2) or "").strip("'\"")
        return flag if value in ("", "True") else f"{flag} {value}"

    if fix:
        known = sorted(set(flags) | dests, key=len, reverse=True)
        # name=value for any argument; a bare name only where it cannot be an ordinary word
        assigned = "|".join(re.escape(n) for n in known)
        bare = "|".join(re.escape(n) for n in known if "_" in n or n in flags)
        if assigned:
            fix = re.sub(rf"\b({assigned})=('[^']*'|\[[^\]]*\]|[^\s,;)]+)", to_flag, fix)
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
