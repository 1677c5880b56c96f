"""SP-API's credentials as production uses them: Login with Amazon trades the seller's refresh
token (with the app's client id and secret) for an access token that lasts an hour
(https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api). The
token is kept and renewed a minute before it runs out, or at once when SP-API answers that it
expired (`ChannelHttp` asks `forget`, then tries again).

A refusal (bad client, a revoked refresh token) is `GiveUp` quoting LWA's ``error`` and
``error_description``: no retry mends it. LWA down or busy is `TryAgain`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp

from connectors.sync.http import GiveUp, TryAgain

TOKEN_HEADER = "x-amz-access-token"
RENEW_BEFORE_S = 60.0


class LwaCredentials:
    """An access token for SP-API, from Login with Amazon."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self.clock = clock
        self.token: str | None = None
        self.expires_at = 0.0
        self.renewals = 0

    async def headers(self) -> dict[str, str]:
        if self.token is None or self.clock() >= self.expires_at - RENEW_BEFORE_S:
            await self._renew()
        assert self.token is not None
        return {TOKEN_HEADER: self.token}

    def forget(self) -> None:
        """SP-API said the token expired: the next call gets a new one."""
        self.token = None

    async def _renew(self) -> None:
        asked = self.clock()
        try:
            async with self.session.post(self.endpoint, data=self._form) as answer:
                status = answer.status
                body = await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TryAgain(f"Login with Amazon: {type(exc).__name__}: {exc}") from exc
        body = body if isinstance(body, dict) else {}
        if status == 429 or status >= 500:
            raise TryAgain(f"Login with Amazon answered {status}: {body}")
        if status != 200 or not body.get("access_token"):
            said = f"{body.get('error', '?')}: {body.get('error_description', '')}"
            raise GiveUp(f"Login with Amazon refused the credentials ({status} {said})")
        self.token = str(body["access_token"])
        self.expires_at = asked + float(body.get("expires_in", 3600))
        self.renewals += 1
