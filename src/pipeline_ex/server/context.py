"""What every endpoint of one server shares: the Runtime, the settings, the monitoring
readout and the run gate.  Routes are built from one of these (no module-level state),
so two apps in one process (tests do that) never see each other's runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_ex.server.readout import Readout
from pipeline_ex.server.run_gate import RunGate
from pipeline_ex.server.settings import ServerSettings

if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime


@dataclass(frozen=True)
class ServerContext:
    runtime: Runtime
    settings: ServerSettings
    readout: Readout
    gate: RunGate

    @classmethod
    def build(cls, runtime: Runtime, settings: ServerSettings) -> ServerContext:
        return cls(
            runtime=runtime,
            settings=settings,
            readout=Readout(runtime),
            gate=RunGate(settings.max_concurrent_runs),
        )
