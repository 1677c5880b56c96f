"""A minimal Faust app for the foundation test: counts keys in a RocksDB-backed table.

Configured only through environment variables, so the test can point it at its own topics.
"""

from __future__ import annotations

import os

import faust

from config.settings import Settings

settings = Settings()
app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=settings.faust_broker_url(),
    store="rocksdb://",
    datadir=os.environ["COUNTER_DATA_DIR"],
    topic_partitions=3,
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
)
source = app.topic(settings.topic("counter.in"), key_serializer="raw", value_serializer="raw")
sink = app.topic(settings.topic("counter.out"), key_serializer="raw", value_serializer="raw")
counts = app.Table("counts", default=int, partitions=3)


@app.agent(source)
async def count(stream):  # type: ignore[no-untyped-def]
    async for key, _value in stream.items():
        name = key.decode()
        counts[name] += 1
        await sink.send(key=key, value=f"{name}={counts[name]}".encode())
