"""aacscore: Kauppila AAC-24 scoring of lateral lumbar spine radiographs.

>>> from aacscore import Scorer
>>> result = Scorer().score("film.dcm")  # doctest: +SKIP
>>> result.aac24, result.group  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aacscore._version import __version__

if TYPE_CHECKING:
    from aacscore.pipeline import Scorer
    from aacscore.results import Result

__all__ = ["Result", "Scorer", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy so that `aacscore --version` and light modules do not import torch.
    if name == "Scorer":
        from aacscore.pipeline import Scorer

        return Scorer
    if name == "Result":
        from aacscore.results import Result

        return Result
    raise AttributeError(f"module 'aacscore' has no attribute {name!r}")
