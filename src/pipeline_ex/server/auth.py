"""The admin endpoints' token: read once from a file, compared in constant time.

The token lives in a file, not on the command line, because a process's arguments are
visible to every user of the machine (``ps``).  For the same reason a token file that other
users can read is refused, as ``ssh`` refuses a private key they could read: the token
would be no secret.  Group permissions are left to the operator (a deploy group sharing a
secret is a legitimate set-up).

Requests carry ``Authorization: Bearer TOKEN``.  No header (or another scheme) is 401 with
a ``WWW-Authenticate`` challenge; a wrong token is 403.  Comparing with
:func:`hmac.compare_digest` on the UTF-8 bytes keeps the time taken independent of how many
leading characters a guess got right.
"""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from pipeline_ex.documents import read_document_bytes
from pipeline_ex.errors import InvalidInputError

#: A token shorter than this is guessable; ``secrets.token_urlsafe(32)`` gives 43 characters.
MIN_TOKEN_CHARS = 16
MAX_TOKEN_FILE_BYTES = 4096


class TokenFileError(InvalidInputError):
    """The ``--admin-token-file`` cannot serve as a secret; the server does not start."""

    code = "admin_token_invalid"


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace and the final newline dropped)."""
    shown = str(path)
    try:
        info = os.stat(path)
        if os.name == "posix" and info.st_mode & (stat.S_IROTH | stat.S_IWOTH):
            mode = stat.S_IMODE(info.st_mode)
            raise TokenFileError(
                f"--admin-token-file {shown}: readable or writable by other users "
                f"(mode {mode:04o}); run chmod 600 on it"
            )
        data = read_document_bytes(path, limit=MAX_TOKEN_FILE_BYTES)
    except OSError as exc:
        raise TokenFileError(
            f"--admin-token-file {shown}: cannot read: {exc.strerror or exc}"
        ) from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise TokenFileError(
            f"--admin-token-file {shown}: larger than {MAX_TOKEN_FILE_BYTES} bytes"
        )
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"--admin-token-file {shown}: not UTF-8 text") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise TokenFileError(
            f"--admin-token-file {shown}: the token must be one word of at least "
            f"{MIN_TOKEN_CHARS} characters (e.g. python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer ...`` header; None for anything else."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def token_matches(expected: str, offered: str) -> bool:
    """Constant-time comparison (bytes: ``compare_digest`` refuses non-ASCII text)."""
    return hmac.compare_digest(expected.encode("utf-8"), offered.encode("utf-8"))
