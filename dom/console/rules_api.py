"""The console's rules API: list, history, validate, dry-run, publish, roll back.

It writes nothing but ``Rule`` records to ``dom.rules.v1`` (the console's other writes are
order actions and channel policies), through :class:`connectors.producer.ContractProducer`.
Every rule is judged by ``compile_rule`` before it goes anywhere, and every version records who
made it: the signed-in user (an ``updated_by`` in the body is ignored). A roll back
republishes an earlier version's content as a new version, so the topic keeps the whole story
and every worker applies it like any other change.

Judging a rule (compiling it, with its trial run) and dry-running it run off the event loop,
on threads of their own (``_JUDGES``), so the console answers other requests meanwhile; one
that takes longer than ``JUDGE_TIMEOUT`` (``DRY_RUN_TIMEOUT``) is answered 422 with the reason.
A thread cannot be stopped: it runs on, unseen, while the next requests use the other threads.
The cost limit of ``streams.core.rules.cost`` keeps every accepted condition under a millisecond
per order, which matters here too: while the CEL library evaluates, it holds Python's
interpreter lock, so one evaluation, on whatever thread, holds up the event loop as long.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from config.settings import Settings
from dom.console import validate
from dom.console.login_api import current_user
from dom.console.rule_store import RuleVersion
from dom.console.state import CONSOLE, json_body, json_error
from dom.console.workers import WorkersUnavailable
from schemas.models import Rule

CONTENT = ("stage", "priority", "condition", "actions", "enabled", "stop_processing", "description")
MAX_CHANGES_SHOWN = 200
JUDGE_TIMEOUT = 10.0
"""Seconds to check a rule (milliseconds normally) before answering 422."""
DRY_RUN_TIMEOUT = 300.0
"""Seconds to dry-run a rule (reading the topics and routing up to 2,000 orders twice)."""
_JUDGES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console-rules")
T = TypeVar("T")


class KafkaRuleStore:
    """The live rules topic, read outside any group; writes through a ContractProducer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def versions(self) -> list[RuleVersion]:
        from dom.topic_reader import read_to_end
        from schemas.codec import Codec, DecodeError
        from schemas.topics import RULES

        settings = self.settings
        codec = Codec.from_url(
            settings.schema_registry_url, **(settings.schema_registry_config() or {})
        )
        found = []
        for message in read_to_end(settings, RULES.name):
            key, value = message.key(), message.value()
            if value is None:
                if key:
                    found.append(RuleVersion(key.decode(errors="replace"), None))
                continue
            try:
                rule = codec.decode_as(value, Rule)
            except DecodeError:
                continue  # dead-lettered by the rules stage
            found.append(RuleVersion(rule.rule_id, rule, _refusal(rule)))
        return found

    def publish(self, rule: Rule) -> None:
        from connectors.producer import ContractProducer

        with ContractProducer(self.settings) as producer:
            producer.send(rule)
        if producer.report.failed:
            raise RuntimeError(f"the broker did not confirm: {producer.report.errors[-1:]}")

    def dry_run(self, rule: Rule, last: int) -> dict[str, Any]:
        from dom.snapshot import network_view, recent_orders, simulation
        from streams.core.saga.dry_run import compare, render

        view = network_view(self.settings)
        held = view.rules.get(rule.rule_id)
        if held is not None:  # a proposal always replaces what is live
            rule = rule.model_copy(update={"version": held.version + 1})
        proposed = view.rules.with_rule(rule)
        orders = recent_orders(self.settings, last)
        count, changes = compare(
            orders,
            simulation(self.settings, view, view.rules),
            simulation(self.settings, view, proposed),
        )
        return {
            "orders": count,
            "changed_orders": len({c.order_id for c in changes}),
            "changes": [
                {"order_id": c.order_id, "field": c.field, "live": c.live, "proposed": c.proposed}
                for c in changes[:MAX_CHANGES_SHOWN]
            ],
            "summary": render(count, changes).splitlines()[-1],
        }


def _refusal(rule: Rule) -> str | None:
    try:
        validate.check_rule(rule)
    except validate.InputError as error:
        return str(error.errors[0]["message"])
    return None


# ---- handlers ------------------------------------------------------------------------------


async def list_rules(request: web.Request) -> web.Response:
    """The rules in force and refused versions, as a worker applies them."""
    console = request.app[CONSOLE]
    try:
        answer = await console.client.get_json("rules")
    except WorkersUnavailable as error:
        return json_error(503, str(error))
    return web.json_response({**answer.body, "worker": answer.worker})


async def history(request: web.Request) -> web.Response:
    """Every version of one rule on the topic, newest first, with who made it."""
    rule_id = _path_rule_id(request)
    versions = await _versions(request)
    mine = [v for v in versions if v.rule_id == rule_id]
    if not mine:
        return json_error(404, f"no rule {rule_id!r} was ever published")
    shown: list[dict[str, Any]] = []
    for entry in reversed(mine):
        if entry.rule is None:
            shown.append({"deleted": True})
            continue
        shown.append({**entry.rule.model_dump(mode="json"), "refused": entry.error})
    return web.json_response({"rule_id": rule_id, "versions": shown})


class TooSlow(validate.InputError):
    """Judging or dry-running a rule took too long: 422 everywhere, validate included."""


async def _off_loop(what: str, timeout: float, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` on a judge thread; TooSlow once it takes longer than ``timeout``."""
    running = asyncio.get_running_loop().run_in_executor(_JUDGES, functools.partial(work, *args))
    try:
        return await asyncio.wait_for(running, timeout)
    except TimeoutError:
        message = (
            f"{what} took longer than {timeout:g} s; the console stopped waiting "
            "(simplify the condition, or dry-run fewer orders)"
        )
        raise TooSlow([{"field": "condition", "message": message}]) from None


async def _rule_form(body: Any) -> validate.RuleForm:
    return await _off_loop("checking the rule", JUDGE_TIMEOUT, validate.rule_form, body)


async def validate_rule(request: web.Request) -> web.Response:
    """Is the form's rule valid? 200 either way, the answer is the point; 422 when checking it
    took too long."""
    body = await json_body(request)
    try:
        await _rule_form(body)
    except TooSlow as error:
        return json_error(422, error.errors[0]["message"], error.errors)
    except validate.InputError as error:
        return web.json_response(
            {"ok": False, "error": error.errors[0]["message"], "errors": error.errors}
        )
    return web.json_response({"ok": True, "error": None, "errors": []})


async def dry_run(request: web.Request) -> web.Response:
    """What the form's rule would change on the last N orders, emitting nothing."""
    body = await json_body(request)
    form = await _rule_form(body)
    last = validate.bounded_int(
        body.get("last"), "last", 1, validate.MAX_DRY_RUN_ORDERS, default=200
    )
    rule = form.rule(version=1, updated_by="dry-run")
    store = request.app[CONSOLE].store
    result = await _off_loop("the dry-run", DRY_RUN_TIMEOUT, store.dry_run, rule, last)
    return web.json_response({"ok": True, **result})


async def publish(request: web.Request) -> web.Response:
    """Publish the form's rule as its next version, recording who did."""
    body = await json_body(request)
    form = await _rule_form(body)
    updated_by = current_user(request).name  # who signed in, never a name the page typed
    console = request.app[CONSOLE]
    async with console.publish_lock:
        versions = await _versions(request)
        live = _latest_valid(versions, form.rule_id)
        proposed = form.rule(version=_next_version(versions, form.rule_id), updated_by=updated_by)
        if live is not None and _same(live, proposed):
            return web.json_response(
                {"ok": True, "published": False, "version": live.version,
                 "message": f"{form.rule_id} is unchanged (version {live.version} is live)"}
            )  # fmt: skip
        await asyncio.to_thread(console.store.publish, proposed)
    return _published(proposed)


async def rollback(request: web.Request) -> web.Response:
    """Publish an earlier version's content again, as the newest version."""
    rule_id = _path_rule_id(request)
    body = await json_body(request)
    version = validate.bounded_int(body.get("version"), "version", 1, 2**31 - 1, default=0)
    if not version:
        raise validate.problem("version", "say which version to roll back to")
    updated_by = current_user(request).name  # who signed in, never a name the page typed
    console = request.app[CONSOLE]
    async with console.publish_lock:
        versions = await _versions(request)
        earlier = next(
            (
                v.rule
                for v in versions
                if v.rule_id == rule_id and v.rule is not None and v.rule.version == version
            ),
            None,
        )
        if earlier is None:
            return json_error(404, f"rule {rule_id!r} has no version {version}")
        restored = earlier.model_copy(
            update={
                "version": _next_version(versions, rule_id),
                "updated_by": updated_by,
                "updated_at": datetime.now(UTC),
            }
        )
        # a refused version is never brought back
        await _off_loop("checking the rule", JUDGE_TIMEOUT, validate.check_rule, restored)
        await asyncio.to_thread(console.store.publish, restored)
    return _published(restored, rolled_back_to=version)


def _published(rule: Rule, **extra: Any) -> web.Response:
    return web.json_response(
        {
            "ok": True,
            "published": True,
            "rule_id": rule.rule_id,
            "version": rule.version,
            "updated_by": rule.updated_by,
            "message": f"published {rule.rule_id} version {rule.version} by {rule.updated_by}; "
            "workers apply it within seconds",
            **extra,
        }
    )


def _path_rule_id(request: web.Request) -> str:
    raw = request.match_info["rule_id"]
    if not validate.RULE_ID.fullmatch(raw):
        raise validate.problem("rule_id", "not a rule id")
    return raw


async def _versions(request: web.Request) -> list[RuleVersion]:
    return await asyncio.to_thread(request.app[CONSOLE].store.versions)


def _next_version(versions: list[RuleVersion], rule_id: str) -> int:
    """Above every version the id ever had, refused ones included (as ``dom rules`` does)."""
    held = [v.rule.version for v in versions if v.rule_id == rule_id and v.rule is not None]
    return max(held, default=0) + 1


def _latest_valid(versions: list[RuleVersion], rule_id: str) -> Rule | None:
    """The version in force, folded as workers fold the topic."""
    live: Rule | None = None
    for entry in versions:
        if entry.rule_id != rule_id:
            continue
        if entry.rule is None:
            live = None
        elif entry.error is None and (live is None or entry.rule.version >= live.version):
            live = entry.rule
    return live


def _same(a: Rule, b: Rule) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in CONTENT)
