"""The error taxonomy: every failure a user can cause has a type and a stable ``code``.

Callers (the CLI, tests, library users) branch on ``code`` rather than on message text, so
codes never change once published.  Errors about a document carry where it went wrong:
the file, the path inside the document (``workflow.steps[2].prompt[0].step``) and the line
when the YAML loader knew it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class Location:
    """Where in a document a problem is: file, path inside the document, line (1-based)."""

    file: str | None = None
    path: str = ""
    line: int | None = None

    def __str__(self) -> str:
        text = self.file or "<document>"
        if self.line is not None:
            text += f":{self.line}"
        if self.path:
            text += f" at {self.path}"
        return text


@dataclass(frozen=True)
class Problem:
    """One finding of validation: a message at a location."""

    message: str
    location: Location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


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
