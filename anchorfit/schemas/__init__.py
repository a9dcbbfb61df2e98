"""JSON schemas of the command outputs, shipped so scripts can validate what they read."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema of ``anchorfit NAME --format json`` (``rf``, ``erf``, ``kmeans``, ...)."""
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)
