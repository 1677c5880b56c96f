"""The control side shared by both stand-ins: JSON in and out, the call log, the faults.

Control routes live under ``/_standin/<api>/``: no auth, no rate limit, never recorded as API
calls. They are the test's and the demo's hands: create orders, read what the client did,
arm faults, change the throttle, reset. A bad control request gets ``400 {"error": ...}``
(with pydantic's ``details`` when a field is wrong); the API routes keep their provider's
error shapes.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from connectors.json_input import JsonInputError, load_json
from connectors.standin.recorder import FaultSpec, Recorder

M = TypeVar("M", bound=BaseModel)


_REFUSALS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    422: web.HTTPUnprocessableEntity,
}


def refuse(message: str, details: Any = None, status: int = 400) -> NoReturn:
    """Stop a control handler with ``{"error": message}`` (and ``details`` when given)."""
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    raise _REFUSALS[status](text=json.dumps(body), content_type="application/json")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The control request's body as a JSON object (an empty body reads as ``{}``)."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        value = load_json(raw)
    except JsonInputError as exc:
        refuse(str(exc))
    if not isinstance(value, dict):
        refuse("the body must be a JSON object")
    return value


def validated(model: type[M], value: Any) -> M:
    """``value`` as ``model``, or a 400 naming each wrong field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        refuse(f"invalid {model.__name__}", details)


def recorder_routes(prefix: str, recorder: Recorder) -> list[web.RouteDef]:
    """``GET <prefix>/calls``, ``GET``/``POST <prefix>/faults`` over ``recorder``."""

    async def calls(request: web.Request) -> web.Response:
        return web.json_response({"calls": recorder.calls_json()})

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": recorder.faults_json()})

    async def arm_fault(request: web.Request) -> web.Response:
        recorder.arm(validated(FaultSpec, await json_object(request)))
        return web.json_response({"faults": recorder.faults_json()}, status=201)

    return [
        web.get(f"{prefix}/calls", calls),
        web.get(f"{prefix}/faults", list_faults),
        web.post(f"{prefix}/faults", arm_fault),
    ]
