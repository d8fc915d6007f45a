"""Command-line interface: a thin layer over the Python API.

Each stage's commands live in their own module here and register themselves on ``app`` when
imported below.
"""

from __future__ import annotations

from aacscore.cli._app import app, main

# Sub-command modules register themselves on import.
from aacscore.cli import info as _info  # noqa: F401  isort: skip
from aacscore.cli import simulate as _simulate  # noqa: F401  isort: skip
from aacscore.cli import validate as _validate  # noqa: F401  isort: skip
from aacscore.cli import cohort as _cohort  # noqa: F401  isort: skip
from aacscore.cli import spine as _spine  # noqa: F401  isort: skip
from aacscore.cli import score_train as _score_train  # noqa: F401  isort: skip
from aacscore.cli import view as _view  # noqa: F401  isort: skip
from aacscore.cli import score as _score  # noqa: F401  isort: skip
from aacscore.cli import demo as _demo  # noqa: F401  isort: skip
from aacscore.cli import summary as _summary  # noqa: F401  isort: skip
from aacscore.cli import merge as _merge  # noqa: F401  isort: skip
from aacscore.cli import serve as _serve  # noqa: F401  isort: skip
from aacscore.cli import review as _review  # noqa: F401  isort: skip

__all__ = ["app", "main"]
