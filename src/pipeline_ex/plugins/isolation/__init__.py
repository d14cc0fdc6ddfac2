"""Process and sandbox isolation tiers for plugins (see the README's "Security model").

``ProcessPlugin.start(IsolationSpec(...))`` runs a plugin in a child process that quacks
like ``PluginAdapter``; ``tier="sandbox"`` adds Landlock and seccomp.  Modules: ``wire``
(framing), ``child`` (the child's loop), ``host`` (the host side and proxies), ``limits``
(rlimits), ``supervisor`` (restart budget), ``audit`` (the child's audit hook),
``sandbox`` (Landlock/seccomp), ``spec`` (the entry's settings), ``verified_sources``
(imports served from signature-verified bytes, in the host and in the child).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_ex.lazy_exports import exports

if TYPE_CHECKING:
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

#: Package attributes and the module each comes from, imported on first use (PEP 562): a
#: signed plugin loaded in-process imports ``verified_sources`` from here, and should not
#: pay for the host side of isolation.
_LAZY = {
    "IsolationError": "host",
    "ProcessPlugin": "host",
    "ProviderProxy": "host",
    "RemoteError": "host",
    "StateHandle": "host",
    "StepProxy": "host",
    "Limits": "limits",
    "TIERS": "spec",
    "IsolationSpec": "spec",
    "RestartPolicy": "supervisor",
}


__getattr__ = exports(__name__, {name: f".{module}" for name, module in _LAZY.items()})


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
