"""Plugin metadata: parsed, checked and normalised before the host trusts any of it.

A plugin describes itself (``get_metadata``); a plugin that lies (wrong name, a version that
is not PEP 440, an incompatible ``api_version``, dependencies that do not parse) is refused
with ``validation_failed`` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline_ex.documents import format_path
from pipeline_ex.errors import PluginError
from pipeline_ex.log import get_logger
from pipeline_ex.plugins.behaviour import API_VERSION
from pipeline_ex.records import Record, put

if TYPE_CHECKING:
    # packaging is imported where a version or specifier is parsed: a plugin declaring a
    # plain release number and no dependencies (every built-in) never needs it, and its
    # import was a twelfth of a ``pipeline-ex steps``.
    from packaging.specifiers import SpecifierSet

logger = get_logger(__name__)

#: Release numbers (``1``, ``1.0.0``): PEP 440 versions as they are, no parsing needed.
_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _any_version() -> SpecifierSet:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet()


def _is_version(text: str) -> bool:
    """Whether ``text`` is a PEP 440 version (``packaging``'s verdict)."""
    if _RELEASE.fullmatch(text):
        return True
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


_DEPENDENCY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(.*?)\s*$")


class Dependency(Record):
    """``json_yaml_bridge>=1.0``: a plugin name and an optional PEP 440 specifier.

    ``sources`` says where each part of the specifier was declared (``("config x.yaml",
    ">=1.0")``, ``("get_metadata", ">=2.0")``): the config, the manifest and the metadata
    may all name the same dependency, their specifiers are merged, and a conflict must say
    which declaration is not met.  It takes no part in equality.
    """

    __slots__ = ("name", "sources", "specifier")
    FIELDS = ("name", "specifier", "sources")
    COMPARED = ("name", "specifier")
    name: str
    specifier: SpecifierSet
    sources: tuple[tuple[str, str], ...]

    def __init__(
        self,
        name: str,
        specifier: SpecifierSet | None = None,
        sources: tuple[tuple[str, str], ...] = (),
    ) -> None:
        put(self, "name", name)
        put(self, "specifier", _any_version() if specifier is None else specifier)
        put(self, "sources", sources)

    def __str__(self) -> str:
        return f"{self.name}{self.specifier}"

    def allows(self, version: str) -> bool:
        return _allows(self.specifier, version)

    def merged(self, other: Dependency) -> Dependency:
        """Both requirements at once, remembering each declaration once."""
        sources = self.sources + tuple(s for s in other.sources if s not in self.sources)
        return Dependency(self.name, self.specifier & other.specifier, sources)

    def described(self, version: str | None = None) -> str:
        """``'csvtools>=2.0' (get_metadata)``; given the version found, only the
        declarations it does not meet (those it meets follow as ``also ...: met``)."""
        if not self.sources:
            return repr(str(self))
        parts = [(where, spec) for where, spec in self.sources]
        if version is not None:
            from packaging.specifiers import SpecifierSet

            unmet = [(w, s) for w, s in parts if not _allows(SpecifierSet(s), version)]
            met = [(w, s) for w, s in parts if (w, s) not in unmet]
            if unmet:
                text = _declarations(self.name, unmet)
                return text + (f" (also {_declarations(self.name, met)}: met)" if met else "")
        return _declarations(self.name, parts)


def _declarations(name: str, parts: list[tuple[str, str]]) -> str:
    return " and ".join(f"{name + spec!r} ({where})" for where, spec in parts)


def _allows(specifier: SpecifierSet, version: str) -> bool:
    if not str(specifier):
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) in specifier
    except InvalidVersion:
        return False


def parse_dependency(text: str, *, plugin: str, source: str = "") -> Dependency:
    match = _DEPENDENCY.match(str(text))
    if not match:
        raise PluginError(
            f"plugin {plugin!r}: dependency {text!r} is not 'name' or 'name<specifier>'",
            code="validation_failed",
            plugin=plugin,
        )
    name, spec = match.groups()
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        specifier = SpecifierSet(spec)
        return Dependency(name, specifier, ((source, str(specifier)),) if source else ())
    except InvalidSpecifier:
        raise PluginError(
            f"plugin {plugin!r}: dependency {text!r} has an invalid PEP 440 specifier {spec!r}",
            code="validation_failed",
            plugin=plugin,
        ) from None


def parse_dependencies(
    items: Iterable[Any], *, plugin: str, source: str = ""
) -> tuple[Dependency, ...]:
    """``source`` names where the list was declared, for messages (see ``Dependency``)."""
    if not items:  # most plugins declare none (three lists read per load)
        return ()
    return tuple(parse_dependency(str(item), plugin=plugin, source=source) for item in items)


class PluginMetadata(Record):
    """A plugin's checked self-description (``raw``: the answer it was parsed from)."""

    # A __dict__ filled by one update, not ten slot writes (see ``PluginRecord``).
    FIELDS = (
        "name",
        "version",
        "api_version",
        "description",
        "dependencies",
        "conflicts",
        "capabilities",
        "permissions",
        "config_schema",
        "raw",
    )
    name: str
    version: str
    api_version: int
    description: str
    dependencies: tuple[Dependency, ...]
    conflicts: tuple[str, ...]
    capabilities: tuple[str, ...]
    permissions: tuple[str, ...]
    config_schema: Mapping[str, Any] | None
    raw: Mapping[str, Any]

    def __init__(
        self,
        name: str,
        version: str,
        api_version: int,
        description: str = "",
        dependencies: tuple[Dependency, ...] = (),
        conflicts: tuple[str, ...] = (),
        capabilities: tuple[str, ...] = (),
        permissions: tuple[str, ...] = (),
        config_schema: Mapping[str, Any] | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self.__dict__.update(
            name=name,
            version=version,
            api_version=api_version,
            description=description,
            dependencies=dependencies,
            conflicts=conflicts,
            capabilities=capabilities,
            permissions=permissions,
            config_schema=config_schema,
            raw={} if raw is None else raw,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "api_version": self.api_version,
            "description": self.description,
            "dependencies": [str(d) for d in self.dependencies],
            "conflicts": list(self.conflicts),
            "capabilities": list(self.capabilities),
            "permissions": list(self.permissions),
        }


def _fail(plugin: str, message: str) -> PluginError:
    return PluginError(f"plugin {plugin!r}: {message}", code="validation_failed", plugin=plugin)


def _string_list(raw: Mapping[str, Any], key: str, plugin: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:  # absent or null: most metadata, four times per plugin load
        return ()
    if isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, str):
                break
        else:
            return tuple(value)
    raise _fail(plugin, f"metadata {key!r} must be a list of strings, got {value!r}")


def parse_api_version(value: Any, plugin: str) -> int:
    try:
        major = int(str(value).split(".", 1)[0])
    except ValueError:
        raise _fail(plugin, f"api_version {value!r} is not a version number") from None
    if major != API_VERSION:
        raise _fail(
            plugin,
            f"api_version {value!r} is incompatible with the host's plugin API {API_VERSION}",
        )
    return major


def parse_config_schema(schema: Any, plugin: str) -> Mapping[str, Any]:
    """The declared schema, proven to be a JSON Schema (``validation_failed`` if not)."""
    if not isinstance(schema, Mapping):
        raise PluginError(
            f"plugin {plugin!r}: metadata 'config_schema' must be a JSON Schema (a mapping), "
            f"got {type(schema).__name__}",
            code="validation_failed",
            plugin=plugin,
        )
    # Imported here, by the few plugins that declare a config schema.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(dict(schema))
    except SchemaError as exc:
        where = format_path(tuple(exc.absolute_path)) or "(root)"
        raise PluginError(
            f"plugin {plugin!r}: metadata 'config_schema' is not a valid JSON Schema "
            f"at {where}: {exc.message}",
            code="validation_failed",
            plugin=plugin,
        ) from None
    # A catastrophic pattern runs in C holding the GIL: no deadline can stop it, so it is
    # refused before anything is matched against it (as in schema extensions).
    from pipeline_ex.schema_extensions import pattern_problems

    unsafe = pattern_problems(schema)
    if unsafe:
        raise PluginError(
            f"plugin {plugin!r}: metadata 'config_schema': {'; '.join(unsafe)}",
            code="validation_failed",
            plugin=plugin,
        )
    return schema


def note_missing_api_version(raw: Mapping[str, Any], plugin: str) -> None:
    """A plugin that declares no ``api_version`` is taken to be written for the current
    API (the seed's plugins declare none), but says so once per load: the day the API
    changes, such a plugin is the one that breaks."""
    if "api_version" not in raw:
        logger.warning(
            "plugin %s declares no api_version; loaded as plugin API %d "
            "(add 'api_version': %d to its metadata)",
            plugin,
            API_VERSION,
            API_VERSION,
            extra={"plugin": plugin},
        )


def parse_metadata(raw: Any, *, loaded_as: str) -> PluginMetadata:
    """Check a plugin's self-description against the name it was loaded under."""
    if not isinstance(raw, Mapping):
        raise _fail(loaded_as, f"get_metadata must return a mapping, got {type(raw).__name__}")
    name = raw.get("name", loaded_as)
    if name != loaded_as:
        raise _fail(loaded_as, f"metadata name {name!r} differs from the configured name")
    version = raw.get("version")
    if version is None:
        raise _fail(loaded_as, "metadata has no 'version'")
    if not _is_version(str(version)):
        raise _fail(loaded_as, f"version {version!r} is not a PEP 440 version")
    api_version = parse_api_version(raw.get("api_version", API_VERSION), loaded_as)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(loaded_as, "metadata 'description' must be a string")
    deps = _string_list(raw, "dependencies", loaded_as)
    config_schema = raw.get("config_schema")
    if config_schema is not None:
        config_schema = parse_config_schema(config_schema, loaded_as)
    return PluginMetadata(
        name=loaded_as,
        version=str(version),
        api_version=api_version,
        description=description,
        dependencies=parse_dependencies(deps, plugin=loaded_as, source="get_metadata"),
        conflicts=_string_list(raw, "conflicts", loaded_as),
        capabilities=_string_list(raw, "capabilities", loaded_as),
        permissions=_permissions(raw, loaded_as),
        config_schema=config_schema,
        raw=dict(raw),
    )


def _permissions(raw: Mapping[str, Any], plugin: str) -> tuple[str, ...]:
    """The declared permissions, each in the vocabulary (unknown: ``validation_failed``)."""
    declared = _string_list(raw, "permissions", plugin)
    if declared:  # most plugins ask for none: the vocabulary is not even imported
        from pipeline_ex.plugins.permissions import parse_all

        parse_all(declared, plugin=plugin)
    return declared
