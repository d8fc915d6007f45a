"""``aacscore serve``: review and correct a results folder in the browser, and a REST scoring
service.

The pages and the API are a FastAPI application (:func:`aacscore.serve.app.create_app`); the
reviews live in ``OUT/reviews.sqlite`` (:mod:`aacscore.serve.store`), beside the model's own
results, which are never changed; :mod:`aacscore.serve.export` turns the reviews into the
reference and training files of ``aacscore validate`` and ``aacscore train``.

FastAPI, uvicorn, Jinja2 and python-multipart come with the ``serve`` extra
(``pip install 'aacscore[serve]'``); the store, the case index and the export need none of them.
"""

from __future__ import annotations

import importlib.util

SERVE_EXTRA = "serve"
SERVE_PACKAGES: tuple[str, ...] = ("fastapi", "uvicorn", "jinja2", "multipart")
"""Import names of the packages of the ``serve`` extra."""


class ServeDependencyError(ImportError):
    """The packages of the ``serve`` extra are not installed; the message says what to install."""


def missing_packages() -> list[str]:
    """The packages of the ``serve`` extra that cannot be imported here."""
    return [name for name in SERVE_PACKAGES if importlib.util.find_spec(name) is None]


def require_serve_dependencies() -> None:
    """Raise :class:`ServeDependencyError` unless the ``serve`` extra is installed."""
    missing = missing_packages()
    if missing:
        names = ", ".join("python-multipart" if m == "multipart" else m for m in missing)
        raise ServeDependencyError(
            f"aacscore serve needs {names}: install them with pip install 'aacscore[{SERVE_EXTRA}]'"
        )
