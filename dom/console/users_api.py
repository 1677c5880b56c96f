"""User management for admins over the console's API, the same operations as ``dom users``:
list, add (with a first password), change a role, disable or enable, set a new password.

Every route here needs :attr:`Permission.MANAGE_USERS` (admins). An admin cannot disable
themself or take away their own admin role, so a console is never left without one by mistake.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from dom.console import validate
from dom.console.auth import Role, valid_name
from dom.console.login_api import AUTH, current_user
from dom.console.state import json_body, json_error
from dom.console.users import User, UserError, check_password_rules


def _shown(user: User) -> dict[str, Any]:
    return {"user": user.name, "role": user.role.value, "disabled": user.disabled,
            "updated_at": user.updated_at}  # fmt: skip


def _role(raw: Any) -> Role:
    try:
        return Role(raw)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise validate.problem("role", f"the role must be one of {choices}") from None


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not valid_name(name):
        raise validate.problem("user", "not a user name")
    return name


async def list_users(request: web.Request) -> web.Response:
    users = request.app[AUTH].users.users()
    return web.json_response({"users": [_shown(u) for u in users]})


async def add_user(request: web.Request) -> web.Response:
    body = await json_body(request)
    name, password = body.get("user"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise validate.problem("user", "send the new user's name, role and password")
    role = _role(body.get("role"))
    store = request.app[AUTH].users
    try:
        user = await asyncio.to_thread(store.add, name, role, password)
    except UserError as error:
        return json_error(409 if "exists" in str(error) else 422, str(error))
    return web.json_response({"ok": True, **_shown(user)})


async def change_user(request: web.Request) -> web.Response:
    """``role``, ``disabled`` and ``password``, each optional; the others are kept."""
    name = _name(request)
    body = await json_body(request)
    me = current_user(request)
    store = request.app[AUTH].users
    changes: list[tuple[Any, ...]] = []
    if "role" in body:
        changes.append((store.set_role, _role(body["role"])))
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise validate.problem("disabled", "disabled is true or false")
        changes.append((store.set_disabled, body["disabled"]))
    if "password" in body:
        if not isinstance(body["password"], str):
            raise validate.problem("password", "the password is text")
        try:
            check_password_rules(body["password"])  # before anything else changes
        except UserError as error:
            raise validate.problem("password", str(error)) from None
        changes.append((store.set_password, body["password"]))
    if name.lower() == me.name.lower() and (
        body.get("disabled") is True or body.get("role", Role.ADMIN.value) != Role.ADMIN.value
    ):
        return json_error(409, "an admin cannot disable themself or drop their own admin role")
    try:
        user = store.get(name)
        for change, value in changes:
            user = await asyncio.to_thread(change, name, value)
    except UserError as error:
        return json_error(404 if "no user" in str(error) else 422, str(error))
    if user is None:
        return json_error(404, f"there is no user {name!r}")
    return web.json_response({"ok": True, **_shown(user)})
