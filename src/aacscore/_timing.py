"""Wall-clock timing of pipeline stages."""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager


@contextmanager
def timed(timings: MutableMapping[str, float], key: str) -> Iterator[None]:
    """Record the seconds the ``with`` block took as ``timings[key]``; nothing is recorded when
    the block raises."""
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start
