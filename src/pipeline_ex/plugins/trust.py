"""The plugin config's ``security:`` section: which plugins are trusted, and with what.

```yaml
security:
  signature_policy: require        # off (default) | warn | require
  trusted_keys: [keys/team.pub]    # Ed25519 public keys, relative to the config file
  grants:                          # what each plugin may declare in ``permissions``
    fetcher: [network:api.example.com:443, env:FETCHER_TOKEN]
    "*": [env:HOME]                # granted to every plugin of this config
```

The signature gate runs before any of a plugin's code is imported: under ``require``
anything but a ``valid`` signature is refused with ``signature_invalid``; under ``warn`` it
is logged and the plugin loads.  A valid plugin directory is then imported from the bytes
that were verified (``verified_import``), so nothing can be swapped in between.  Plugins
from installed distributions are verified through their ``RECORD`` and their package is
imported from the bytes that were hashed, the same way (no bytecode cache read either: pip
lists the ``.pyc`` files it compiles without a hash).  What is still read from disk after
the check: a native extension module (hash-checked, but loaded from its file) and package
data.  An isolated plugin's child is sent the verified bytes and imports from them too.
The host's own code
(``pipeline_ex.*``: the built-in plugins and ``contrib``) is part of the host's
installation and not checked.

Grants are checked only when the section has ``grants`` (a config without it declares no
policy); built-in plugins are granted what they declare.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PluginError
from pipeline_ex.log import get_logger
from pipeline_ex.records import Record, put

if TYPE_CHECKING:
    from pipeline_ex.plugins import signing

logger = get_logger(__name__)

POLICIES = ("off", "warn", "require")

SECURITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "signature_policy": {"enum": list(POLICIES)},
        "trusted_keys": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "grants": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
            },
        },
    },
}


class SecurityPolicy(Record):
    """What one plugin config says about trust; shared by all of its entries."""

    __slots__ = ("grants", "signature_policy", "trusted_keys")
    FIELDS = ("signature_policy", "trusted_keys", "grants")
    signature_policy: str
    trusted_keys: tuple[Path, ...]
    #: plugin name (or ``"*"``) -> granted permissions; ``None`` when none are configured.
    grants: Mapping[str, tuple[str, ...]] | None

    def __init__(
        self,
        signature_policy: str = "off",
        trusted_keys: tuple[Path, ...] = (),
        grants: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        put(self, "signature_policy", signature_policy)
        put(self, "trusted_keys", trusted_keys)
        put(self, "grants", grants)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, base_dir: Path) -> SecurityPolicy:
        """Read a schema-checked ``security:`` mapping; paths relative to ``base_dir``."""
        if not data:
            return cls()
        grants = data.get("grants")
        return cls(
            signature_policy=str(data.get("signature_policy", "off")),
            trusted_keys=tuple((base_dir / key).resolve() for key in data.get("trusted_keys", [])),
            grants=None if grants is None else {k: tuple(v) for k, v in grants.items()},
        )

    @property
    def checks_signatures(self) -> bool:
        return self.signature_policy != "off"

    def judge(self, plugin: str, result: signing.Verification) -> signing.Verification:
        """Apply the policy to a verdict: refuse (``require``), log (``warn``) or pass."""
        if result.ok:
            return result
        message = f"plugin {plugin!r}: signature {result.status}: {result.detail}"
        if self.signature_policy == "require":
            raise PluginError(
                message + " (signature_policy: require)", code="signature_invalid", plugin=plugin
            )
        logger.warning("%s (signature_policy: warn; loading it anyway)", message)
        return result

    def _no_keys(self, plugin: str) -> None:
        if not self.trusted_keys:
            raise PluginError(
                f"plugin {plugin!r}: signature_policy is {self.signature_policy} but "
                "security.trusted_keys lists no key",
                code="signature_invalid",
                plugin=plugin,
            )

    def gate_directory(self, plugin: str, directory: Path) -> signing.Verification:
        """Verify a plugin directory before its code is imported (see the module doc)."""
        self._no_keys(plugin)
        from pipeline_ex.plugins import signing

        return self.judge(plugin, signing.verify_directory(directory, self.trusted_keys))

    def gate_distribution(self, plugin: str, distribution: str | None) -> signing.Verification:
        """Verify the installed distribution a plugin comes from (``None``: not from one)."""
        from pipeline_ex.plugins import signing

        self._no_keys(plugin)
        if distribution is None:
            result = signing.Verification(
                signing.SignatureStatus.UNSIGNED,
                "the plugin's module does not belong to an installed distribution",
            )
        else:
            result = signing.verify_distribution(distribution, self.trusted_keys)
        return self.judge(plugin, result)

    def verified(self, distribution: str) -> signing.Verification | None:
        """``distribution``'s verification when it carries a valid signature by one of the
        trusted keys (no policy applied, nothing logged), else ``None``: may what its
        hashed files say be believed?"""
        from pipeline_ex.plugins import signing

        try:
            result = signing.verify_distribution(distribution, self.trusted_keys)
        except PluginError:
            return None
        return result if result.ok else None

    def check_permissions(self, plugin: str, declared: tuple[str, ...]) -> None:
        """``permission_denied`` when ``plugin`` declares more than this config grants."""
        if not declared:  # nothing asked, nothing to deny (and no vocabulary to import)
            return
        from pipeline_ex.plugins import permissions

        wanted = permissions.parse_all(declared, plugin=plugin)
        if self.grants is None:
            return
        permissions.check(plugin, wanted, permissions.grants_for(self.grants, plugin))
