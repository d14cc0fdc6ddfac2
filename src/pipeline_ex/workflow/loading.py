"""Turning what the caller gave (a path or a mapping) into a validated-ready Document."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_ex.documents import Document, check_data_bounds, load_yaml_file, require_mapping


def load_workflow(
    source: str | Path | Mapping[str, Any] | Document, *, check_bounds: bool = True
) -> Document:
    """A path is read as YAML (safely); a mapping is taken as the document itself, within
    the same budgets as YAML (``check_bounds=False``: the caller checks them later, as
    ``validate_workflow(check_bounds=True)`` does)."""
    if isinstance(source, Document):
        return source
    if isinstance(source, Mapping):
        if check_bounds:
            check_data_bounds(source)
        return Document(dict(source), None, {})
    document = load_yaml_file(source)
    require_mapping(document, "a workflow document")
    return document
