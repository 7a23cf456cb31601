"""Problems are values: every error or warning carries where it is and what was expected."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Problem:
    message: str
    layer: str | None = None
    line: int | None = None
    column: int | None = None
    severity: str = "error"  # "error" or "warning"
    hint: str | None = None

    def as_error(self) -> Problem:
        return replace(self, severity="error")

    def located(self, line: int | None, column: int | None = None, layer: str | None = None) -> Problem:
        """Fill in a location when the problem does not have one yet."""
        return replace(
            self,
            line=self.line if self.line is not None else line,
            column=self.column if self.column is not None else column,
            layer=self.layer if self.layer is not None else layer,
        )

    def format(self, path: str = "") -> str:
        where = path
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
            if self.column is not None:
                where += f":{self.column}"
        head = f"{where}: " if where else ""
        layer = f"{self.layer}: " if self.layer else ""
        text = f"{head}{self.severity}: {layer}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_json(self) -> dict:
        return {
            "message": self.message if not self.hint else f"{self.message} ({self.hint})",
            "layer": self.layer,
            "line": self.line,
            "column": self.column,
        }


class ArchplanError(Exception):
    """Raised by the Python API when a net cannot be loaded or analysed; holds every problem found."""

    def __init__(self, problems: list[Problem] | Problem, path: str = ""):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.path = path
        super().__init__("\n".join(p.format(path) for p in self.problems))

    def __reduce__(self):  # as it is, subclasses included (their __init__ takes other arguments)
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls, args: tuple, state: dict) -> ArchplanError:
    exc = Exception.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class RuleError(Exception):
    """Raised inside op rules and expression evaluation; the caller attaches the location."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
