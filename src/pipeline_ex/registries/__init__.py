"""The component registries read by the engine on every step."""

from pipeline_ex.registries.providers import Provider, ProviderRegistry
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.registries.steps import Step, StepRegistry

__all__ = ["Provider", "ProviderRegistry", "SnapshotRegistry", "Step", "StepRegistry"]
