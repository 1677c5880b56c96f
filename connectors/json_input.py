"""JSON from outside (webhooks, marketplace documents, the console's forms), read strictly.

Python's decoder accepts two things a contract record cannot carry, and both surfaced later
as crashes rather than as a refusal naming the input:

- nesting deeper than the interpreter's recursion limit, which it reports as `RecursionError`;
- a ``\\ud800``-style escape that names half of a UTF-16 pair (a lone surrogate): the text
  decodes, but it can never be encoded as UTF-8 (for a hash, a SQLite key or an Avro string).

`load_json` refuses both with a `JsonInputError` saying why, as it refuses text that is not
JSON at all.
"""

from __future__ import annotations

import json
from typing import Any

NESTED_TOO_DEEPLY = "JSON nested too deeply"
LONE_SURROGATE = "a \\u escape in the JSON is half a character (a lone surrogate), not text"


class JsonInputError(ValueError):
    """Why a body is not JSON we accept; the message is meant for whoever sent it."""


def load_json(raw: str | bytes) -> Any:
    """The parsed JSON of ``raw``, or `JsonInputError`."""
    try:
        value = json.loads(raw)
        lone_surrogate = has_lone_surrogate(value)
    except RecursionError:  # the decoder's own guard against deep nesting, not a bug of ours
        raise JsonInputError(NESTED_TOO_DEEPLY) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise JsonInputError(f"not valid JSON: {exc}") from exc
    if lone_surrogate:
        raise JsonInputError(LONE_SURROGATE)
    return value


def has_lone_surrogate(value: Any) -> bool:
    """Whether parsed JSON holds a string (key or value) that is not valid Unicode."""
    try:  # one more pass over the value, in C: cheap next to the request it guards
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
