"""The one user-facing error type: what is wrong, where, and what to do."""

from __future__ import annotations

from remediate.outcome import Failure, Reason


class UserError(Failure):
    """Bad input or configuration a person can fix; printed once as a single line."""

    reason_code = Reason.BAD_INPUT

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None,
                 line: int | None = None, hint: str | None = None) -> None:
        self.message = message
        self.field = field
        self.source = source
        self.line = line
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}".replace("\n", " ")
