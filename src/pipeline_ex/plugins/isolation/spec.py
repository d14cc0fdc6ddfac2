"""What the manager tells the isolation layer about one plugin entry."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.isolation import wire
from pipeline_ex.plugins.isolation.limits import Limits
from pipeline_ex.plugins.isolation.supervisor import RestartPolicy
from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources
from pipeline_ex.plugins.permissions import Permission

TIERS = ("process", "sandbox")


@dataclass(frozen=True)
class IsolationSpec:
    """One isolated plugin: what to import in the child and under which rules.

    ``reference`` is a dotted reference (``pkg.mod:Attr``) or ``directory`` a plugin
    directory whose ``plugin.yaml`` names ``module: stem[:Attr]``; ``env`` names the host
    environment variables the child gets (``PREFIX_*`` for a prefix; nothing else is
    passed); ``grants`` are the parsed permissions the audit hook (and, for ``sandbox``,
    the kernel) enforce.  ``start_timeout_s`` bounds start-up and re-start (the plugin's
    import included); ``None`` means ``max(limits.call_timeout_s, 10)``.
    """

    plugin: str
    reference: str | None = None
    directory: str | Path | None = None
    tier: str = "process"
    env: Collection[str] = frozenset()
    grants: tuple[Permission, ...] = ()
    limits: Limits = field(default_factory=Limits)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    sandbox_degrade: bool = False
    max_frame: int = wire.MAX_FRAME
    start_timeout_s: float | None = None
    #: The plugin's verified bytes (a signature check read them), served to its import in
    #: the child instead of the files on disk.
    sources: tuple[VerifiedSources, ...] = ()

    def __post_init__(self) -> None:
        def refuse(why: str) -> PluginError:
            return PluginError(
                f"plugin {self.plugin!r}: isolation: {why}",
                code="validation_failed",
                plugin=self.plugin,
            )

        if (self.reference is None) == (self.directory is None):
            raise refuse("give exactly one of reference and directory")
        if self.tier not in TIERS:
            raise refuse(f"tier must be one of {', '.join(TIERS)}, got {self.tier!r}")
        if isinstance(self.env, str):
            raise refuse("env must be a collection of variable names, not one string")
        if not isinstance(self.max_frame, int) or self.max_frame < 1024:
            raise refuse(f"max_frame must be an integer >= 1024, got {self.max_frame!r}")

    @property
    def start_timeout(self) -> float:
        if self.start_timeout_s is not None:
            return float(self.start_timeout_s)
        return max(float(self.limits.call_timeout_s), 10.0)

    def child_environment(self) -> dict[str, str]:
        """Only the granted variables (and only those the host has)."""
        names = [n for n in self.env if not n.endswith("*")]
        prefixes = [n[:-1] for n in self.env if n.endswith("*")]
        return {
            key: value
            for key, value in os.environ.items()
            if key in names or any(key.startswith(p) for p in prefixes)
        }

    def grants_wire(self) -> list[list[Any]]:
        return [[g.kind, g.mode, g.target, g.port] for g in self.grants]
