"""Errors of the training side."""

from __future__ import annotations

from pathlib import Path

from aacscore.vertebrae import CLASS_NAMES

MAX_LABEL = len(CLASS_NAMES) - 1
"""Largest valid value of a spine label map."""


class TrainingError(RuntimeError):
    """Training cannot start or continue (bad data, incompatible checkpoint, ...)."""


class SpineDataError(ValueError):
    """A training file or folder that cannot be used; the message names it and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
