"""``pipeline-ex plugins new NAME``: write a working, installable plugin to start from.

The scaffold is a complete distribution (pyproject with the entry point, a typed plugin with
a step type, a provider and a schema extension, tests using the pytest harness, a README)
whose tests pass right after generation, so an author starts from green and changes one
thing at a time.  The templates live beside this module (``scaffold_templates/``).
"""

from __future__ import annotations

import enum
import keyword
import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import Annotated

import typer

from pipeline_ex.builtin import BUILTIN_PLUGINS
from pipeline_ex.errors import InvalidInputError

#: Short enough that every generated line (package, class, step type) stays under 100.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


class Style(enum.StrEnum):
    CLASS = "class"
    MODULE = "module"


class ScaffoldError(InvalidInputError):
    """The scaffold cannot be written as asked (bad name, occupied folder); nothing was."""

    code = "scaffold_refused"


def check_name(name: str) -> None:
    """A plugin name that is also a usable identifier (entry point, package, step type)."""
    if not _NAME.match(name) or name.endswith("_") or "__" in name:
        suggestion = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        hint = f" (for example {suggestion!r})" if suggestion and _NAME.match(suggestion) else ""
        raise ScaffoldError(
            f"plugin name {name!r} must be lowercase letters, digits and single underscores "
            f"(not at the end), start with a letter and have at most 30 characters{hint}",
            code="invalid_plugin_name",
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"plugin name {name!r} is a Python keyword", code="invalid_plugin_name")
    if name in BUILTIN_PLUGINS:
        raise ScaffoldError(
            f"plugin name {name!r} is a built-in plugin's; a config entry with that name "
            "would replace the built-in",
            code="invalid_plugin_name",
        )


def _substitutions(name: str, style: Style) -> dict[str, str]:
    pkg = f"pipeline_ex_{name}"
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Plugin"
    return {
        "name": name,
        "style": style.value,
        "pkg": pkg,
        "dist": "pipeline-ex-" + name.replace("_", "-"),
        "class_name": class_name,
        "step_type": f"{name}_greet",
        "provider": f"{name}_echo",
        "entry": f"{pkg}:{class_name}" if style is Style.CLASS else pkg,
        "plugin_object": f"{pkg}.{class_name}" if style is Style.CLASS else pkg,
    }


def plan_files(name: str, style: Style) -> dict[str, str]:
    """Relative path -> text of every file of the scaffold (nothing is written)."""
    check_name(name)
    values = _substitutions(name, style)
    templates = resources.files("pipeline_ex.cli").joinpath("scaffold_templates")

    def render(template: str) -> str:
        return Template(templates.joinpath(template).read_text("utf-8")).substitute(values)

    pkg = values["pkg"]
    return {
        "pyproject.toml": render("pyproject.toml.tmpl"),
        "README.md": render("README.md.tmpl"),
        f"src/{pkg}/__init__.py": render(f"{style.value}_plugin.py.tmpl"),
        f"src/{pkg}/py.typed": "",
        f"tests/test_{name}.py": render("test_plugin.py.tmpl"),
    }


def write_plugin(name: str, style: Style = Style.CLASS, directory: Path = Path(".")) -> Path:
    """Write the scaffold to ``directory/name`` and return that folder.

    Refused (``ScaffoldError``, nothing written) when the name is unusable or the target
    exists and is not an empty folder.
    """
    files = plan_files(name, style)
    target = Path(directory) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(
            f"{target} already exists and is not an empty folder; choose another --dir or name",
            code="target_not_empty",
        )
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


def new_plugin(
    name: Annotated[str, typer.Argument(help="Plugin name: lowercase, digits, underscores.")],
    style: Annotated[
        Style, typer.Option("--style", help="A Plugin subclass, or a module of functions.")
    ] = Style.CLASS,
    directory: Annotated[
        Path,
        typer.Option("--dir", file_okay=False, help="Where to create the NAME folder."),
    ] = Path("."),
) -> None:
    """Create DIR/NAME: an installable plugin (entry point, typed step type, provider and
    schema extension, tests using the pytest harness, README) whose tests pass as generated.

    Exit 2 when NAME is not a usable plugin name or DIR/NAME exists and is not empty.
    """
    target = write_plugin(name, style, directory)
    typer.echo(f"created {target} ({style.value} style plugin {name!r})")
    typer.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")
