"""One exception type for every mistake a user can fix: it prints as one line naming where, what and the fix."""


class NasError(Exception):
    """A user-facing error. ``where`` is a file, a key path or an input name; ``fix`` says what to do."""

    def __init__(self, problem: str, *, where: str | None = None, fix: str | None = None):
        self.problem = problem
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.fix:
            text += f" (fix: {self.fix})"
        return text.replace("\n", " ")
