"""System tools some tests need (Debian packages installed by ``.ci/run``)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Path of the executable ``name``; skips the test when it is missing, except under CI
    (``AACSCORE_REQUIRE_TOOLS=1``, set by ``.ci/run``), where a missing tool fails it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("AACSCORE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} is not installed (.ci/run installs it with apt-get)")
        pytest.skip(f"{name} is not installed")
    return path
