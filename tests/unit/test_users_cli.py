"""``dom users`` sets up who may sign in to the console, reading passwords from stdin (never the
command line), and ``make run`` makes a demo admin once and says its password at every start."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from config.settings import Settings
from dom.cli import main
from dom.console.auth import Role
from dom.console.users import UserStore
from dom.run import demo_user


def dom_users(data_dir: Path, *args: str, password: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["users", *args], input=password, env={"DOM_DATA_DIR": str(data_dir)}
    )
    return result.exit_code, result.output


def test_users_are_added_listed_disabled_and_given_new_passwords(tmp_path: Path) -> None:
    assert "no users" in dom_users(tmp_path, "list")[1]
    code, out = dom_users(
        tmp_path, "add", "anna", "--role", "rule-editor", password="pw1 is long enough\n"
    )
    assert code == 0 and "added anna (rule-editor)" in out
    code, out = dom_users(tmp_path, "add", "bo", "--role", "viewer", password="too short\n")
    assert code == 1 and "at least 12" in out
    code, out = dom_users(tmp_path, "add", "bo", "--role", "boss", password="long enough pw\n")
    assert code == 2 and "'boss' is not one of" in out
    code, out = dom_users(tmp_path, "add", "bo", "--role", "viewer", "--password", "long enough pw")
    assert code == 2 and "No such option" in out  # never from argv
    code, out = dom_users(
        tmp_path, "add", "anna", "--role", "viewer", password="another long one\n"
    )
    assert code == 1 and "exists already" in out

    store = UserStore(tmp_path / "console" / "users.sqlite")
    assert store.check_password("anna", "pw1 is long enough") is not None
    code, out = dom_users(tmp_path, "passwd", "anna", password="pw2 is long enough\n")
    assert code == 0
    assert store.check_password("anna", "pw1 is long enough") is None
    assert store.check_password("anna", "pw2 is long enough") is not None

    code, out = dom_users(tmp_path, "disable", "anna")
    assert code == 0
    assert "anna" in (listing := dom_users(tmp_path, "list")[1]) and "disabled" in listing
    assert store.check_password("anna", "pw2 is long enough") is None
    assert dom_users(tmp_path, "enable", "anna")[0] == 0
    assert dom_users(tmp_path, "role", "anna", "admin")[0] == 0
    user = store.get("anna")
    assert user is not None and (user.role, user.disabled) == (Role.ADMIN, False)
    assert dom_users(tmp_path, "disable", "zed") == (1, "Error: there is no user 'zed'\n")


def test_make_run_creates_a_demo_admin_once_and_tells_its_password(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = demo_user(settings)
    assert first.startswith("console sign-in: user demo, password ")
    password = first.split("password ")[1].split(" ")[0]
    assert len(password) >= 16
    store = UserStore(settings.console_users_path)
    user = store.check_password("demo", password)
    assert user is not None and user.role is Role.ADMIN
    saved = settings.console_users_path.parent / "demo-password"
    assert saved.stat().st_mode & 0o077 == 0
    assert demo_user(settings) == first  # the same user and password, said again

    store.set_password("demo", "changed by its owner")
    assert "password" not in demo_user(settings)  # nothing true to tell any more
    assert [u.name for u in store.users()] == ["demo"]


def test_make_run_leaves_users_set_up_by_hand_alone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    UserStore(settings.console_users_path).add("anna", Role.ADMIN, "a long password")
    assert "dom users list" in demo_user(settings)
    assert [u.name for u in UserStore(settings.console_users_path).users()] == ["anna"]
