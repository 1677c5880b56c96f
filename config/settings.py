"""Every setting of the pipeline in one typed object, read from ``DOM_`` environment variables.

The same object renders the Faust broker URL and credentials and the librdkafka configuration,
so a worker and a connector pointed at one cluster can never disagree about how to reach it.
"""

from __future__ import annotations

import ssl
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
ConsoleRole = Literal["viewer", "operator", "rule-editor", "admin"]

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "dom"


SECRETS = (
    "kafka_sasl_password",
    "schema_registry_basic_auth",
    "webhook_secret",
    "shopify_access_token",
    "spapi_access_token",
    "spapi_lwa_client_secret",
    "spapi_refresh_token",
)
"""The settings that are secrets: SecretStr (shown as ``**********``), and readable from a file."""
SECRET_CLIENT_KEYS = frozenset(
    {"sasl.password", "sasl_plain_password", "basic.auth.user.info", "ssl.key.password"}
)


class ClientConfig(dict[str, Any]):
    """A client's configuration, masked when printed: logged or put in an error by mistake,
    it shows ``**********`` where a password is. The client itself reads the real values."""

    def __repr__(self) -> str:
        return repr({k: "**********" if k in SECRET_CLIENT_KEYS else v for k, v in self.items()})

    __str__ = __repr__


def _read_secret(path: Path, setting: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{setting}: cannot read {path}: {reason}") from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ValueError(f"{setting}: {path} is empty")
    return secret


class Settings(BaseSettings):
    """Typed settings; ``Settings()`` reads ``DOM_*`` variables, tests pass their own values."""

    # hide_input_in_errors: a refused setting is named, never echoed, so no error message can
    # carry a secret (a model-level error would otherwise print every value it was given).
    model_config = SettingsConfigDict(env_prefix="DOM_", extra="ignore", hide_input_in_errors=True)

    # The cluster.
    kafka_bootstrap: str = DEFAULT_BOOTSTRAP
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None  # each secret may come from a file instead
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_client_id: str = "dom"

    # The contract's topics: a prefix lets several pipelines (or test runs) share one cluster.
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    schema_registry_url: str | None = None
    schema_registry_basic_auth: SecretStr | None = None  # "user:password"
    schema_registry_basic_auth_file: Path | None = None

    metrics_port: int = 9300
    data_dir: Path = Path("var")

    # A worker (`dom worker`): several may run side by side, each with its own name and port.
    worker_name: str = "worker-1"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # How long a silent worker keeps its partitions before the group moves them.
    broker_session_timeout: float = Field(default=30.0, gt=0)
    # Static group membership (Kafka's group.instance.id, named after the app, the worker and
    # its web address): a worker restarted under its name and address takes its partitions
    # back at once, with no rebalance, instead of after the session timeout. The price: a
    # worker stopped for good (or killed and not restarted) keeps its partitions for the whole
    # session timeout, and a graceful stop no longer hands them over at once. For workers with
    # stable names and addresses (a StatefulSet).
    static_membership: bool = False
    # How long a worker's fetch may wait at the broker for new records. Faust fixes it at
    # 1.5 s, and a partition with records still buffered is left out of the fetch under way,
    # so its next records waited that long: the tail of every hop's latency.
    fetch_max_wait_ms: int = Field(default=50, ge=1, le=1500)
    # How long a worker's producer gathers records before it sends them. A stage's batch does
    # not wait for it: once the batch's table writes, then its records, are handed over, they
    # go at once (streams/runtime/outbox.py, send_now). It gathers what else the worker sends
    # (the other stage's records, timers' commands) into fewer requests. Before stages sent at
    # once, each hop paid it twice: `dom bench --latency-rate 5` gave p50 65-73 ms placed to
    # outcome at 5 ms, 40-42 ms at 1 ms, but at full load 1 ms cost 13% orders/s.
    producer_linger_ms: float = Field(default=5.0, ge=0, le=1000)
    # The most bytes of records one producer batch (one partition's share of a produce request)
    # holds. Faust's default, 16 KB, is three or four order states: a worker that stored 15
    # orders in one partition sent them in five requests one after another (its producer keeps
    # one request in flight to a broker), and each batch's flush waited for all five. 1,000,000
    # is librdkafka's default, under the broker's default largest batch (message.max.bytes,
    # 1 MiB); lower it to the cluster's if that is smaller. Three `dom bench --orders 3000
    # --no-restart` runs a side, alternating, each with its own broker: broker CPU 1.09 -> 0.74
    # ms per order (fewer requests), 251 -> 285 orders/s and 6.2 -> 5.6 ms of worker CPU per
    # order on average (within the machine's drift run to run).
    producer_batch_bytes: int = Field(default=1_000_000, ge=16_384, le=1_048_576)
    # What every producer of the pipeline (the workers', the connectors', the command line's)
    # compresses its record batches with; the broker stores and serves them so. Off by default:
    # on one machine it costs more than it saves. zstd cut a 3,000-order `dom bench` run's
    # topics on the broker from 67 MB to 19 MB (the orders' changelog, JSON values much alike,
    # 30.2 to 5.6 MB), but cost 2 to 4% more worker CPU and up to a sixth more broker CPU (it
    # decompresses each batch to validate it). On a cluster, where the bytes cross the network
    # and are replicated, "zstd" is the setting to try first; every Kafka client from 2.1 on
    # (librdkafka 1.0, the Java client) reads it. Workers read every codec whatever this says.
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    # Whether a bulk load of stock (`dom feed stock` and `pos-sales`, the demo's and the bench's
    # worlds) packs each partition's StockEvents in RecordBatch messages on dom.stock.v1, which
    # the workers unpack: a nightly count then costs a Kafka record per 500 counts instead of
    # one each. False sends each StockEvent alone, for other consumers of the topic
    # that read StockEvent records only (and for workers of a release before this setting).
    pack_stock: bool = True
    # Standby replicas of each table partition (orders, inventory): with several workers, a
    # standby keeps a warm copy of a partition another worker owns, so a failover replays only
    # the tail of the changelog instead of all of it. Each one costs a second consumer of
    # every changelog and the disk of a second copy; 0 (one worker, or slow failovers are fine).
    table_standby_replicas: int = Field(default=0, ge=0)
    # A table value larger than this is stored in chunks of this size (streams/runtime/chunks.py):
    # the broker takes at most 1 MiB a record by default, and a bestseller's inventory value
    # holds each of its unshipped reservations (about 10,800 of them made 1 MiB).
    table_chunk_bytes: int = Field(default=256 * 1024, ge=1024, le=900 * 1024)
    # The worker's event loop: uvloop moves Kafka's bytes and timers in C (measured +20%
    # orders/s in `dom bench`); "asyncio" is the standard library's, for debugging.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Routing policy.
    max_shipments: int = Field(default=3, ge=1)
    shortfall_policy: Literal["ALLOCATE_AVAILABLE", "BACKORDER_WHOLE"] = "ALLOCATE_AVAILABLE"
    max_routing_attempts: int = Field(default=3, ge=1)
    # Hold each shipment at the skus under its plan's own id (its shipment id and a digest of
    # its location and lines), so that an attempt planned twice across a rebalance never
    # shares a hold. A worker of an earlier release does not know those ids: false while one
    # still runs (see the README's rolling upgrades).
    plan_hold_ids: bool = True
    # Backorders (streams/core/inventory/backorders.py): the order waiting orders are served in when
    # stock arrives ("placed_at": first placed, first served; "service_level": NEXT_DAY, then
    # EXPRESS, then STANDARD; "tier": by DOM_BACKORDER_TIERS, best first, any other tier
    # last; each then by placed_at), and how long an order may wait before it is cancelled.
    backorder_priority: Literal["placed_at", "service_level", "tier"] = "placed_at"
    backorder_tiers: str = "PLATINUM,GOLD,SILVER,BRONZE"
    backorder_expiry_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    # Timers (streams/core/saga/timers.py): a shipment not ACCEPTED this long after it was
    # commanded moves elsewhere (a store's, a DC's deadline), and a pickup not collected this
    # long after the store had it ready cancels the order.
    accept_timeout_store_s: float = Field(default=2 * 3600.0, gt=0)
    accept_timeout_dc_s: float = Field(default=12 * 3600.0, gt=0)
    pickup_expiry_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Retention (streams/core/saga/retention.py): a delivered order is finished this many
    # days after its last delivery (the return window), a cancelled, rejected or fully
    # returned one at once; a finished order leaves the order table this many days later.
    # Fractions of a day are allowed (the tests use seconds).
    return_window_days: float = Field(default=30.0, ge=0)
    order_retention_days: float = Field(default=90.0, gt=0)
    # An order's own figures (streams/core/saga/order_checks.py): its total may exceed what its
    # lines are worth by this share plus this amount (tax, shipping), and a line may ask for
    # at most this many units; beyond either it is REJECTED with the reason.
    order_total_tolerance_pct: Decimal = Field(default=Decimal(50), ge=0)
    order_total_tolerance_abs: Decimal = Field(default=Decimal(100), ge=0)
    max_line_quantity: int = Field(default=100_000, ge=1)
    # The box catalogue cartons are chosen from (YAML); unset: the built-in one, which is
    # what deploy/cartons/boxes.yaml holds.
    carton_catalogue: Path | None = None
    # Returns: the format of the printable label in a ReturnLabelCommand.
    label_format: Literal["ZPL", "PDF"] = "ZPL"
    # KPI reports (streams/kpi_stage.py, `dom report`): the stages run when ``kpis`` is on;
    # windows are hours and days of ``timezone`` (an IANA name); a window is dropped once it
    # ended more than ``report_retention_days`` ago; an order's facts once they took nothing
    # for the return window plus the order retention. Off by default for now: they add about
    # 3 messages and 2.5 ms of worker CPU per order (`dom bench`). `make run` turns them on.
    kpis: bool = False
    timezone: str = "UTC"
    report_retention_days: float = Field(default=400.0, gt=0)

    # Channel connectors (`dom connect`): the HTTP endpoint channels call, and the shared
    # secret a web store signs its webhooks with (HMAC-SHA256; unset: every webhook is 401).
    connector_host: str = "127.0.0.1"
    connector_port: int = 8088
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None

    # The channel sync (`dom sync`): shipments and cancels told back to the channels. A channel
    # without its URL is not called (its orders' news is counted as not configured).
    # Shopify's REST Admin API: the shop (https://<shop>.myshopify.com), an Admin API access
    # token of a custom app (scopes: write_orders, write_merchant_managed_fulfillment_orders,
    # and for stock: read_products, write_inventory),
    # the pinned API version, and how fast the shop's call bucket leaks (2/s; Plus: 20/s).
    shopify_shop_url: str | None = None
    shopify_access_token: SecretStr | None = None
    shopify_access_token_file: Path | None = None
    shopify_api_version: str = "2025-01"
    shopify_leak_rate: float = Field(default=2.0, gt=0)
    # The web channel's sellable figures (dom.channel-availability.v1) are set as Shopify's
    # "available" at one Shopify location: this one, or the shop's primary location. Scopes:
    # read_products, write_inventory. Products are matched by variant SKU, read from the shop
    # at start and again (at most every catalogue_refresh_s) when a figure names an unknown SKU.
    shopify_push_stock: bool = True
    shopify_location_id: int | None = None
    shopify_catalogue_refresh_s: float = Field(default=600.0, gt=0)
    # Amazon SP-API: the regional endpoint (https://sellingpartnerapi-na.amazon.com), an LWA
    # access token, and the marketplace the orders are sold on.
    spapi_endpoint: str | None = None
    spapi_access_token: SecretStr | None = None
    spapi_access_token_file: Path | None = None
    spapi_marketplace_id: str = "ATVPDKIKX0DER"
    # Or, as SP-API is used in production, Login with Amazon: the app's client id and secret
    # and the seller's refresh token, traded for an access token that lasts an hour (renewed
    # before it runs out, and when SP-API says it expired). Set, they win over the token.
    spapi_lwa_client_id: str | None = None
    spapi_lwa_client_secret: SecretStr | None = None
    spapi_lwa_client_secret_file: Path | None = None
    spapi_refresh_token: SecretStr | None = None
    spapi_refresh_token_file: Path | None = None
    spapi_lwa_endpoint: str = "https://api.amazon.com/auth/o2/token"
    spapi_seller_id: str = ""  # the seller (merchant token) feeds name in their header
    # Attempts a call gets when the channel fails (5xx, no answer); throttling (429) does not
    # count, but a call waits on throttling at most sync_max_wait_s in all. Then it is FAILED
    # and its status goes to the dead-letter topic (`dom sync retry` tries it again).
    sync_max_attempts: int = Field(default=6, ge=1)
    sync_max_wait_s: float = Field(default=600.0, gt=0)
    sync_backoff_base_s: float = Field(default=0.5, gt=0)
    sync_backoff_cap_s: float = Field(default=30.0, gt=0)
    sync_concurrency: int = Field(default=4, ge=1)  # orders told at once
    sync_start: Literal["earliest", "latest"] = "earliest"  # where a new sync starts reading
    sync_host: str = "127.0.0.1"
    sync_port: int = 8091  # /metrics, /healthz, /stats

    # The channels whose sellable figures are published, comma-separated, or "all": each
    # sku's availability record carries them (Availability.channels). By default the ones
    # sold through an outside API (the web store, the marketplace); POS, wholesale and the
    # call centre sell from the pipeline itself. Routing follows every channel's policy
    # whatever is published.
    channel_availability_for: str = "WEB,MARKETPLACE"
    # Also publish each of those figures that moved on dom.channel-availability.v1 (one
    # record per channel and sku, key <channel>|<sku>), for consumers built on that topic:
    # about one record more per order and published channel in `dom bench`.
    channel_availability_topic: bool = False

    # The operator console (`dom console`): who may sign in (`dom users`, a SQLite file; unset:
    # DATA_DIR/console/users.sqlite), how long a sign-in lasts, and how many failed sign-ins a
    # user name or a client address may have in a window before it must wait (429).
    console_users_file: Path | None = None
    # The console's saved reports (SQLite; unset: DATA_DIR/console/reports.sqlite).
    console_reports_file: Path | None = None
    console_session_ttl_s: float = Field(default=8 * 3600.0, gt=0)
    console_login_failures_per_user: int = Field(default=5, ge=1)
    console_login_failures_per_address: int = Field(default=20, ge=1)
    console_login_window_s: float = Field(default=300.0, gt=0)
    # Host names the console answers to, comma-separated (``name`` or ``name:port``); unset:
    # localhost, 127.0.0.1, [::1] and the address it was reached on, with its port. Anything
    # else is refused, so a page using DNS rebinding cannot talk to it through a browser.
    console_allowed_hosts: str | None = None
    # The session cookie's Secure flag; unset: set on https and on loopback names (browsers
    # keep a Secure cookie from http://localhost or 127.0.0.1), not on plain http elsewhere.
    console_cookie_secure: bool | None = None
    # Single sign-on through a reverse proxy that authenticates users and passes their name
    # (and role) in headers. Off unless set; only safe when nothing but the proxy can reach
    # the console, and the proxy overwrites these headers on every request.
    console_trusted_user_header: str | None = None
    console_trusted_role_header: str | None = None
    console_trusted_default_role: ConsoleRole | None = None

    # The local single-node broker of `dom kafka`.
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_home: Path = Field(default_factory=_default_cache_dir)
    kafka_data_dir: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}: {exc}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The reports' time zone (``DOM_TIMEZONE``)."""
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        """``DOM_<SECRET>_FILE`` names a file holding the secret (a mounted Kubernetes or
        Docker secret, say): unlike an environment variable, no ``ps e`` or
        ``/proc/<pid>/environ`` shows it. One trailing newline is dropped."""
        for name in SECRETS:
            path = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ValueError(f"DOM_{name.upper()} and DOM_{name.upper()}_FILE are both set")
            setattr(self, name, SecretStr(_read_secret(path, f"DOM_{name.upper()}_FILE")))
        return self

    def topic(self, name: str) -> str:
        """The real name of a contract topic under this deployment's prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def worker_dir(self) -> Path:
        """The worker's own RocksDB directory (two workers must never share one)."""
        return self.data_dir / "workers" / self.worker_name

    @property
    def app_id(self) -> str:
        """Faust app id: the consumer group and the prefix of changelog topics."""
        return f"{self.topic_prefix}dom"

    @property
    def console_users_path(self) -> Path:
        """The console's users file (names, roles, password hashes)."""
        return self.console_users_file or self.data_dir / "console" / "users.sqlite"

    @property
    def console_reports_path(self) -> Path:
        """The console's saved reports (name, KPI, period, grain, breakdown)."""
        return self.console_reports_file or self.data_dir / "console" / "reports.sqlite"

    @property
    def local_kafka_dir(self) -> Path:
        """Where the local broker keeps its config, logs, pid file and data."""
        return self.kafka_data_dir or self.data_dir / "kafka"

    # ---- Faust -------------------------------------------------------------------------------

    def faust_broker_url(self) -> str:
        """``kafka://host1:port;host2:port`` as Faust wants it."""
        hosts = [h.strip() for h in self.kafka_bootstrap.split(",") if h.strip()]
        return "kafka://" + ";".join(hosts)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
        )
        if self.kafka_ssl_certfile:
            keyfile = str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None
            context.load_cert_chain(str(self.kafka_ssl_certfile), keyfile)
        return context

    # ---- librdkafka (confluent-kafka) ---------------------------------------------------------

    def aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments to reach the cluster with an aiokafka client outside Faust (views,
        hole filling); its consumers add ``isolation_level`` (streams/runtime/side_consumer.py)."""
        conf = ClientConfig(bootstrap_servers=self.kafka_bootstrap.split(","))
        if self.kafka_security_protocol != "PLAINTEXT":
            conf["security_protocol"] = self.kafka_security_protocol
            if self.kafka_security_protocol.endswith("SSL"):
                conf["ssl_context"] = self.ssl_context()
            if self.kafka_security_protocol.startswith("SASL"):
                conf["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
                conf["sasl_plain_username"] = self.kafka_sasl_username
                if self.kafka_sasl_password:
                    conf["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return conf

    def librdkafka_config(self, **overrides: Any) -> dict[str, Any]:
        """The connection part of a confluent-kafka client config; callers add role settings."""
        conf = ClientConfig(
            {
                "bootstrap.servers": self.kafka_bootstrap,
                "client.id": self.kafka_client_id,
                "security.protocol": self.kafka_security_protocol,
            }
        )
        if self.kafka_security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            if self.kafka_sasl_username is not None:
                conf["sasl.username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol.endswith("SSL"):
            if self.kafka_ssl_cafile:
                conf["ssl.ca.location"] = str(self.kafka_ssl_cafile)
            if self.kafka_ssl_certfile:
                conf["ssl.certificate.location"] = str(self.kafka_ssl_certfile)
            if self.kafka_ssl_keyfile:
                conf["ssl.key.location"] = str(self.kafka_ssl_keyfile)
        conf.update(overrides)
        return conf

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """A durable producer: idempotent, ``acks=all``, so a retry never duplicates an event."""
        # murmur2 is what the Java client and Faust (aiokafka) use: every producer must place a
        # key on the same partition, or an order's events would reach two different owners.
        return self.librdkafka_config(
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "batch.size": self.producer_batch_bytes,
                "compression.type": self.producer_compression,
                "partitioner": "murmur2_random",
                **overrides,
            }
        )

    def schema_registry_config(self) -> dict[str, Any] | None:
        """Config for confluent-kafka's SchemaRegistryClient, or None to write single-object."""
        if not self.schema_registry_url:
            return None
        conf = ClientConfig(url=self.schema_registry_url)
        if self.schema_registry_basic_auth:
            conf["basic.auth.user.info"] = self.schema_registry_basic_auth.get_secret_value()
        return conf
