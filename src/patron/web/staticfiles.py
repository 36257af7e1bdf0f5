"""A static files finder for Plotly's JavaScript, which ships inside the ``plotly`` package.

Only ``plotly.min.js`` is exposed (as ``vendor/plotly/plotly.min.js``): the package data folder
also holds a second 5 MB bundle and datasets that have no business on a web server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "vendor/plotly/plotly.min.js"
_PLOTLY_DIR = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly/plotly.min.js`` in the installed plotly package."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(_PLOTLY_DIR))
        self.storage.prefix = "vendor/plotly"  # type: ignore[attr-defined]

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        """No settings to check."""
        return []

    def find(  # type: ignore[override]
        self, path: str, find_all: bool = False, **kwargs: Any
    ) -> str | list[str] | None:
        """The absolute path of Plotly's bundle when asked for it, else nothing."""
        if path != PLOTLY_STATIC_PATH:
            return [] if find_all else None
        match = str(_PLOTLY_DIR / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns: Any) -> Any:
        """The one file collectstatic copies: ``plotly.min.js`` under its prefix."""
        yield "plotly.min.js", self.storage
