"""Reading a value a stage stored by whichever release wrote it (rolling upgrades).

During a rolling upgrade, workers of two releases read each other's table values. A newer
worker reads older values: fields added later have defaults. An older worker reads newer
values: :func:`from_stored` drops the fields its models do not know (``extra_forbidden``), at
any depth, and keeps the rest, so the key goes on instead of stopping the stage; what it writes
back is its own version, without those fields. A value wrong in any other way stays refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def from_stored(model: type[M], raw: bytes | str) -> M:
    """``raw`` (JSON) as ``model``, without the fields a newer release added."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        known = without_unknown(json.loads(raw), exc)
    return model.model_validate_json(json.dumps(known))


def without_unknown(data: Any, error: ValidationError) -> Any:
    """``data`` without the fields ``error`` found unknown (``extra_forbidden``: written by a
    newer release). Re-raises ``error`` when it found no unknown field: the value is wrong in
    another way, and stays refused."""
    unknown = [e["loc"] for e in error.errors() if e["type"] == "extra_forbidden"]
    if not unknown:
        raise error
    for loc in unknown:
        _drop(data, loc)
    return data


def _drop(data: Any, loc: Sequence[int | str]) -> None:
    """Delete the field at path ``loc``; a step that is not in ``data`` (the name of a union's
    member in pydantic's error paths) is skipped."""
    for step in loc[:-1]:
        if _has(data, step):
            data = data[step]
    if isinstance(data, dict):
        data.pop(loc[-1], None)


def _has(data: Any, step: int | str) -> bool:
    if isinstance(data, dict):
        return step in data
    return isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)
