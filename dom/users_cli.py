"""``dom users``: who may sign in to the operator console, and as what.

Users live in the console's users file (``DOM_CONSOLE_USERS_FILE``, default
``DATA_DIR/console/users.sqlite``). Roles are cumulative: ``viewer`` sees everything,
``operator`` also acts on orders, ``rule-editor`` also publishes, disables and rolls back
rules, ``admin`` also manages users. A password is read from a hidden prompt (typed twice),
or from the first line of stdin when stdin is not a terminal; never from the command line,
where other users of the machine could read it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from config.settings import Settings
from dom.console.auth import Role

if TYPE_CHECKING:
    from dom.console.users import User, UserStore

ROLE_NAMES = tuple(role.value for role in Role)


@click.group()
def users() -> None:
    """Console users: add, list, disable, enable, change a password or a role."""


def _store(settings: Settings) -> UserStore:
    from dom.console.users import UserStore

    return UserStore(settings.console_users_path)


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return str(password)
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("no password on stdin")
    return line.rstrip("\r\n")


def _run(action: Callable[[], User]) -> User:
    """``action()``, with a refusal (UserError) as a one-line error and exit status 1."""
    from dom.console.users import UserError

    try:
        return action()
    except UserError as error:
        raise click.ClickException(str(error)) from None


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True, help="What they may do.")
@click.pass_obj
def users_add(settings: Settings, name: str, role: str) -> None:
    """Add a user; their password is read from a prompt or stdin."""
    store = _store(settings)
    if store.get(name) is not None:
        raise click.ClickException(f"a user {name!r} exists already (dom users passwd {name})")
    password = _read_password(f"Password for {name}")
    user = _run(lambda: store.add(name, Role(role), password))
    click.echo(f"added {user.name} ({user.role.value}) to {store.path}")


@users.command("passwd")
@click.argument("name")
@click.pass_obj
def users_passwd(settings: Settings, name: str) -> None:
    """Set a user's password (from a prompt or stdin); their sessions end."""
    store = _store(settings)
    if store.get(name) is None:
        raise click.ClickException(f"there is no user {name!r}")
    password = _read_password(f"New password for {name}")
    user = _run(lambda: store.set_password(name, password))
    click.echo(f"changed the password of {user.name}; their open sessions are ended")


@users.command("list")
@click.pass_obj
def users_list(settings: Settings) -> None:
    """Every user, their role and whether they may sign in."""
    store = _store(settings)
    found = store.users()
    if not found:
        click.echo(f"no users in {store.path}; add one with `dom users add NAME --role admin`")
        return
    for user in found:
        state = "disabled" if user.disabled else "enabled"
        changed = datetime.fromtimestamp(user.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{user.name:24} {user.role.value:12} {state:9} changed {changed}")


@users.command("disable")
@click.argument("name")
@click.pass_obj
def users_disable(settings: Settings, name: str) -> None:
    """Stop a user from signing in; their open sessions end."""
    user = _run(lambda: _store(settings).set_disabled(name, True))
    click.echo(f"disabled {user.name}")


@users.command("enable")
@click.argument("name")
@click.pass_obj
def users_enable(settings: Settings, name: str) -> None:
    """Let a disabled user sign in again."""
    user = _run(lambda: _store(settings).set_disabled(name, False))
    click.echo(f"enabled {user.name}")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@click.pass_obj
def users_role(settings: Settings, name: str, role: str) -> None:
    """Change what a user may do (at their next request)."""
    user = _run(lambda: _store(settings).set_role(name, Role(role)))
    click.echo(f"{user.name} is now {user.role.value}")
