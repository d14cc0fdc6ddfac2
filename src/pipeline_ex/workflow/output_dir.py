"""Where ``output_to_file`` may write: a workflow's ``output_dir`` is confined to its folder.

Workflow files are shared and downloaded, so the ``output_dir`` they name is untrusted: an
absolute path (``/home/u/.ssh``) or one that climbs out (``../../x``) would let
``output_to_file`` plant files anywhere the user can write.  A workflow's own ``output_dir``
is therefore read relative to the workflow file's folder (the current directory for a
workflow given as a mapping) and must stay inside that folder, symbolic links resolved.
The ``output_dir`` the caller passes to ``run`` (``--output-dir``) is the user's own choice
and is not checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePath

from pipeline_ex.documents import Document
from pipeline_ex.errors import Problem, WorkflowSemanticError

PATH = ("workflow", "output_dir")


def output_dir_problem(document: Document) -> Problem | None:
    """Why the workflow's ``output_dir`` is refused, or ``None`` when it is fine or absent."""
    _, problem = _confine(document)
    return problem


def workflow_output_dir(document: Document) -> Path | None:
    """The workflow's ``output_dir`` as a resolved path inside its folder (``None`` when it
    names none); ``WorkflowSemanticError`` at ``workflow.output_dir`` when it escapes."""
    target, problem = _confine(document)
    if problem is not None:
        raise WorkflowSemanticError([problem])
    return target


def _confine(document: Document) -> tuple[Path | None, Problem | None]:
    workflow = document.data.get("workflow") if isinstance(document.data, Mapping) else None
    value = workflow.get("output_dir") if isinstance(workflow, Mapping) else None
    if not isinstance(value, str):
        return None, None  # absent (the default folder), or a type the schema refuses
    where = "the current directory" if document.file is None else "the workflow's folder"
    if "\x00" in value:
        return None, document.problem(PATH, f"output_dir {value!r} contains a NUL byte")
    if PurePath(value).is_absolute():
        return None, document.problem(
            PATH,
            f"output_dir {value!r} is absolute; a workflow may only name a folder inside "
            f"{where} (pass --output-dir to write elsewhere)",
        )
    try:
        root = document.base_dir.resolve()
        target = (root / value).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop
        return None, document.problem(PATH, f"output_dir {value!r} is not a usable path: {exc}")
    if target != root and root not in target.parents:
        return None, document.problem(
            PATH,
            f"output_dir {value!r} resolves to {target}, outside {where} ({root}); refused "
            "(pass --output-dir to write elsewhere)",
        )
    return target, None
