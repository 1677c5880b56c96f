"""The console's channel policies: what each sales channel may sell, seen and changed live, as
``dom channels list|set|reset`` do.

A policy is a ``ChannelPolicy`` record on the compacted ``dom.channels.v1``, keyed by its
channel; a reset is a tombstone (every location serves, nothing is held back). Nothing here
changes a worker: every worker follows the topic and applies a change within seconds, with no
restart. A change records the signed-in user (an ``updated_by`` in the body is ignored). The
form sends the whole policy: a field left out is empty (no locations named, no buffer).

Reading the topic to its end and producing block, so both run on a thread, through the
``READER`` and ``WRITER`` the app holds: ``dom channels``' own ``live_policies`` and
``write_policy`` (tests put fakes there, and need no broker).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from aiohttp import web
from pydantic import ValidationError

from config.settings import Settings
from dom.channels_cli import live_policies, write_policy
from dom.console import validate
from dom.console.login_api import current_user
from dom.console.state import json_body, json_error
from schemas.enums import Channel, LocationKind
from schemas.sellable import ChannelPolicy
from streams.core.channels.policy import default_policy, from_record

log = logging.getLogger(__name__)

PolicyReader = Callable[[], dict[str, ChannelPolicy]]
"""The policies in force by channel name, folded from the topic (a blocking call)."""
PolicyWriter = Callable[[Channel, ChannelPolicy | None], None]
"""Produces a channel's policy, or its tombstone (None); raises ClickException when the broker
did not confirm it (a blocking call)."""
READER: web.AppKey[PolicyReader] = web.AppKey("channel_policy_reader")
WRITER: web.AppKey[PolicyWriter] = web.AppKey("channel_policy_writer")

LOCATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,255}")
MAX_LOCATIONS = 1000
INT32_MAX = 2**31 - 1
KINDS = ", ".join(k.value for k in LocationKind)
NUMBERS = {"buffer_units": INT32_MAX, "buffer_pct": 100, "low_stock_threshold": INT32_MAX}


def install(app: web.Application, settings: Settings) -> None:
    """The live topic behind the API, through ``dom channels``' own code."""

    def read() -> dict[str, ChannelPolicy]:
        return live_policies(settings)

    def write(channel: Channel, policy: ChannelPolicy | None) -> None:
        write_policy(settings, channel.value, policy)

    app[READER] = read
    app[WRITER] = write


# ---- handlers ------------------------------------------------------------------------------


async def list_channels(request: web.Request) -> web.Response:
    """Every channel and the policy in force (null: every location, nothing held back)."""
    try:
        live = await asyncio.to_thread(request.app[READER])
    except Exception as error:  # the broker or the topic, not the request: say so, not 500
        log.warning("console: reading the channel policies failed: %s", error)
        return json_error(503, f"the channel policies could not be read: {error}")
    return web.json_response({"channels": [shown(c, live.get(c.value)) for c in Channel]})


async def set_channel(request: web.Request) -> web.Response:
    """Replace the channel's policy with the form's, recording who signed in."""
    channel = _path_channel(request)
    body = await json_body(request)
    user = current_user(request).name  # who signed in, never a name the page typed
    try:
        policy = policy_of(body, channel, updated_by=user, now=datetime.now(UTC))
    except validate.InputError as error:
        return json_error(422, error.errors[0]["message"], error.errors)
    refused = await _write(request, channel, policy)
    if refused is not None:
        return refused
    log.info("console: %s set channel %s: %s", user, channel.value, from_record(policy).describe())
    answer = shown(channel, policy)
    message = f"set {channel.value} by {user}: {answer['summary']}; workers apply it in seconds"
    return web.json_response({"ok": True, **answer, "message": message})


async def reset_channel(request: web.Request) -> web.Response:
    """Put the channel back to every location, no buffer (a tombstone)."""
    channel = _path_channel(request)
    user = current_user(request).name
    refused = await _write(request, channel, None)
    if refused is not None:
        return refused
    log.info("console: %s reset channel %s", user, channel.value)
    answer = shown(channel, None)
    message = f"reset {channel.value} by {user}: {answer['summary']}; workers apply it in seconds"
    return web.json_response({"ok": True, **answer, "message": message})


async def _write(
    request: web.Request, channel: Channel, policy: ChannelPolicy | None
) -> web.Response | None:
    """Produce on a thread; None once the broker confirmed it, else the 503 to answer."""
    try:
        await asyncio.to_thread(request.app[WRITER], channel, policy)
    except click.ClickException as error:  # the broker did not confirm the record
        return json_error(503, error.message)
    return None


def shown(channel: Channel, policy: ChannelPolicy | None) -> dict[str, Any]:
    """A channel as the page shows it: the record's fields (None: no policy) and a summary."""
    said = from_record(policy) if policy is not None else default_policy(channel)
    return {
        "channel": channel.value,
        "policy": policy.model_dump(mode="json") if policy is not None else None,
        "summary": said.describe(),
    }


def _path_channel(request: web.Request) -> Channel:
    raw = request.match_info["channel"]
    try:
        return Channel(raw.upper())
    except ValueError:
        names = ", ".join(c.value for c in Channel)
        reason = f"no channel {raw[:40]!r}; the channels are {names}"
        raise web.HTTPNotFound(reason=reason) from None


# ---- the form ------------------------------------------------------------------------------


def policy_of(
    body: dict[str, Any], channel: Channel, *, updated_by: str, now: datetime
) -> ChannelPolicy:
    """The policy a form's body asks for; InputError names every field that is wrong."""
    errors: list[dict[str, str]] = []

    def field(name: str, read: Callable[[Any, str], Any]) -> Any:
        try:
            return read(body.get(name), name)
        except validate.InputError as error:
            errors.extend(error.errors)
            return None

    fields = {
        "location_ids": field("location_ids", _location_ids),
        "location_kinds": field("location_kinds", _location_kinds),
        **{name: field(name, _whole) for name in NUMBERS},
    }
    if errors:
        raise validate.InputError(errors)
    try:
        return ChannelPolicy(channel=channel, updated_by=updated_by, updated_at=now, **fields)
    except ValidationError as error:  # a limit of the contract the checks above missed
        raise validate.problem("body", str(error).splitlines()[-1].strip()) from None


def _names(raw: Any, what: str) -> list[str]:
    """A list of short texts (absent: none), stripped, blanks and repeats dropped."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise validate.problem(what, f"{what} must be a list of texts")
    if len(raw) > MAX_LOCATIONS:
        raise validate.problem(what, f"{what}: at most {MAX_LOCATIONS}")
    return list(dict.fromkeys(item.strip() for item in raw if item.strip()))


def _location_ids(raw: Any, what: str) -> tuple[str, ...]:
    ids = _names(raw, what)
    for location_id in ids:
        if not LOCATION_ID.fullmatch(location_id):
            raise validate.problem(
                what,
                f"location id {location_id[:40]!r}: letters, digits, '.', '_', ':', '@' or '-' "
                "(starting with a letter or digit)",
            )
    return tuple(ids)


def _location_kinds(raw: Any, what: str) -> tuple[LocationKind, ...]:
    try:
        return tuple(LocationKind(name.upper()) for name in _names(raw, what))
    except ValueError:
        raise validate.problem(what, f"{what} are {KINDS}") from None


def _whole(raw: Any, what: str) -> int:
    """A whole number from 0 to the field's limit (absent: 0); 2.5 is refused, not cut to 2."""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    elif isinstance(raw, float | str) and raw != "":
        raise validate.problem(what, f"{what} must be a whole number, not {str(raw)[:20]!r}")
    return validate.bounded_int(raw, what, 0, NUMBERS[what], 0)
