"""One exception type for every mistake a user can fix: it prints as one line naming where, what and the fix.

Library code names the *API argument* at fault (``argument="latency_budget_ms"``) and writes fixes in API
terms (``allow_estimate=True``); an API argument is named as the dest of the command-line option that gives it,
so the CLI shows that option instead (:mod:`nas.cli.common`): a Python user is never told about a flag and a
shell user never about a keyword argument.
"""
from __future__ import annotations

import difflib
from typing import Sequence


class NasError(Exception):
    """A user-facing error. ``where`` is a file, a key path or an input name; ``argument`` the API argument at
    fault (shown as ``argument 'name'`` when there is no ``where``); ``fix`` says what to do."""

    def __init__(self, problem: str, *, where: str | None = None, fix: str | None = None,
                 argument: str | None = None):
        self.problem = problem
        self.where = where
        self.fix = fix
        self.argument = argument
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.where or (f"argument '{self.argument}'" if self.argument else None)
        text = f"{where}: {self.problem}" if where else self.problem
        if self.fix:
            text += f" (fix: {self.fix})"
        return text.replace("\n", " ")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): what a one-line error quotes."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or '' when none is close."""
    close = difflib.get_close_matches(word, list(dict.fromkeys(options)), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
