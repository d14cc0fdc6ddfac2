"""The component registries read by the engine on every step."""

from pipeline_ex.registries.providers import ProviderRegistry
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.registries.steps import Caller, Instrument, StepRegistry
from pipeline_ex.registries.views import ProviderView, StepView

__all__ = [
    "Caller",
    "Instrument",
    "ProviderRegistry",
    "ProviderView",
    "SnapshotRegistry",
    "StepRegistry",
    "StepView",
]
