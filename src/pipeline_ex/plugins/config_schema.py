"""A plugin's own ``config:`` checked against the JSON Schema it declares, before ``init``.

A plugin may put ``config_schema`` (a JSON Schema, Draft 2020-12 unless its ``$schema``
says otherwise) in its metadata.  The entry's ``config`` mapping is validated against it
before ``init`` runs, so a typo in a config file is reported like any other config error,
``file:line at plugins.NAME.config.KEY: message``, every problem at once, instead of as
whatever the plugin's ``init`` makes of it.  Metadata that can only be read after ``init``
(it needs the state) gets the same check right after ``init``, before anything registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline_ex.documents import format_path
from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.loader import PluginSpec
from pipeline_ex.plugins.metadata import (
    PluginMetadata,
    note_missing_api_version,
    parse_config_schema,
)

if TYPE_CHECKING:
    from pipeline_ex.problems import Problem


def config_problems(spec: PluginSpec, schema: Mapping[str, Any]) -> list[Problem]:
    """Every way ``spec.config`` misses ``schema``, located in the config file."""
    # Imported here, by the few plugins that declare a config schema.
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    from pipeline_ex.problems import Location, Problem

    cls = validator_for(schema, default=Draft202012Validator)
    validator = cls(dict(schema))
    errors = sorted(validator.iter_errors(dict(spec.config)), key=lambda e: list(map(str, e.path)))
    problems = []
    for error in errors:
        inner = tuple(error.absolute_path)
        location = Location(
            spec.source if spec.source else "<load_plugin config>",
            format_path(("plugins", spec.name, "config", *inner)),
            spec.line_of(("config", *inner)),
        )
        problems.append(Problem(error.message, location))
    return problems


def check_config(spec: PluginSpec, schema: Mapping[str, Any]) -> None:
    """Raise ``validation_failed`` listing every problem of the entry's ``config``."""
    problems = config_problems(spec, schema)
    if problems:
        raise PluginError(
            f"plugin {spec.name!r}: config does not match the plugin's config_schema: "
            + "; ".join(str(p) for p in problems),
            code="validation_failed",
            plugin=spec.name,
        )


def check_after_init(spec: PluginSpec, raw: Any, *, before: PluginMetadata | None) -> None:
    """The checks that ``before`` (the metadata read before init, or None when it needed
    the state) could not cover, on the metadata the plugin gave with its state: the manager
    runs this right after init, before anything is registered."""
    if not isinstance(raw, Mapping):
        return
    if before is None:
        note_missing_api_version(raw, spec.name)
    schema = raw.get("config_schema")
    if schema is not None and (before is None or schema != before.config_schema):
        check_config(spec, parse_config_schema(schema, spec.name))
