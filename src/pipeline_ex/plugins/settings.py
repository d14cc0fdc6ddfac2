"""PluginSettings: the ``config:`` mapping a plugin's ``init`` receives, plus where it came from.

A plugin config may name files (``training_data_path: training_data/``) that the seed reads
relative to the config file, but ``init(config)`` gets only the entry's ``config:`` mapping.
Rather than slip a reserved key into that mapping (which a plugin validating its keys would
reject), the host hands over a ``dict`` subclass carrying ``config_dir``: the folder of the
plugin config file, or ``None`` when the config did not come from a file (a mapping given to
``Runtime``, a built-in).  Plugins that only read keys never notice the difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: ``PluginSpec.source`` values that are not files.
_NOT_FILES = frozenset({"<builtin>", "<string>", "<document>"})


class PluginSettings(dict[str, Any]):
    """A plugin's ``config:`` mapping with ``config_dir`` (the config file's folder or None)."""

    def __init__(self, config: Mapping[str, Any], *, config_dir: Path | None = None) -> None:
        super().__init__(config)
        self.config_dir = config_dir

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` relative to the config file's folder (the working directory if none)."""
        path = Path(value).expanduser()
        if path.is_absolute():
            return path
        return (self.config_dir or Path.cwd()) / path


def settings_for(config: Mapping[str, Any], source: str | None) -> PluginSettings:
    """The settings of a spec whose config was read from ``source`` (a file name or None)."""
    if source is None or source in _NOT_FILES or source.startswith("<"):
        return PluginSettings(config)
    return PluginSettings(config, config_dir=Path(source).resolve().parent)
