"""The component registries read by the engine on every step."""

from pipeline_ex.registries.providers import Provider, ProviderRegistry
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.registries.steps import Caller, Instrument, Step, StepRegistry

__all__ = [
    "Caller",
    "Instrument",
    "Provider",
    "ProviderRegistry",
    "SnapshotRegistry",
    "Step",
    "StepRegistry",
]
