"""Admin endpoints: ``POST /plugins/NAME/reload|unload|load``, behind a bearer token.

They exist only when the server was started with ``--admin-token-file``; otherwise the
routes are not registered at all (404, like any unknown path), so no configuration
mistake can leave them open.  Authentication is checked before the plugin name is even
looked at: an unauthenticated caller learns nothing about what is loaded.

``load`` starts a plugin the server knows a definition for: an entry of its plugin config
(``enabled: false`` ones included: this is how an operator turns one on), a built-in, or a
plugin that was loaded when the server started (an autoloaded entry point).  ``unload``
takes ``?cascade=true`` to unload the plugins that depend on it first.  All three go
through the plugin manager (one writer, serialized by its lock) on a thread of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline_ex.builtin import BUILTIN_PLUGINS
from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.loader import PluginSpec
from pipeline_ex.server.auth import bearer_token, token_matches
from pipeline_ex.server.context import ServerContext
from pipeline_ex.server.error_responses import error_body, refusal, status_for
from pipeline_ex.server.json_responses import json_response
from pipeline_ex.server.threads import in_thread

ACTIONS = ("reload", "unload", "load")


def known_specs(context: ServerContext) -> dict[str, PluginSpec]:
    """Every plugin definition the server could load again, by name (config entries win)."""
    runtime = context.runtime
    specs = {
        name: PluginSpec(name=name, module=reference, source="<builtin>")
        for name, reference in BUILTIN_PLUGINS.items()
    }
    for record in runtime.plugins.list_plugins():
        if isinstance(record.spec, PluginSpec):
            specs[record.name] = record.spec
    if runtime.plugin_config is not None:
        specs.update({spec.name: spec for spec in runtime.plugin_config.specs})
    return specs


def _load(context: ServerContext, specs: dict[str, PluginSpec], name: str) -> None:
    manager = context.runtime.plugins
    record = manager.registry.get(name)
    if record is not None and record.is_live:
        raise PluginError(
            f"plugin {name!r} is already loaded ({record.status}); reload it instead",
            code="already_loaded",
            plugin=name,
        )
    spec = specs.get(name)
    if spec is None:
        known = ", ".join(sorted(specs)) or "none"
        raise PluginError(
            f"no plugin definition named {name!r} (config entries and built-ins: {known})",
            code="not_loaded",
            plugin=name,
        )
    if record is not None:  # a failed earlier attempt: forget it before trying again
        manager.unload_plugin(name)
    report = manager.load_specs([spec.replace(enabled=True)])
    if name in report.failed:
        raise report.failed[name]


def routes(context: ServerContext) -> list[Route]:
    token = context.settings.admin_token
    if token is None:
        return []
    specs = known_specs(context)
    manager = context.runtime.plugins

    def refused(request: Request) -> Response | None:
        offered = bearer_token(request.headers.get("authorization"))
        if offered is None:
            return json_response(
                refusal("unauthorized", "admin endpoints need Authorization: Bearer TOKEN"),
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="pipeline-ex admin"'},
            )
        if not token_matches(token, offered):
            return json_response(refusal("forbidden", "wrong admin token"), status=403)
        return None

    def endpoint(action: str, work: Callable[[str, Request], Any]) -> Route:
        async def handle(request: Request) -> Response:
            denied = refused(request)
            if denied is not None:
                return denied
            name = request.path_params["name"]
            try:
                await in_thread(lambda: work(name, request), name=f"admin-{action}")
            except Exception as exc:
                return json_response(error_body(exc), status=status_for(exc))
            return json_response({"action": action, "plugin": context.readout.plugin(name)})

        return Route(f"/plugins/{{name}}/{action}", handle, methods=["POST"])

    def cascade(request: Request) -> bool:
        return request.query_params.get("cascade", "").lower() in ("1", "true", "yes")

    return [
        endpoint("reload", lambda name, request: manager.reload_plugin(name)),
        endpoint(
            "unload", lambda name, request: manager.unload_plugin(name, cascade=cascade(request))
        ),
        endpoint("load", lambda name, request: _load(context, specs, name)),
    ]
