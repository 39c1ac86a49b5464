"""Errors of the form engine."""
from __future__ import annotations


class DefinitionError(ValueError):
    """A form definition (or a catalog, Questionnaire or Excel layout it was built from) is unusable.

    The message is meant for the central admin: it says what is wrong and where. `problems` holds the
    individual findings when there are several.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [message])
