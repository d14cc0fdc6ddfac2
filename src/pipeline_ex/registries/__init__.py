"""The component registries read by the engine on every step."""

from pipeline_ex.registries.providers import ProviderRegistry
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.registries.steps import Caller, Instrument, StepRegistry

__all__ = [
    "Caller",
    "Instrument",
    "ProviderRegistry",
    "SnapshotRegistry",
    "StepRegistry",
]
