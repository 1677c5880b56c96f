"""SP-API with Login with Amazon's tokens, against the stand-in (loopback HTTP, no broker): a
token traded for the refresh token and kept, a new one when SP-API says it expired, and a
refused refresh token given up with LWA's reason."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.standin.app import running_standin
from connectors.standin.lwa import TOKEN_PATH, TokenDesk
from connectors.standin.shopify import StandinShop
from connectors.standin.spapi import StandinSpApi
from connectors.sync.amazon import AmazonSync
from connectors.sync.http import CallMetrics, ChannelHttp, GiveUp, TryAgain
from connectors.sync.lwa import LwaCredentials
from tests.unit.test_sync_channels import market_cancel, market_order

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def run(
    spapi: StandinSpApi,
    body: Callable[[AmazonSync, LwaCredentials], Awaitable[T]],
    refresh_token: str = "Atzr|standin-refresh-token",
    clock: Callable[[], float] | None = None,
) -> T:
    async def main() -> T:
        async with (
            running_standin(StandinShop(), spapi) as url,
            aiohttp.ClientSession() as session,
        ):
            credentials = LwaCredentials(
                session,
                url + TOKEN_PATH,
                "amzn1.application-oa2-client.standin",
                "standin-client-secret",
                refresh_token,
                clock=clock or Clock(),
            )
            metrics = CallMetrics(CollectorRegistry())
            http = ChannelHttp(session, "amazon", url, {}, metrics, credentials=credentials)
            return await body(AmazonSync(http, "ATVPDKIKX0DER", "A1STANDINSELLER"), credentials)

    return asyncio.run(main())


def test_a_token_is_traded_once_and_renewed_when_sp_api_says_it_expired() -> None:
    marketplace_clock = Clock()
    spapi = StandinSpApi(access_token="not-this-one", now=marketplace_clock)
    market_order(spapi, "114-0000002-0000001", {"9001": 1})
    market_order(spapi, "114-0000002-0000002", {"9002": 1})

    async def body(amazon: AmazonSync, credentials: LwaCredentials) -> list[object]:
        said: list[object] = [(await amazon.perform(market_cancel("114-0000002-0000001"))).detail]
        said.append(credentials.renewals)
        marketplace_clock.now += 3601  # the marketplace's hour passed; our clock says it did not
        with pytest.raises(TryAgain, match="has expired"):
            await amazon.perform(market_cancel("114-0000002-0000002"))
        said.append((await amazon.perform(market_cancel("114-0000002-0000002"))).detail)
        said.append(credentials.renewals)
        return said

    first, renewals, second, renewals_after = run(spapi, body)

    assert str(first).startswith("cancel of the order sent in feed")
    assert str(second).startswith("cancel of the order sent in feed")
    assert (renewals, renewals_after) == (1, 2)
    assert spapi.order_view("114-0000002-0000002")["order"]["OrderStatus"] == "Canceled"


def test_a_token_is_renewed_a_minute_before_it_runs_out() -> None:
    spapi = StandinSpApi(access_token="not-this-one", lwa=TokenDesk(ttl_s=3600))
    clock = Clock()

    async def body(_: AmazonSync, credentials: LwaCredentials) -> list[int]:
        await credentials.headers()
        clock.now += 3500
        await credentials.headers()  # 100 s left: kept
        clock.now += 50
        await credentials.headers()  # 50 s left: renewed
        return [credentials.renewals, len(spapi.lwa.issued)]

    assert run(spapi, body, clock=clock) == [2, 2]


def test_a_refused_refresh_token_is_given_up_with_lwas_reason() -> None:
    spapi = StandinSpApi()

    async def body(amazon: AmazonSync, _: LwaCredentials) -> None:
        await amazon.perform(market_cancel("114-0000002-0000003"))

    with pytest.raises(GiveUp, match="invalid_grant: The request has an invalid grant parameter"):
        run(spapi, body, refresh_token="Atzr|revoked")


def test_the_stand_in_refuses_token_requests_as_lwa_does() -> None:
    desk = TokenDesk()
    good = {
        "grant_type": "refresh_token",
        "refresh_token": desk.refresh_token,
        "client_id": desk.client_id,
        "client_secret": desk.client_secret,
    }
    assert desk.issue({**good, "refresh_token": ""}, 0.0) == (
        400,
        {
            "error_description": "The request is missing a required parameter : refresh_token",
            "error": "invalid_request",
        },
    )
    assert desk.issue({**good, "client_secret": "wrong"}, 0.0)[0:2] == (
        401,
        {"error_description": "Client authentication failed", "error": "invalid_client"},
    )
    assert desk.issue({**good, "grant_type": "password"}, 0.0)[1]["error"] == (
        "unsupported_grant_type"
    )
    status, token = desk.issue(good, 0.0)
    assert status == 200 and token["token_type"] == "bearer" and token["expires_in"] == 3600
    assert token["access_token"].startswith("Atza|")
    assert desk.state(token["access_token"], 3599.0) == "good"
    assert desk.state(token["access_token"], 3600.0) == "expired"
    assert desk.state("Atza|other", 0.0) == "unknown"
