"""What every console handler shares (the workers, the feed, the rule store) and the small
helpers that keep their answers uniform: JSON in, JSON out, errors as ``{ok, error}``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.json_input import has_lone_surrogate
from dom.console import validate
from dom.console.feed import FeedState
from dom.console.health import HealthSampler
from dom.console.rule_store import RuleStore
from dom.console.workers import WorkerClient

MAX_BODY = 64 * 1024


@dataclass
class Console:
    client: WorkerClient
    feed: FeedState
    store: RuleStore
    grafana_url: str | None = None
    topic_prefix: str = ""
    sampler: HealthSampler = field(init=False)
    publish_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.sampler = HealthSampler(self.client, self.topic_prefix)


CONSOLE = web.AppKey("console", Console)


def json_error(
    status: int, message: str, errors: list[dict[str, str]] | None = None
) -> web.Response:
    return web.json_response({"ok": False, "error": message, "errors": errors or []}, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; InputError when it is not one."""
    try:
        body = json.loads(await request.read())
        lone_surrogate = has_lone_surrogate(body)  # "\ud800" decodes, but no record carries it
    except (ValueError, UnicodeDecodeError):
        raise validate.problem("body", "the request body is not valid JSON") from None
    except RecursionError:  # the decoder's own guard against deep nesting, not a bug of ours
        raise validate.problem("body", "the request body is nested too deeply") from None
    if lone_surrogate:
        raise validate.problem(
            "body", "the request body has a \\u escape that is half a character (a lone surrogate)"
        )
    if not isinstance(body, dict):
        raise validate.problem("body", "expected a JSON object")
    return body
