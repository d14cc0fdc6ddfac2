"""Admin endpoints: absent without a token, 401 without credentials, 403 with wrong ones,
and reload / unload / load through the plugin manager when authorized."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_harness import TOKEN

from pipeline_ex.errors import InvalidInputError
from pipeline_ex.server.auth import bearer_token, read_token_file, token_matches

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACTIONS = ("reload", "unload", "load")


def test_admin_endpoints_do_not_exist_without_a_token(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime() as live, live.client() as client:
        for action in ACTIONS:
            reply = client.post(f"/plugins/flippy/{action}", headers=AUTH)
            assert reply.status_code == 404, action
            assert reply.json()["error"]["code"] == "not_found"
        assert client.get("/plugins/flippy").json()["status"] == "active"  # untouched


@pytest.mark.parametrize("action", ACTIONS)
def test_admin_is_refused_without_and_with_a_wrong_token(
    serve_runtime: Callable[..., Any], action: str
) -> None:
    with serve_runtime(admin_token=TOKEN) as live, live.client() as client:
        missing = client.post(f"/plugins/flippy/{action}")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        other_scheme = client.post(
            f"/plugins/flippy/{action}", headers={"Authorization": f"Basic {TOKEN}"}
        )
        assert other_scheme.status_code == 401
        wrong = client.post(
            f"/plugins/flippy/{action}", headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"}
        )
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
        unknown = client.post(
            f"/plugins/no_such/{action}", headers={"Authorization": "Bearer nope"}
        )
        assert unknown.status_code == 403  # nothing is revealed before authentication
        assert client.get("/plugins/flippy").json()["status"] == "active"


def test_unload_load_and_reload_with_the_token(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime(admin_token=TOKEN) as live, live.client() as client:
        unloaded = client.post("/plugins/flippy/unload?cascade=true", headers=AUTH)
        assert unloaded.status_code == 200, unloaded.text
        assert client.get("/plugins/flippy_fan").json()["status"] == "unloaded"
        assert unloaded.json()["action"] == "unload"
        steps = "workflow:\n  name: s\n  steps:\n    - {name: z, type: sleep, seconds: 0}\n"
        gone = client.post("/runs", content=steps, headers={"Content-Type": "application/yaml"})
        assert gone.status_code == 400 and gone.json()["error"]["code"] == "workflow_invalid"

        loaded = client.post("/plugins/flippy/load", headers=AUTH)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["plugin"]["status"] == "active"
        again = client.post("/plugins/flippy/load", headers=AUTH)
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_loaded"

        reloaded = client.post("/plugins/flippy/reload", headers=AUTH)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["plugin"]["status"] == "active"
        back = client.post("/runs", content=steps, headers={"Content-Type": "application/yaml"})
        assert back.status_code == 200, back.text


def test_admin_errors_are_typed(serve_runtime: Callable[..., Any]) -> None:
    with serve_runtime(admin_token=TOKEN) as live, live.client() as client:
        unknown = client.post("/plugins/no_such/reload", headers=AUTH)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_loaded"
        unknown_load = client.post("/plugins/no_such/load", headers=AUTH)
        assert unknown_load.status_code == 404
        needed = client.post("/plugins/flippy/unload", headers=AUTH)  # flippy_fan needs it
        assert needed.status_code == 409, needed.text
        assert needed.json()["error"]["code"] == "in_use"


def _token_file(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "token"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_the_token_file_is_read_and_checked(tmp_path: Path) -> None:
    assert read_token_file(_token_file(tmp_path, TOKEN + "\n", 0o600)) == TOKEN
    assert read_token_file(_token_file(tmp_path, TOKEN, 0o640)) == TOKEN  # group: operator's call


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_a_token_file_other_users_can_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(InvalidInputError) as info:
        read_token_file(_token_file(tmp_path, TOKEN, mode))
    assert info.value.code == "admin_token_invalid"
    assert f"{stat.S_IMODE(mode):04o}" in info.value.message and "chmod 600" in info.value.message


@pytest.mark.parametrize("text", ["", "short", "two words here!!!", "\xff"])
def test_a_weak_or_malformed_token_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        read_token_file(_token_file(tmp_path, text, 0o600))
    assert info.value.code == "admin_token_invalid"


def test_a_missing_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_token_file(tmp_path / "absent")


def test_bearer_parsing_and_comparison() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None
    assert token_matches("abc", "abc") and not token_matches("abc", "abd")
    assert not token_matches("abc", "ab\u00e9")  # non-ASCII offers compare, not raise
