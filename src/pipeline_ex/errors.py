"""The error taxonomy: every failure a user can cause has a type and a stable ``code``.

Callers (the CLI, tests, library users) branch on ``code`` rather than on message text, so
codes never change once published.  Errors about a document carry where it went wrong:
the file, the path inside the document (``workflow.steps[2].prompt[0].step``) and the line
when the YAML loader knew it.
"""

from __future__ import annotations

#: ``typing`` itself costs as much as the rest of ``import pipeline_ex``; type checkers
#: treat a module-level ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from pipeline_ex.problems import Location as Location
    from pipeline_ex.problems import Problem as Problem


class PipelineExError(Exception):
    """Base of every error pipeline-ex raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInputError(PipelineExError):
    """The user's input (a workflow, a config, a flag) is wrong; the CLI exits 2."""

    code = "invalid_input"


class DocumentError(InvalidInputError):
    """A document failed to load or validate; carries every problem found."""

    code = "document_invalid"

    def __init__(self, problems: Sequence[Problem], *, code: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        summary = "\n".join(str(p) for p in self.problems) or "invalid document"
        super().__init__(summary, code=code)


class YAMLDocumentError(DocumentError):
    """Not loadable YAML: syntax, an unsafe tag, an alias bomb, a non-mapping root."""

    code = "yaml_invalid"


class SchemaValidationError(DocumentError):
    """Well-formed YAML that does not match the (compiled) JSON Schema."""

    code = "schema_invalid"


class WorkflowSemanticError(DocumentError):
    """Schema-valid, but refers to things that do not exist (step types, steps)."""

    code = "workflow_invalid"


class SchemaExtensionConflict(PipelineExError):
    """Two schema extensions that cannot be merged; names both."""

    code = "schema_conflict"


class UnknownComponentError(KeyError, PipelineExError):
    """A registry lookup missed; lists what is registered so the fix is obvious."""

    code = "unknown_component"

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.available = tuple(sorted(available))
        shown = ", ".join(self.available) or "none"
        PipelineExError.__init__(self, f"unknown {kind} {name!r}; registered: {shown}")

    def __str__(self) -> str:
        return self.message


class UnknownStepTypeError(UnknownComponentError):
    code = "unknown_step_type"


class UnknownProviderError(UnknownComponentError):
    code = "unknown_provider"


class NoSuitableProviderError(PipelineExError):
    code = "no_suitable_provider"


class ComponentConflictError(PipelineExError):
    """A registry write would overwrite a name owned by someone else."""

    code = "component_conflict"


class ProviderError(PipelineExError):
    """A provider could not answer: missing key, rate limit, timeout, API error."""

    code = "provider_error"


class ProviderConfigurationError(ProviderError):
    """Raised before the first step when live mode cannot work (no key, no SDK)."""

    code = "provider_not_configured"


class StepFailedError(PipelineExError):
    """A step failed; the run stopped there.  The CLI exits 1."""

    code = "step_failed"

    def __init__(
        self,
        step_name: str,
        step_type: str,
        reason: str,
        *,
        results: dict[str, Any] | None = None,
        cause_code: str | None = None,
    ) -> None:
        self.step_name = step_name
        self.step_type = step_type
        self.reason = reason
        self.results = results if results is not None else {}
        self.cause_code = cause_code
        super().__init__(f"step {step_name!r} (type {step_type!r}) failed: {reason}")


class PluginError(PipelineExError):
    """Anything that goes wrong with a plugin; ``code`` tells what (see PLUGIN_ERROR_CODES)."""

    code = "plugin_error"
    #: True for errors made by the host's own machinery out of reach of plugin code (an
    #: isolated plugin's host side): their ``code`` is trusted, ``timeout`` included.
    host_raised = False

    def __init__(self, message: str, *, code: str, plugin: str | None = None) -> None:
        super().__init__(message, code=code)
        self.plugin = plugin
        #: The formatted traceback of what the plugin raised, when the guard caught it.
        self.traceback: str | None = None


PLUGIN_ERROR_CODES = (
    "validation_failed",
    "dependency_missing",
    "dependency_cycle",
    "version_conflict",
    "component_conflict",
    "init_failed",
    "signature_invalid",
    "permission_denied",
    "timeout",
    "crashed",
    "not_loaded",
    "in_use",
)


def __getattr__(name: str) -> object:
    # ``Location`` and ``Problem`` are dataclasses; defining them here would import
    # ``dataclasses`` (and ``inspect`` behind it) with every ``import pipeline_ex``.
    if name in ("Location", "Problem"):
        from pipeline_ex import problems

        value: object = getattr(problems, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
