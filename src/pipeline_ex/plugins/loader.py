"""PluginLoader: from a config entry to a validated plugin object, before any init runs.

Reads the seed's ``plugin_config.yaml`` verbatim (``plugins: {NAME: {module, enabled,
config, dependencies}}``), validated against a JSON Schema with file/path/line errors, and
resolves each entry's ``module:`` (``pkg.mod:Attr``, ``pkg.mod.Attr``, an entry point name
in ``pipeline_ex.plugins`` or one of the seed's Elixir module names) or ``path:`` (a plugin
directory with a ``plugin.yaml`` manifest).  Directory plugins are imported under a private
package name, so two directories with a same-named file never collide, and their modules
leave ``sys.modules`` on unload.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipeline_ex.documents import (
    Document,
    PathKey,
    load_yaml,
    load_yaml_file,
    nearest_line,
    require_mapping,
)
from pipeline_ex.errors import DocumentError, PluginError, SchemaValidationError
from pipeline_ex.monitoring.settings import MONITORING_SCHEMA
from pipeline_ex.plugins import hosting
from pipeline_ex.plugins.adapter import PluginAdapter
from pipeline_ex.plugins.discovery import EntryPointIndex
from pipeline_ex.plugins.hosting import (
    ISOLATION_SCHEMA,
    RESTART_SCHEMA,
    SANDBOX_DEGRADE_SCHEMA,
    PluginHost,
)
from pipeline_ex.plugins.schema_check import DocumentSchema
from pipeline_ex.plugins.trust import SECURITY_SCHEMA, SecurityPolicy
from pipeline_ex.records import MutableRecord, Record

if TYPE_CHECKING:
    # Signature and permission checks run only when a config asks for them: imported there.
    from pipeline_ex.plugins import signing
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources

#: The seed's Elixir module names for built-in plugins, so its config works unchanged.
ELIXIR_ALIASES: dict[str, str] = {
    "Pipeline.Plugins.DSPyPlugin": "pipeline_ex.contrib.dspy:DSPyPlugin",
    "Pipeline.Plugins.EnhancedSchemaValidator": (
        "pipeline_ex.builtin.schema_validator:EnhancedSchemaValidatorPlugin"
    ),
    "Pipeline.Plugins.JSONYAMLBridge": "pipeline_ex.builtin.json_yaml_bridge:JsonYamlBridgePlugin",
    "Pipeline.Plugins.JsonYamlBridge": "pipeline_ex.builtin.json_yaml_bridge:JsonYamlBridgePlugin",
}

PRIVATE_PACKAGE = "_pipeline_ex_dirplugins"

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["plugins"],
    "additionalProperties": False,
    "properties": {
        "autoload": {"type": "boolean"},
        "security": SECURITY_SCHEMA,
        "monitoring": MONITORING_SCHEMA,
        "plugins": {
            "type": ["object", "null"],
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "module": {"type": "string", "minLength": 1},
                    "path": {"type": "string", "minLength": 1},
                    "enabled": {"type": "boolean"},
                    "config": {"type": ["object", "null"]},
                    "dependencies": _STRINGS,
                    "overrides": _STRINGS,
                    "isolation": ISOLATION_SCHEMA,
                    "monitoring": MONITORING_SCHEMA,
                    "restart": RESTART_SCHEMA,
                    "sandbox_degrade": SANDBOX_DEGRADE_SCHEMA,
                    "limits": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "call_timeout_s": {"type": "number", "exclusiveMinimum": 0},
                            "memory_mb": {"type": "integer", "minimum": 16},
                            "cpu_s": {"type": "integer", "minimum": 1},
                            "open_files": {"type": "integer", "minimum": 8},
                        },
                    },
                },
                "oneOf": [{"required": ["module"]}, {"required": ["path"]}],
            },
        },
    },
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "version", "module"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "version": {"type": ["string", "number"]},
        "module": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z_][\w.]*)?$"},
        "description": {"type": "string"},
        "dependencies": _STRINGS,
        "permissions": _STRINGS,
        "api_version": {"type": ["string", "integer"]},
    },
}

_CONFIG = DocumentSchema(CONFIG_SCHEMA)
_MANIFEST = DocumentSchema(MANIFEST_SCHEMA)


_SPEC_FIELDS = (
    "name",
    "module",
    "path",
    "enabled",
    "config",
    "dependencies",
    "overrides",
    "limits",
    "isolation",
    "restart",
    "sandbox_degrade",
    "monitoring",
    "security",
    "source",
    "lines",
)


class PluginSpec(Record):
    """One entry of a plugin config: what to load, under which name, with which config."""

    # A __dict__ rather than slots, filled by one C-level update: fifteen slot writes were
    # half of what reading a config entry cost (see ``PluginRecord``).
    FIELDS = _SPEC_FIELDS
    COMPARED = tuple(f for f in _SPEC_FIELDS if f not in ("security", "lines"))
    name: str
    module: str | None
    path: Path | None
    enabled: bool
    config: Mapping[str, Any]
    dependencies: tuple[str, ...]
    overrides: tuple[str, ...]
    #: ``limits:`` of the entry: ``call_timeout_s`` is the deadline of each lifecycle call
    #: (init, get_*, terminate, health_check); the others apply to isolated plugins.
    limits: Mapping[str, float]
    #: Where the plugin runs: ``in_process`` (default), ``process`` or ``sandbox``; the
    #: isolated tiers also read ``restart`` (``max_restarts``, ``window_s``) and
    #: ``sandbox_degrade`` (start a sandbox whose kernel lacks a layer anyway).
    isolation: str
    restart: Mapping[str, float]
    sandbox_degrade: bool
    #: The entry's ``monitoring:`` overrides (``health_interval_s``, ``error_rate``).
    monitoring: Mapping[str, Any]
    #: The ``security:`` section of the config this entry came from (``None``: a built-in
    #: or a plugin given as an object, which are not checked).  Not compared.
    security: SecurityPolicy | None
    source: str | None
    #: Lines in ``source`` of the entry's paths, relative to the entry: ``()`` is the
    #: entry's own line, ``("config", "volume")`` that of its ``config.volume``.  Not
    #: compared.
    lines: Mapping[PathKey, int]

    def __init__(
        self,
        name: str,
        module: str | None = None,
        path: Path | None = None,
        enabled: bool = True,
        config: Mapping[str, Any] | None = None,
        dependencies: tuple[str, ...] = (),
        overrides: tuple[str, ...] = (),
        limits: Mapping[str, float] | None = None,
        isolation: str = "in_process",
        restart: Mapping[str, float] | None = None,
        sandbox_degrade: bool = False,
        monitoring: Mapping[str, Any] | None = None,
        security: SecurityPolicy | None = None,
        source: str | None = None,
        lines: Mapping[PathKey, int] | None = None,
    ) -> None:
        self.__dict__.update(
            name=name,
            module=module,
            path=path,
            enabled=enabled,
            config={} if config is None else config,
            dependencies=dependencies,
            overrides=overrides,
            limits={} if limits is None else limits,
            isolation=isolation,
            restart={} if restart is None else restart,
            sandbox_degrade=sandbox_degrade,
            monitoring={} if monitoring is None else monitoring,
            security=security,
            source=source,
            lines={} if lines is None else lines,
        )

    @property
    def origin(self) -> str:
        return f"path:{self.path}" if self.path is not None else f"module:{self.module}"

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path`` inside the entry, or of its nearest ancestor that has one."""
        return nearest_line(self.lines, path)


class PluginConfig(Mapping[str, dict[str, Any]]):
    """The parsed config; ``cfg["dspy_plugin"]["config"]`` works as in the seed."""

    def __init__(
        self,
        entries: dict[str, dict[str, Any]],
        specs: list[PluginSpec],
        file: str | None,
        *,
        autoload: bool = False,
        security: SecurityPolicy | None = None,
        monitoring: Mapping[str, Any] | None = None,
    ):
        self._entries = entries
        self.specs = specs
        self.file = file
        #: ``autoload: true``: every installed entry point not named here is loaded too.
        self.autoload = autoload
        #: The ``security:`` section: signature policy, trusted keys, grants.
        self.security = security if security is not None else SecurityPolicy()
        #: The top-level ``monitoring:`` section (health interval, error-rate threshold).
        self.monitoring: dict[str, Any] = dict(monitoring or {})

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def enabled(self) -> list[PluginSpec]:
        return [s for s in self.specs if s.enabled]


class ResolvedPlugin(MutableRecord):
    """A plugin ready to be initialised: its adapter and what loading it imported."""

    __slots__ = ("adapter", "manifest", "module_names", "origin", "signature", "sources", "spec")
    FIELDS = ("spec", "adapter", "origin", "module_names", "manifest", "signature", "sources")

    def __init__(
        self,
        spec: PluginSpec,
        adapter: PluginHost,
        origin: str,
        module_names: tuple[str, ...] = (),
        manifest: Mapping[str, Any] | None = None,
        signature: str | None = None,
        sources: tuple[VerifiedSources, ...] = (),
    ) -> None:
        self.spec = spec
        self.adapter = adapter
        self.origin = origin
        self.module_names = module_names
        self.manifest = manifest
        #: The signature check's verdict (``valid``, ...), or ``None`` when none was made.
        self.signature = signature
        #: What serves an in-process plugin's distribution from its verified bytes (the
        #: manager puts them out of force when no loaded plugin needs them any more).
        self.sources = sources


class PluginLoader:
    def __init__(self, entry_points: EntryPointIndex | None = None) -> None:
        self.entry_points = entry_points if entry_points is not None else EntryPointIndex()

    # -- configuration ------------------------------------------------------------------
    # Class methods, so that the seed's ``PluginLoader.load_config("plugin_config.yaml")``
    # works as written (and ``loader.load_config(...)`` on an instance too).
    @classmethod
    def load_config(cls, path: str | Path) -> PluginConfig:
        document = load_yaml_file(path)
        return cls.config_from_document(document)

    @classmethod
    def config_from_text(cls, text: str, file: str | None = None) -> PluginConfig:
        return cls.config_from_document(load_yaml(text, file))

    @classmethod
    def config_from_mapping(cls, data: Mapping[str, Any], file: str | None = None) -> PluginConfig:
        return cls.config_from_document(Document(dict(data), file, {}))

    @classmethod
    def config_from_document(cls, document: Document) -> PluginConfig:
        require_mapping(document, "a plugin config")
        plugins = document.data.get("plugins")
        if isinstance(plugins, Mapping):
            odd = [k for k in plugins if not isinstance(k, str)]
            if odd:
                raise SchemaValidationError(
                    [
                        document.problem(
                            ("plugins",),
                            f"plugin name {k!r} was read as a {type(k).__name__}; quote it",
                        )
                        for k in odd
                    ]
                )
        _CONFIG.check(document)
        base = document.base_dir
        security = SecurityPolicy.from_mapping(document.data.get("security"), base)
        entries: dict[str, dict[str, Any]] = {}
        specs: list[PluginSpec] = []
        # Each entry's recorded lines, relative to the entry, in one pass over the
        # document's lines (a pass per entry made a long config quadratic).
        lines_of: dict[Any, dict[PathKey, int]] = {}
        for path, line in document.lines.items():
            if len(path) >= 2 and path[0] == "plugins":
                lines_of.setdefault(path[1], {})[path[2:]] = line
        for name, raw in (document.data.get("plugins") or {}).items():
            entry = dict(raw)
            entry.setdefault("enabled", True)
            entry["config"] = dict(entry.get("config") or {})
            entry.setdefault("dependencies", [])
            entries[name] = entry
            specs.append(
                PluginSpec(
                    name=name,
                    module=entry.get("module"),
                    path=(base / entry["path"]).resolve() if "path" in entry else None,
                    enabled=entry["enabled"],
                    config=entry["config"],
                    dependencies=tuple(entry["dependencies"]),
                    overrides=tuple(entry.get("overrides", ())),
                    limits=dict(entry.get("limits") or {}),
                    isolation=str(entry.get("isolation", "in_process")),
                    restart=dict(entry.get("restart") or {}),
                    sandbox_degrade=entry.get("sandbox_degrade") in ("allow", True),
                    monitoring=dict(entry.get("monitoring") or {}),
                    security=security,
                    source=document.file,
                    lines=lines_of.get(name, {}),
                )
            )
        autoload = bool(document.data.get("autoload", False))
        return PluginConfig(
            entries,
            specs,
            document.file,
            autoload=autoload,
            security=security,
            monitoring=document.data.get("monitoring"),
        )

    def autoload_specs(
        self, config: PluginConfig, *, taken: Iterable[str] = ()
    ) -> list[PluginSpec]:
        """With ``autoload: true``, a spec per installed entry point that neither the
        config nor ``taken`` (the built-ins) names, loaded by its entry point name."""
        if not config.autoload:
            return []
        named = {s.name for s in config.specs} | set(taken)
        return [
            PluginSpec(name=name, module=name, source="<autoload>", security=config.security)
            for name in self.entry_points.names()
            if name not in named
        ]

    # -- resolution ---------------------------------------------------------------------
    def resolve(
        self,
        spec: PluginSpec,
        generation: int = 0,
        on_failed: Callable[[PluginError], None] | None = None,
    ) -> ResolvedPlugin:
        """Import the plugin's code and check its contract; nothing is initialised yet.

        ``generation`` > 0 imports a directory plugin under a fresh private name (a reload
        that must not disturb the modules the running version uses).  An isolated entry
        (``isolation: process | sandbox``) is started in a child process instead; its
        ``on_failed`` hears when the child's restart budget is used up.
        """
        if hosting.is_isolated(spec):
            return self._resolve_isolated(spec, on_failed)
        if spec.path is not None:
            return self._resolve_directory(spec, generation)
        if spec.module is None:
            raise PluginError(
                f"plugin {spec.name!r}: nothing to load: give a module (dotted path or entry "
                "point name) or a plugin directory path",
                code="validation_failed",
                plugin=spec.name,
            )
        signature, sources = self.gate_module(spec)
        if not sources:
            target, origin = self._resolve_module(spec.name, spec.module)
            adapter = PluginAdapter.from_target(target, plugin=spec.name)
            return ResolvedPlugin(spec, adapter, origin, signature=signature)
        # The import compiles the bytes that were hashed: no window to swap a file in, and
        # no bytecode cache read (a planted .pyc would run instead of the source).
        from pipeline_ex.plugins.verified_import import let_go, serve

        serve(spec.name, sources)
        try:
            target, origin = self._resolve_module(spec.name, spec.module)
            adapter = PluginAdapter.from_target(target, plugin=spec.name)
        except BaseException:
            let_go(sources)
            raise
        return ResolvedPlugin(spec, adapter, origin, signature=signature, sources=sources)

    def _resolve_isolated(
        self, spec: PluginSpec, on_failed: Callable[[PluginError], None] | None
    ) -> ResolvedPlugin:
        """The same checks as in-process (manifest permissions, the signature gate) before
        the child is started; the child then imports the plugin, from the bytes that were
        verified when a signature was checked (they travel in its bootstrap frame)."""
        signature: str | None = None
        reference: str | None = None
        sources: tuple[VerifiedSources, ...] = ()
        if spec.path is not None:
            verdict = self._gate_directory(spec, self._read_manifest(spec))
            signature = str(verdict.status) if verdict is not None else None
            if verdict is not None and verdict.ok:
                from pipeline_ex.plugins.verified_import import (
                    CHILD_DIRECTORY_PACKAGE,
                    directory_sources,
                    token_of,
                )

                sources = (
                    directory_sources(
                        CHILD_DIRECTORY_PACKAGE,
                        verdict.files,
                        spec.path,
                        token=token_of(verdict.manifest),
                    ),
                )
            origin = f"{spec.isolation}:path:{spec.path}"
        elif spec.module is not None:
            signature, sources = self.gate_module(spec)
            reference = ELIXIR_ALIASES.get(spec.module, spec.module)
            entry = self.entry_points.get(reference) if ":" not in reference else None
            if entry is not None:
                reference = entry.value
            origin = f"{spec.isolation}:module:{spec.module}"
        else:
            raise PluginError(
                f"plugin {spec.name!r}: nothing to load: give a module or a path",
                code="validation_failed",
                plugin=spec.name,
            )
        host = hosting.start(
            spec, reference=reference, directory=spec.path, on_failed=on_failed, sources=sources
        )
        return ResolvedPlugin(spec, host, origin, signature=signature)

    def gate_module(self, spec: PluginSpec) -> tuple[str | None, tuple[VerifiedSources, ...]]:
        """The signature gate for a plugin from a module or an entry point: its installed
        distribution is verified before the module is imported (the host's own code is
        not checked).  Returns the verdict (``None``: none asked for) and, for a valid
        one, the finders that serve the distribution's modules from the verified bytes
        (not installed yet: the caller decides where the import happens)."""
        assert spec.module is not None
        if spec.security is None or not spec.security.checks_signatures:
            return None, ()
        reference = ELIXIR_ALIASES.get(spec.module, spec.module)
        entry = self.entry_points.get(reference) if ":" not in reference else None
        module_name = (entry.value if entry is not None else reference).partition(":")[0]
        if module_name.split(".")[0] == "pipeline_ex":
            return None, ()
        if entry is not None and entry.distribution:
            distribution: str | None = entry.distribution
        else:
            distribution = distribution_of(module_name)
        verdict = spec.security.gate_distribution(spec.name, distribution)
        if not verdict.ok or distribution is None:
            return str(verdict.status), ()
        from importlib.machinery import EXTENSION_SUFFIXES, PathFinder

        from pipeline_ex.plugins import signing
        from pipeline_ex.plugins.verified_import import sources_of

        top = module_name.split(".")[0]
        sources = sources_of(distribution, verdict, trusted=spec.security.verified)
        # The served package the plugin's module comes from (the longest name covering it).
        covering = next(
            (name for name in _parents(module_name) if name in sources),
            None,
        )
        # What an import would find on sys.path, asked of the path itself (what is in force
        # stays as it is until these checks pass).
        found = PathFinder.find_spec(top)
        origin = found.origin if found is not None else None
        problem = None
        if covering is not None and not sources[covering].serves(module_name):
            # covered only by a package that passes names on (a namespace, a shared
            # package): the module itself is not among the verified files
            problem = f"{module_name!r} is not among the verified files of distribution "
            problem += f"{distribution!r}"
        elif covering is not None:
            if covering == top and origin is not None:
                if not signing.provided_by(distribution, origin):
                    problem = f"importing {top!r} would load {origin}, which is not a file "
                    problem += f"of the verified distribution {distribution!r} (shadowed)"
                elif not _same_file(sources[top].filename(top), origin):
                    # its code on disk is not among the hashed files (RECORD leaves it out)
                    problem = f"{top!r} ({origin}) cannot be imported from the verified files "
                    problem += f"of distribution {distribution!r}"
        elif not (
            origin is not None
            and origin.endswith(tuple(EXTENSION_SUFFIXES))
            and signing.provided_by(distribution, origin)
        ):
            # neither served from the verified bytes nor a verified native extension:
            # refused rather than imported from disk (bytecode cache included)
            problem = f"{module_name!r} ({origin}) cannot be imported from the verified files "
            problem += f"of distribution {distribution!r}"
        if problem is not None:
            verdict = spec.security.judge(
                spec.name, signing.Verification(signing.SignatureStatus.MODIFIED, problem)
            )
            return str(verdict.status), ()
        return str(verdict.status), tuple(sources.values())

    def _resolve_module(self, plugin: str, module: str) -> tuple[Any, str]:
        reference = ELIXIR_ALIASES.get(module, module)
        if ":" not in reference:
            entry = self.entry_points.get(reference)
            if entry is not None:
                try:
                    return entry.load(), f"entry_point:{reference}"
                except Exception as exc:
                    raise _import_failure(plugin, f"entry point {reference!r}", exc) from exc
        try:
            return import_reference(plugin, reference), f"module:{module}"
        except PluginError as exc:
            missing = exc.__cause__
            top = reference.partition(":")[0].split(".")[0]
            if isinstance(missing, ModuleNotFoundError) and missing.name == top:
                raise self._no_such_plugin(plugin, reference) from missing
            raise

    def _no_such_plugin(self, plugin: str, reference: str) -> PluginError:
        """Neither an installed entry point nor an importable module: most often a typo in
        an entry point name, so say that and list what is installed."""
        import difflib  # only for this message: not worth every start-up's import

        installed = self.entry_points.names()
        close = difflib.get_close_matches(reference, [*installed, *ELIXIR_ALIASES], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if ":" in reference or "." in reference:
            what = f"cannot import {reference.partition(':')[0]!r}: no module of that name"
        else:
            what = (
                f"there is no entry point {reference!r} in group {self.entry_points.group!r} "
                "and no module of that name"
            )
        return PluginError(
            f"plugin {plugin!r}: {what}; installed entry points: "
            f"{', '.join(installed) or 'none'}{hint}",
            code="validation_failed",
            plugin=plugin,
        )

    @staticmethod
    def _gate_directory(
        spec: PluginSpec, manifest: Mapping[str, Any]
    ) -> signing.Verification | None:
        """Before any of a directory plugin's code runs, in-process or in a child: the
        permissions its manifest asks for (known words; granted, when the config grants),
        and who signed it (``None`` when the config's policy checks no signature)."""
        declared = tuple(manifest.get("permissions", ()))
        if spec.security is None:
            from pipeline_ex.plugins.permissions import parse_all

            parse_all(declared, plugin=spec.name)
            return None
        spec.security.check_permissions(spec.name, declared)
        if not spec.security.checks_signatures:
            return None
        assert spec.path is not None
        return spec.security.gate_directory(spec.name, spec.path)

    @staticmethod
    def _read_manifest(spec: PluginSpec) -> dict[str, Any]:
        """The directory's ``plugin.yaml``, schema-checked and naming this plugin."""
        directory = spec.path
        assert directory is not None
        manifest_file = directory / "plugin.yaml"
        if not manifest_file.is_file():
            if not directory.exists():
                problem = f"plugin directory {directory} does not exist"
            elif not directory.is_dir():
                problem = f"{directory} is not a directory (a plugin path names a directory)"
            else:
                problem = f"{directory} has no plugin.yaml manifest"
            raise PluginError(
                f"plugin {spec.name!r}: {problem}", code="validation_failed", plugin=spec.name
            )
        try:
            document = load_yaml_file(manifest_file)
            require_mapping(document, "a plugin manifest")
            _MANIFEST.check(document)
        except DocumentError as exc:
            raise PluginError(
                f"plugin {spec.name!r}: invalid manifest: {exc.message}",
                code="validation_failed",
                plugin=spec.name,
            ) from exc
        manifest = dict(document.data)
        if manifest["name"] != spec.name:
            raise PluginError(
                f"plugin {spec.name!r}: manifest {manifest_file} names it {manifest['name']!r}",
                code="validation_failed",
                plugin=spec.name,
            )
        return manifest

    def _resolve_directory(self, spec: PluginSpec, generation: int) -> ResolvedPlugin:
        directory = spec.path
        assert directory is not None
        manifest = self._read_manifest(spec)
        stem, _, attr = str(manifest["module"]).partition(":")
        package = private_package_name(spec.name, directory)
        if generation:
            package += f"_g{generation}"
        verdict = self._gate_directory(spec, manifest)
        signature = str(verdict.status) if verdict is not None else None
        verified = verdict.files if verdict is not None and verdict.ok else None
        module = import_directory_module(spec.name, directory, package, stem, verified)
        target: Any = module
        if attr:
            target = _get_attribute(spec.name, module, attr)
        names = tuple(n for n in sys.modules if n == package or n.startswith(package + "."))
        adapter = PluginAdapter.from_target(target, plugin=spec.name)
        return ResolvedPlugin(
            spec, adapter, f"path:{directory}", names, manifest, signature=signature
        )


def private_package_name(plugin: str, directory: Path) -> str:
    import hashlib  # only path plugins need it: not worth every start-up's import

    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
    safe = re.sub(r"\W", "_", plugin)
    return f"{PRIVATE_PACKAGE}.{safe}_{digest}"


def import_directory_module(
    plugin: str,
    directory: Path,
    package: str,
    stem: str,
    verified: Mapping[str, bytes] | None = None,
) -> ModuleType:
    """Import ``stem`` from ``directory`` as ``package.stem`` (a private namespace).

    With ``verified`` (the files a signature check read), the package is served from those
    bytes only (``VerifiedSources``): nothing is read from the directory again.
    """
    if PRIVATE_PACKAGE not in sys.modules:
        root = ModuleType(PRIVATE_PACKAGE)
        root.__path__ = []
        sys.modules[PRIVATE_PACKAGE] = root
    if verified is not None:
        from pipeline_ex.plugins.verified_import import IMPORTS, directory_sources

        served = IMPORTS.serving(package)
        sources = directory_sources(package, verified, directory)
        if served is None or served.files != sources.files:
            # Imported before from other bytes (unsigned, by another config): those
            # modules go, the verified ones are imported instead.
            unload_modules(package)
            sources.install()
    if package not in sys.modules:
        spec = importlib.util.spec_from_loader(package, loader=None, is_package=True)
        assert spec is not None
        pkg = importlib.util.module_from_spec(spec)
        pkg.__path__ = [] if verified is not None else [str(directory)]
        sys.modules[package] = pkg
    try:
        return importlib.import_module(f"{package}.{stem}")
    except Exception as exc:
        unload_modules(package)
        failure = _import_failure(plugin, f"{directory / stem}.py", exc)
        sibling = _sibling_named(directory, exc)
        if sibling is not None:
            module, file = sibling
            failure = PluginError(
                f"{failure.message}; {file} is a file of the plugin directory, which is "
                f"imported as a private package: import it relatively "
                f"('from . import {module}' or 'from .{module} import ...')",
                code=failure.code,
                plugin=plugin,
            )
        raise failure from exc


def _sibling_named(directory: Path, exc: BaseException) -> tuple[str, str] | None:
    """The plugin file that an absolute ``import helpers`` meant, if there is one.

    Directory plugins are imported under a private package name so that two directories
    with a same-named file never collide; the price is that siblings must be imported
    relatively, which this turns from a bare ``No module named 'helpers'`` into a hint.
    """
    if not isinstance(exc, ModuleNotFoundError) or not exc.name or "." in exc.name:
        return None
    for candidate in (directory / f"{exc.name}.py", directory / exc.name / "__init__.py"):
        if candidate.is_file():
            return exc.name, candidate.relative_to(directory).as_posix()
    return None


def _parents(module_name: str) -> list[str]:
    """``a.b.c`` -> ``["a.b.c", "a.b", "a"]``: the longest first."""
    parts = module_name.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _same_file(one: str | None, other: str) -> bool:
    return one is not None and Path(one).resolve() == Path(other).resolve()


def distribution_of(module_name: str) -> str | None:
    """The installed distribution that provides ``module_name``'s top-level package."""
    from pipeline_ex.plugins.verified_import import owners

    names = owners().get(module_name.split(".")[0])
    return names[0] if names else None


def unload_modules(package: str) -> list[str]:
    """Forget every module under ``package`` so the next load imports fresh code."""
    gone = [n for n in list(sys.modules) if n == package or n.startswith(package + ".")]
    for name in gone:
        sys.modules.pop(name, None)
    from pipeline_ex.plugins.isolation.verified_sources import IMPORTS

    IMPORTS.drop(package)
    importlib.invalidate_caches()
    return gone


def _import_failure(plugin: str, what: str, exc: BaseException) -> PluginError:
    return PluginError(
        f"plugin {plugin!r}: cannot import {what}: {type(exc).__name__}: {exc}",
        code="validation_failed",
        plugin=plugin,
    )


def _get_attribute(plugin: str, module: ModuleType, attr: str) -> Any:
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(
                f"plugin {plugin!r}: {module.__name__} has no attribute {attr!r}",
                code="validation_failed",
                plugin=plugin,
            ) from None
    return target


def import_reference(plugin: str, reference: str) -> Any:
    """``pkg.mod:Attr`` or ``pkg.mod.Attr`` or ``pkg.mod`` -> the object."""
    if ":" in reference:
        module_name, _, attr = reference.partition(":")
    else:
        module_name, attr = reference, ""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if attr or "." not in module_name or exc.name != module_name:
            raise _import_failure(plugin, repr(module_name), exc) from exc
        module_name, _, attr = module_name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except Exception as inner:
            raise _import_failure(plugin, repr(reference), inner) from inner
    except Exception as exc:
        raise _import_failure(plugin, repr(module_name), exc) from exc
    return _get_attribute(plugin, module, attr) if attr else module
