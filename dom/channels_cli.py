"""``dom channels``: what operators type to see and change what each sales channel may sell.

A channel's policy (the locations that serve it, the units held back from it, its low-stock
threshold) lives on the compacted ``dom.channels.v1``, which every worker follows: a change
takes effect within seconds, with no restart. Each worker then publishes again the
availability of the skus whose channel figures the change moves (``Availability.channels``,
and ``dom.channel-availability.v1`` when that is on), and routes the channel's next orders only
from the locations the policy allows. Nothing here changes a worker directly.

The default policies are a YAML file (``deploy/channels/channels.yaml``) that ``publish-defaults``
publishes; a channel without a policy is served by every location, with no buffer.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from config.settings import Settings
from dom.rules_cli import by_option
from schemas.enums import Channel, LocationKind
from schemas.sellable import ChannelPolicy

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "deploy" / "channels" / "channels.yaml"
CHANNEL_NAMES = [c.value for c in Channel]


@click.group()
def channels() -> None:
    """Channel policies: which locations sell to each channel, and what is held back."""


channel_argument = click.argument("channel", type=click.Choice(CHANNEL_NAMES, case_sensitive=False))


def live_policies(settings: Settings) -> dict[str, ChannelPolicy]:
    """The policies in force, folded from the topic the way every worker folds it: the latest
    valid record of each channel, a tombstone deletes."""
    from dom.topic_reader import read_to_end
    from schemas.codec import Codec, DecodeError
    from schemas.topics import CHANNELS

    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    live: dict[str, ChannelPolicy] = {}
    for message in read_to_end(settings, CHANNELS.name):
        key, value = message.key(), message.value()
        if value is None:
            if key:
                live.pop(key.decode(errors="replace"), None)
            continue
        try:
            policy = codec.decode_as(value, ChannelPolicy)
        except DecodeError:
            continue  # the masters stage dead-lettered it; the workers skipped it
        if key == policy.channel.value.encode():
            live[policy.channel.value] = policy
    return live


def _produce(settings: Settings, records: list[ChannelPolicy]) -> None:
    from connectors.producer import ContractProducer

    with ContractProducer(settings) as producer:
        producer.send_all(records)
    if producer.report.failed:
        raise click.ClickException(f"not published: {producer.report.errors}")


def write_policy(settings: Settings, channel: str, policy: ChannelPolicy | None) -> None:
    """Put ``policy`` on ``dom.channels.v1`` under ``channel``'s key; None: a tombstone, the
    channel back to every location, no buffer (what ``set`` and ``reset`` produce, and the
    console with them). ClickException when the broker did not confirm it."""
    if policy is not None:
        _produce(settings, [policy])
        return
    from connectors.producer import ContractProducer
    from schemas.topics import CHANNELS

    with ContractProducer(settings) as producer:
        producer.send_raw(CHANNELS.name, channel.encode(), None)
    if producer.report.failed:
        raise click.ClickException(f"not reset: {producer.report.errors}")


def _describe(channel: str, policy: ChannelPolicy | None) -> str:
    from streams.core.channels.policy import default_policy, from_record

    if policy is None:
        return f"{channel:<12} {default_policy(Channel(channel)).describe()}  (default)"
    said = from_record(policy).describe()
    return f"{channel:<12} {said}  (by {policy.updated_by}, {policy.updated_at:%Y-%m-%d %H:%M} UTC)"


@channels.command("list")
@click.pass_obj
def list_channels(settings: Settings) -> None:
    """Every channel's policy in force."""
    live = live_policies(settings)
    for channel in CHANNEL_NAMES:
        click.echo(_describe(channel, live.get(channel)))


def _names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated option: None when not given, () when given empty."""
    if text is None:
        return None
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _kinds(text: str | None) -> tuple[LocationKind, ...] | None:
    names = _names(text)
    if names is None:
        return None
    try:
        return tuple(LocationKind(name.upper()) for name in names)
    except ValueError:
        raise click.BadParameter("kinds are DC and STORE", param_hint="--kinds") from None


@channels.command("set")
@channel_argument
@click.option("--locations", help="Location ids that serve the channel, comma-separated.")
@click.option("--kinds", help="Kinds of location that serve it: DC, STORE or DC,STORE.")
@click.option("--buffer-units", type=click.IntRange(min=0), help="Units held back of each sku.")
@click.option(
    "--buffer-pct", type=click.IntRange(0, 100), help="Whole percent held back too (rounded up)."
)
@click.option("--low-stock", type=click.IntRange(min=0), help="Below this the channel sees 0.")
@by_option
@click.pass_obj
def set_channel(
    settings: Settings,
    channel: str,
    locations: str | None,
    kinds: str | None,
    buffer_units: int | None,
    buffer_pct: int | None,
    low_stock: int | None,
    updated_by: str,
) -> None:
    """Change CHANNEL's policy; what is not given stays as it is (an empty --locations or
    --kinds clears it; with neither locations nor kinds, every location serves)."""
    channel = channel.upper()
    given = {
        "location_ids": _names(locations),
        "location_kinds": _kinds(kinds),
        "buffer_units": buffer_units,
        "buffer_pct": buffer_pct,
        "low_stock_threshold": low_stock,
    }
    current = live_policies(settings).get(channel)
    fields: dict[str, object] = (
        current.model_dump(exclude={"updated_by", "updated_at"}) if current else {}
    )
    fields.update({k: v for k, v in given.items() if v is not None})
    fields.update(channel=channel, updated_by=updated_by, updated_at=datetime.now(UTC))
    try:
        policy = ChannelPolicy(**fields)  # type: ignore[arg-type]
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    _produce(settings, [policy])
    click.echo(f"set  {_describe(channel, policy)}")
    click.echo("workers apply it within seconds and publish the figures it moves")


@channels.command("reset")
@channel_argument
@click.pass_obj
def reset_channel(settings: Settings, channel: str) -> None:
    """Put CHANNEL back to every location, no buffer (a tombstone on dom.channels.v1)."""
    channel = channel.upper()
    write_policy(settings, channel, None)
    click.echo(f"reset  {_describe(channel, None)}")


def publish_defaults(
    settings: Settings, path: Path = DEFAULT_FILE, *, updated_by: str, only_missing: bool = False
) -> list[str]:
    """Publish the policies of ``path`` that differ from those in force (``only_missing``:
    only for channels that have none); what it did, a line per channel. Running it again
    publishes nothing. Raises ``ChannelFileError`` for a file with problems."""
    from streams.core.channels.files import load_channel_file
    from streams.core.channels.policy import default_policy, from_record

    wanted = load_channel_file(
        path.read_text(), str(path), updated_by=updated_by, now=datetime.now(UTC)
    )
    live = live_policies(settings)
    changed, said = [], []
    for policy in wanted:
        name = policy.channel.value
        current = live.get(name)
        in_force = from_record(current) if current else default_policy(policy.channel)
        if in_force == from_record(policy) or (only_missing and current is not None):
            said.append(f"unchanged  {name}")
            continue
        changed.append(policy)
        said.append(f"published  {_describe(name, policy)}")
    _produce(settings, changed)
    return said


@channels.command("publish-defaults")
@click.argument("file", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--only-missing", is_flag=True, help="Leave every channel that has a policy as it is."
)
@by_option
@click.pass_obj
def publish_defaults_command(
    settings: Settings, file: Path | None, only_missing: bool, updated_by: str
) -> None:
    """Publish the default policies (FILE, or deploy/channels/channels.yaml); only those that
    differ from the policies in force get a new record, so running it again changes nothing."""
    from streams.core.channels.files import ChannelFileError

    try:
        said = publish_defaults(
            settings, file or DEFAULT_FILE, updated_by=updated_by, only_missing=only_missing
        )
    except ChannelFileError as error:
        click.echo("\n".join(error.problems), err=True)
        sys.exit(1)
    for line in said:
        click.echo(line)
