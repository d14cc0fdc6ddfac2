"""The permission vocabulary: parsing, what covers what, and the grant check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.permissions import Permission, check, grants_for, missing, parse


@pytest.mark.parametrize(
    "text",
    [
        "network",
        "network:api.example.com",
        "network:api.example.com:443",
        "filesystem:read:/data",
        "filesystem:write:/tmp/out",
        "subprocess",
        "env:ANTHROPIC_API_KEY",
        "native_code",
    ],
)
def test_the_vocabulary_round_trips(text: str) -> None:
    assert str(parse(text, plugin="p")) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "internet",
        "network:",
        "network:host:http",
        "network:h:70000",
        "filesystem:exec:/x",
        "filesystem:read:",
        "subprocess:ls",
        "env:",
        42,
    ],
)
def test_unknown_permissions_are_validation_failed(text: object) -> None:
    with pytest.raises(PluginError) as info:
        parse(text, plugin="p")
    assert info.value.code == "validation_failed" and "'p'" in info.value.message


def test_what_covers_what() -> None:
    def covers(grant: str, want: str) -> bool:
        return parse(grant, plugin="p").covers(parse(want, plugin="p"))

    assert covers("network", "network:a.com:443")
    assert covers("network:a.com", "network:a.com:443")
    assert not covers("network:a.com:80", "network:a.com:443")
    assert not covers("network:a.com", "network")
    assert covers("filesystem:write:/data", "filesystem:read:/data/x/y")
    assert not covers("filesystem:read:/data", "filesystem:write:/data/x")
    assert not covers("filesystem:read:/data", "filesystem:read:/database")
    assert covers("env:ANTHROPIC_*", "env:ANTHROPIC_API_KEY")
    assert not covers("env:ANTHROPIC_API_KEY", "env:GEMINI_API_KEY")
    assert not covers("subprocess", "native_code")


def test_declaring_more_than_granted_is_permission_denied() -> None:
    grants = {"*": ["env:HOME"], "fetcher": ["network:api.example.com"]}
    declared = [parse(t, plugin="fetcher") for t in ["network:api.example.com:443", "env:HOME"]]
    check("fetcher", declared, grants_for(grants, "fetcher"))
    with pytest.raises(PluginError) as info:
        check("other", declared, grants_for(grants, "other"))
    assert info.value.code == "permission_denied"
    assert (
        "network:api.example.com:443" in info.value.message
        and "env:HOME" not in (info.value.message.split("granted:")[1].split(";")[0])
    )


@given(st.sampled_from(["network", "subprocess", "native_code", "env:X", "filesystem:read:/a"]))
def test_a_permission_covers_itself(text: str) -> None:
    permission = parse(text, plugin="p")
    assert permission.covers(permission)
    assert missing([permission], [permission]) == []
    assert isinstance(permission, Permission)
