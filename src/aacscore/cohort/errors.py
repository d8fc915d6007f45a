"""The typed error raised for unusable cohort input."""

from __future__ import annotations

from pathlib import Path


class CohortInputError(ValueError):
    """Cohort input that cannot be analysed; the message names the file, row and column.

    ``row`` is the 1-based data row (the CSV line is ``row + 1`` because of the header).
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        where: list[str] = []
        if row is not None:
            where.append(f"row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = self.file or "cohort table"
        loc = f" {', '.join(where)}" if where else ""
        super().__init__(f"{prefix}:{loc}: {problem}" if loc else f"{prefix}: {problem}")
