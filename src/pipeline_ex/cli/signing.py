"""``pipeline-ex plugins keygen | sign | verify``: Ed25519 signatures for plugins.

``verify`` prints exactly one of ``valid``, ``invalid``, ``modified``, ``unsigned`` (Grafana's
statuses) on stdout, the reason on stderr, and exits 0 only for ``valid``, so that a script
can gate on it.  A target is a plugin directory, or ``dist:NAME`` for an installed
distribution (signed through its ``RECORD``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline_ex.cli.errors import EXIT_FAILED
from pipeline_ex.plugins import signing

DIST_PREFIX = "dist:"

TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="PLUGIN",
        help="A plugin directory (with plugin.yaml), or dist:NAME for an installed distribution.",
    ),
]


def keygen(
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Folder for NAME.key and NAME.pub.")
    ],
    name: Annotated[str, typer.Option("--name", help="File name stem of the key pair.")] = (
        "pipeline-ex"
    ),
) -> None:
    """Create an Ed25519 key pair (the private key is written with mode 0600)."""
    private, public = signing.generate_keypair(out, name)
    typer.echo(f"private key: {private}\npublic key:  {public}")
    typer.echo(f"key id: {signing.key_id(signing.load_public_key(public))}")


def sign(
    target: TargetArgument,
    key: Annotated[
        Path,
        typer.Option("--key", exists=True, dir_okay=False, help="The Ed25519 private key."),
    ],
) -> None:
    """Sign a plugin: a manifest of its name, version and every file's SHA-256 and size.

    Refuses symbolic links and compiled bytecode (__pycache__, .pyc) in a plugin directory.
    """
    if target.startswith(DIST_PREFIX):
        written = signing.sign_distribution(target[len(DIST_PREFIX) :], key)
    else:
        written = signing.sign_directory(Path(target), key)
    typer.echo(f"signed: {written}")


def verify(
    target: TargetArgument,
    trusted_key: Annotated[
        list[Path],
        typer.Option(
            "--trusted-key",
            exists=True,
            dir_okay=False,
            help="A trusted Ed25519 public key; repeatable.",
        ),
    ],
) -> None:
    """Print valid, invalid, modified or unsigned; exit 0 only for valid."""
    if target.startswith(DIST_PREFIX):
        result = signing.verify_distribution(target[len(DIST_PREFIX) :], trusted_key)
    else:
        result = signing.verify_directory(Path(target), trusted_key)
    typer.echo(str(result.status))
    typer.echo(result.detail, err=True)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add the three commands to the ``plugins`` command group."""
    app.command("keygen")(keygen)
    app.command("sign")(sign)
    app.command("verify")(verify)
