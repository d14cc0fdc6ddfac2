"""``pipeline-ex serve``'s command line: registered, documented, and refusing to start
(exit 2, typed error) when it cannot serve.  Serving itself: tests/server/."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


def test_serve_is_a_command_with_its_bounds_as_options(cli: Invoke) -> None:
    listed = cli("--help")
    assert "serve" in listed.stdout
    result = cli("serve", "--help")
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--plugins",
        "--admin-token-file",
        "--max-body-bytes",
        "--run-timeout-s",
        "--max-concurrent-runs",
        "--grace-s",
    ):
        assert option in result.stdout
    assert "127.0.0.1" in result.stdout


def test_a_missing_serve_extra_names_the_extra(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline_ex.server

    # Forget an imported serving module (and the package's attribute for it), so the
    # command imports it again, with uvicorn unimportable.
    monkeypatch.delitem(sys.modules, "pipeline_ex.server.serving", raising=False)
    monkeypatch.delattr(pipeline_ex.server, "serving", raising=False)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    result = cli("serve", "--port", "0")
    assert result.exit_code == 2
    assert "[extra_missing]" in result.stderr and "pipeline-ex[serve]" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--run-timeout-s", "0"], "--run-timeout-s"),
        (["--grace-s", "nan"], "--grace-s"),
        (["--max-concurrent-runs", "0"], "--max-concurrent-runs"),
        (["--max-body-bytes", "0"], "--max-body-bytes"),
        (["--port", "70000"], "--port"),
    ],
)
def test_bad_bounds_are_exit_2(cli: Invoke, args: list[str], fragment: str) -> None:
    result = cli("serve", *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_a_readable_token_file_is_refused_before_anything_starts(
    cli: Invoke, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123", encoding="utf-8")
    token.chmod(0o604)
    result = cli("serve", "--port", "0", "--admin-token-file", str(token))
    assert result.exit_code == 2
    assert "[admin_token_invalid]" in result.stderr
