"""Process and sandbox isolation tiers for plugins (see the README's "Security model").

``ProcessPlugin.start(IsolationSpec(...))`` runs a plugin in a child process that quacks
like ``PluginAdapter``; ``tier="sandbox"`` adds Landlock and seccomp.  Modules: ``wire``
(framing), ``child`` (the child's loop), ``host`` (the host side and proxies), ``limits``
(rlimits), ``supervisor`` (restart budget), ``audit`` (the child's audit hook),
``sandbox`` (Landlock/seccomp), ``spec`` (the entry's settings).
"""

from pipeline_ex.plugins.isolation.host import (
    IsolationError,
    ProcessPlugin,
    ProviderProxy,
    RemoteError,
    StateHandle,
    StepProxy,
)
from pipeline_ex.plugins.isolation.limits import Limits
from pipeline_ex.plugins.isolation.spec import TIERS, IsolationSpec
from pipeline_ex.plugins.isolation.supervisor import RestartPolicy

__all__ = [
    "TIERS",
    "IsolationError",
    "IsolationSpec",
    "Limits",
    "ProcessPlugin",
    "ProviderProxy",
    "RemoteError",
    "RestartPolicy",
    "StateHandle",
    "StepProxy",
]
