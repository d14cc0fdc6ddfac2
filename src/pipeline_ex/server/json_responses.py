"""Strict JSON answers: what the server sends is always valid JSON, whatever steps return.

Run results are whatever plugins returned (``nan``, sets, objects, deep nesting), so they
go through :func:`pipeline_ex.results_json.jsonable` like the CLI's ``--json`` output.
Encoding a run's results can call plugin code (an object's ``__str__``), which is why the
run's thread encodes its own answer (:func:`encode`) and the event loop only sends bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from pipeline_ex.results_json import jsonable

MEDIA_TYPE = "application/json"


def encode(body: Any) -> bytes:
    return json.dumps(jsonable(body), ensure_ascii=False, allow_nan=False).encode("utf-8")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return encoded_response(encode(body), status, headers)


def encoded_response(
    content: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(content, status_code=status, headers=headers, media_type=MEDIA_TYPE)
