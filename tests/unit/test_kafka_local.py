"""The local broker's launcher, where it needs no broker: the cluster ids it formats with."""

from __future__ import annotations

import base64
import uuid
from unittest import mock

from dom.kafka_local import new_cluster_id


def test_cluster_ids_are_kafka_style_and_never_read_as_an_option() -> None:
    # The first uuid encodes to an id starting with "-", which StorageTool refused as an option.
    dashed = uuid.UUID(bytes=b"\xfb" + bytes(15))
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    plain = uuid.UUID(bytes=b"\x10" + bytes(15))
    with mock.patch("dom.kafka_local.uuid.uuid4", side_effect=[dashed, plain]):
        cluster_id = new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).rstrip(b"=").decode()
    assert len(cluster_id) == 22


def test_cluster_ids_differ() -> None:
    assert len({new_cluster_id() for _ in range(200)}) == 200
