"""``POST /runs`` (run a workflow sent in the body) and ``GET /runs`` (recent runs).

The order of refusals is the order of cost: a wrong ``Content-Type`` (415) and a draining
server (503) are answered before the body is read; a body over the limit (413) before
anything parses it.  The body is read, within ``--body-timeout-s`` (408 after), before a
run slot is taken, so slow clients cannot hold the slots (429 when they are all taken).
Parsing, validating, running and encoding the answer all happen on the run's own thread
(see :mod:`pipeline_ex.server.threads`); the request waits for it at most
``--run-timeout-s``, then answers 504 and stops the run at its next step boundary (see
:mod:`pipeline_ex.server.run_gate`).

Every run is recorded by the Runtime's monitoring with ``source="server"`` under the
``run_id`` of its answer, so the id a client got is the one ``GET /runs``, the status page
and the logs show.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline_ex.cli.errors import EXIT_FAILED, EXIT_INVALID
from pipeline_ex.errors import InvalidInputError, PipelineExError
from pipeline_ex.server.context import ServerContext
from pipeline_ex.server.error_responses import error_body, refusal, status_for
from pipeline_ex.server.json_responses import encode, encoded_response, json_response
from pipeline_ex.server.run_gate import GateClosed, RunStopped, Ticket
from pipeline_ex.server.run_requests import (
    BodyTooLarge,
    UnsupportedMediaType,
    body_kind,
    parse_run_request,
    read_bounded,
)
from pipeline_ex.server.settings import MAX_RUNS_LISTED
from pipeline_ex.server.threads import in_thread

logger = logging.getLogger(__name__)

DEFAULT_RUNS_LISTED = 50
STATUS_BY_STOP = {"run_timeout": 504, "shutting_down": 503}


def _run_job(
    context: ServerContext, ticket: Ticket, body: bytes, kind: str, query: dict[str, str]
) -> tuple[int, bytes]:
    """Parse, run and encode on the run's thread; always releases the ticket's slot."""
    try:
        with tempfile.TemporaryDirectory(prefix="pipeline-ex-run-") as scratch:
            folder = Path(scratch)
            started = time.monotonic()
            try:
                request = parse_run_request(body, kind, query, folder)
                results = context.runtime.run(
                    request.document,
                    inputs=request.inputs,
                    output_dir=folder / "outputs",
                    on_event=ticket.check,
                    source="server",
                    run_id=ticket.id,
                )
                answer = {
                    "run_id": ticket.id,
                    "workflow": request.name,
                    "outcome": "ok",
                    "duration_s": round(time.monotonic() - started, 6),
                    "results": results,
                }
                return 200, encode(answer)
            except Exception as exc:
                return _failure(ticket, exc)
    finally:
        ticket.release()


def _failure(ticket: Ticket, exc: Exception) -> tuple[int, bytes]:
    if ticket.stop_code is not None and _stopped_by_us(exc):
        status = STATUS_BY_STOP.get(ticket.stop_code, 503)
        message = f"the run was stopped: {ticket.stop_reason}"
        return status, encode(refusal(ticket.stop_code, message, exit_code=EXIT_FAILED))
    try:
        return status_for(exc), encode({"run_id": ticket.id, **error_body(exc)})
    except PipelineExError as encoding:  # the partial results would not encode
        return status_for(encoding), encode(error_body(encoding))


def _stopped_by_us(exc: BaseException) -> bool:
    """A ``RunStopped`` raised by the sink, directly or as the cause of a failed step (a
    loop step turns its inner steps' errors into its own failure)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RunStopped):
            return True
        seen = seen.__cause__
    return False


def _gate_refusal(exc: GateClosed) -> Response:
    busy = exc.code == "too_many_runs"
    return json_response(
        refusal(exc.code, exc.message, exit_code=EXIT_FAILED),
        status=429 if busy else 503,
        headers={"Retry-After": "1"} if busy else None,
    )


def _query_limit(request: Request) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return DEFAULT_RUNS_LISTED
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_RUNS_LISTED:
        raise InvalidInputError(f"limit={text!r}: use a whole number from 1 to {MAX_RUNS_LISTED}")
    return value


def routes(context: ServerContext) -> list[Route]:
    settings = context.settings

    async def post_run(request: Request) -> Response:
        try:
            kind = body_kind(request.headers.get("content-type"))
        except UnsupportedMediaType as exc:
            return json_response(error_body(exc), status=415)
        if context.gate.draining:  # no point receiving a body nobody will run
            return _gate_refusal(GateClosed("the server is shutting down", code="shutting_down"))
        # The body is read before a slot is taken, and only for so long: a client trickling
        # its body must not hold one of the few run slots (or the connection) forever.
        try:
            body = await asyncio.wait_for(
                read_bounded(
                    request.stream(), settings.max_body_bytes, request.headers.get("content-length")
                ),
                settings.body_timeout_s,
            )
        except BodyTooLarge as exc:
            return json_response(error_body(exc), status=413)
        except TimeoutError:
            message = f"the body did not arrive within --body-timeout-s {settings.body_timeout_s:g}"
            return json_response(
                refusal("body_timeout", message, exit_code=EXIT_INVALID),
                status=408,
                headers={"Connection": "close"},
            )
        except ClientDisconnect:  # nobody is left to answer; not a server error
            logger.debug("POST /runs: the client went away while sending its body")
            return Response(status_code=400)
        except PipelineExError as exc:  # a bad Content-Length
            return json_response(error_body(exc), status=status_for(exc))
        try:
            ticket = context.gate.admit()
        except GateClosed as exc:
            return _gate_refusal(exc)
        query = dict(request.query_params)
        job = in_thread(
            lambda: _run_job(context, ticket, body, kind, query), name=f"run-{ticket.id[:8]}"
        )
        headers = {"X-Run-Id": ticket.id}
        try:
            status, content = await asyncio.wait_for(asyncio.shield(job), settings.run_timeout_s)
        except TimeoutError:
            ticket.stop(
                "run_timeout",
                f"it ran longer than --run-timeout-s {settings.run_timeout_s:g}",
            )
            message = (
                f"the run took longer than {settings.run_timeout_s:g} s; it is stopped at its "
                "next step (a step in a provider call finishes that call first)"
            )
            return json_response(
                refusal("run_timeout", message, exit_code=EXIT_FAILED), status=504, headers=headers
            )
        except asyncio.CancelledError:  # the server gave up on this request (shutdown)
            ticket.stop("shutting_down", "the server is shutting down")
            raise
        return encoded_response(content, status, headers)

    def list_runs(request: Request) -> Response:
        try:
            limit = _query_limit(request)
        except InvalidInputError as exc:
            return json_response(error_body(exc), status=400)
        return json_response({"runs": context.readout.runs(limit)})

    return [
        Route("/runs", post_run, methods=["POST"]),
        Route("/runs", list_runs, methods=["GET"]),
    ]
