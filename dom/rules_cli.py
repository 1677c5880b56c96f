"""``dom rules``: what operators type to check, publish, list, disable and try out rules.

Rules are YAML files (see ``deploy/rules/default.yaml``); the live set is the compacted
``dom.rules.v1`` topic, which every worker follows. Nothing here changes a worker directly.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import click

from config.settings import Settings
from schemas.models import Rule

RULE_FIELDS = ("stage", "priority", "condition", "actions", "enabled", "stop_processing")


@click.group()
def rules() -> None:
    """Business rules: validate, publish, list, disable, delete, dry-run."""


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


by_option = click.option(
    "--by", "updated_by", default=_operator, show_default="the login name", help="Who changes it."
)


def _load(paths: Iterable[Path], updated_by: str) -> list[Rule]:
    """Every rule of the files; all problems of all files reported before exiting."""
    from streams.core.rules.files import RuleFileError, load_rule_file

    loaded: list[Rule] = []
    failed = False
    now = datetime.now(UTC)
    for path in paths:
        try:
            loaded += load_rule_file(path.read_text(), str(path), updated_by=updated_by, now=now)
        except RuleFileError as error:
            click.echo("\n".join(error.problems), err=True)
            failed = True
    if failed:
        sys.exit(1)
    return loaded


def _live_rules(settings: Settings) -> dict[str, Rule]:
    return _read_rules(settings)[0]


def _read_rules(settings: Settings) -> tuple[dict[str, Rule], dict[str, int]]:
    """The rules in force, folded from the topic the way every worker folds it (a refused
    version never replaces a valid one, an older version never wins, a tombstone deletes),
    and the highest version each id ever had, refused ones included (the next is above it)."""
    from dom.topic_reader import read_to_end
    from schemas.codec import Codec, DecodeError
    from schemas.topics import RULES
    from streams.core.rules.ruleset import RuleSet

    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    live = RuleSet()
    highest: dict[str, int] = {}
    for message in read_to_end(settings, RULES.name):
        key, value = message.key(), message.value()
        if value is None:
            live = live.without(key.decode()) if key else live
            continue
        try:
            rule = codec.decode_as(value, Rule)
        except DecodeError:
            continue  # the rules stage dead-lettered it
        highest[rule.rule_id] = max(highest.get(rule.rule_id, 0), rule.version)
        try:
            live = live.with_rule(rule)
        except Exception:
            continue  # refused (RuleError, or a checker bug), and dead-lettered by the rules stage
    return {rule.rule_id: rule for rule in live.rules()}, highest


def _same(a: Rule, b: Rule) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in (*RULE_FIELDS, "description"))


@rules.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check rule files: YAML shape, conditions (syntax, fields, types, size and worst-case
    cost per order) and actions."""
    from streams.core.rules.cost import MAX_RULE_COST
    from streams.core.rules.ruleset import compile_rule

    loaded = _load(files, "validate")
    for rule in loaded:
        cost = compile_rule(rule).cost  # loaded, so it compiles
        click.echo(
            f"ok  {rule.rule_id:<28} {rule.stage.value:<9} priority {rule.priority:<6} "
            f"cost {cost:,} of {MAX_RULE_COST:,} steps"
        )
    click.echo(f"{len(loaded)} rule(s) valid")


@rules.command("publish")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@by_option
@click.pass_obj
def publish(settings: Settings, files: tuple[Path, ...], updated_by: str) -> None:
    """Publish rule files to the live set; only changed rules get a new version."""
    live, highest = _read_rules(settings)
    changed = []
    for rule in _load(files, updated_by):
        before = live.get(rule.rule_id)
        if before is not None and _same(before, rule):
            click.echo(f"unchanged  {rule.rule_id} (version {before.version})")
            continue
        version = max(rule.version, highest.get(rule.rule_id, 0) + 1)
        changed.append(rule.model_copy(update={"version": version}))
    _produce(settings, changed)
    for rule in changed:
        click.echo(f"published  {rule.rule_id} version {rule.version} by {rule.updated_by}")
    click.echo(
        f"{len(changed)} rule(s) published; workers apply them within seconds "
        "(a refused rule goes to dom.dlq.v1, and GET /rules/ on a worker shows why)"
    )


def _produce(settings: Settings, records: list[Rule]) -> None:
    from connectors.producer import ContractProducer

    with ContractProducer(settings) as producer:
        producer.send_all(records)
    if producer.report.failed:
        raise click.ClickException(f"not published: {producer.report.errors}")


@rules.command("list")
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the live set as a rule file.")
@click.pass_obj
def list_rules(settings: Settings, as_yaml: bool) -> None:
    """The live rules, in evaluation order per stage."""
    live = sorted(
        _live_rules(settings).values(),
        key=lambda r: (r.stage.value, r.priority, r.rule_id),
    )
    if as_yaml:
        from streams.core.rules.files import dump_rules

        click.echo(dump_rules(live), nl=False)
        return
    for r in live:
        state = "on " if r.enabled else "off"
        click.echo(
            f"{state} {r.stage.value:<9} {r.priority:>4}  {r.rule_id:<28} v{r.version:<3} "
            f"{r.updated_by:<12} when {r.condition}"
        )
    click.echo(f"{len(live)} rule(s)")


@rules.command("disable")
@click.argument("rule_id")
@by_option
@click.pass_obj
def disable(settings: Settings, rule_id: str, updated_by: str) -> None:
    """Switch a rule off (a new version with enabled: false); `publish` switches it back."""
    live, highest = _read_rules(settings)
    rule = live.get(rule_id)
    if rule is None:
        raise click.ClickException(f"no live rule {rule_id!r}")
    off = rule.model_copy(
        update={
            "enabled": False,
            "version": highest[rule_id] + 1,
            "updated_by": updated_by,
            "updated_at": datetime.now(UTC),
        }
    )
    _produce(settings, [off])
    click.echo(f"disabled  {rule_id} version {off.version} by {updated_by}")


@rules.command("delete")
@click.argument("rule_id")
@click.pass_obj
def delete(settings: Settings, rule_id: str) -> None:
    """Delete a rule for good (a tombstone on dom.rules.v1)."""
    from connectors.producer import ContractProducer
    from schemas.topics import RULES

    with ContractProducer(settings) as producer:
        producer.send_raw(RULES.name, rule_id.encode(), None)
    click.echo(f"deleted  {rule_id}")


@rules.command("dry-run")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--orders",
    "orders_file",
    type=click.Path(exists=True, path_type=Path),
    help="Orders to replay: JSON lines (or a JSON array) of OrderPlaced records.",
)
@click.option("--last", type=int, help="Replay the last N orders of dom.orders.v1 instead.")
@click.pass_obj
def dry_run(settings: Settings, file: Path, orders_file: Path | None, last: int | None) -> None:
    """What the rules in FILE would change against the live rules, emitting nothing.

    Both rule sets route the same orders, one after another, on the network and stock as the
    topics hold them now; the report lists every order whose outcome, locations, packaging,
    cartons, inserts or fired rules would differ.
    """
    from dom.snapshot import load_orders_file, network_view, recent_orders, simulation
    from streams.core.saga.dry_run import compare, render

    if (orders_file is None) == (last is None):
        raise click.UsageError("give either --orders FILE or --last N")
    proposed_rules = _load([file], "dry-run")
    view = network_view(settings)
    orders = load_orders_file(orders_file) if orders_file else recent_orders(settings, last or 0)
    proposed = view.rules
    for rule in proposed_rules:
        proposed = proposed.with_rule(rule)
    count, changes = compare(
        orders, simulation(settings, view, view.rules), simulation(settings, view, proposed)
    )
    click.echo(render(count, changes))
