"""Login with Amazon as SP-API's clients meet it: ``POST /auth/o2/token`` trades a refresh token
for an access token that lasts an hour (https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api,
"Step 1. Request a Login with Amazon access token").

The request is form-encoded: ``grant_type=refresh_token``, ``refresh_token``, ``client_id``,
``client_secret``. The answer is ``200 {"access_token": "Atza|...", "refresh_token":
"Atzr|...", "token_type": "bearer", "expires_in": 3600}``. Refusals are OAuth 2.0's
(RFC 6749 section 5.2), as LWA words them: ``400 {"error": "invalid_request",
"error_description": "The request is missing a required parameter : <name>"}``, ``400
{"error": "unsupported_grant_type", ...}``, ``401 {"error": "invalid_client",
"error_description": "Client authentication failed"}``, ``400 {"error": "invalid_grant",
"error_description": "The request has an invalid grant parameter : refresh_token"}``.

`TokenDesk` keeps the tokens it issued with their expiry, on the stand-in's clock; the SP-API
gate asks it whether a token is good, expired (SP-API's 403 then says so), or unknown.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_PATH = "/auth/o2/token"
REQUIRED = ("grant_type", "refresh_token", "client_id", "client_secret")


@dataclass
class TokenDesk:
    """The app's LWA credentials and the access tokens issued for them."""

    client_id: str = "amzn1.application-oa2-client.standin"
    client_secret: str = "standin-client-secret"
    refresh_token: str = "Atzr|standin-refresh-token"
    ttl_s: float = 3600.0
    issued: dict[str, float] = field(default_factory=dict)  # token -> expires at

    def issue(self, form: Mapping[str, str], now: float) -> tuple[int, dict[str, Any]]:
        """The answer to a token request."""
        for name in REQUIRED:
            if not form.get(name):
                return 400, _error(
                    "invalid_request", f"The request is missing a required parameter : {name}"
                )
        if form["grant_type"] != "refresh_token":
            return 400, _error(
                "unsupported_grant_type", "The authorization grant type is not supported"
            )
        if (form["client_id"], form["client_secret"]) != (self.client_id, self.client_secret):
            return 401, _error("invalid_client", "Client authentication failed")
        if form["refresh_token"] != self.refresh_token:
            return 400, _error(
                "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        token = "Atza|" + secrets.token_urlsafe(48)
        self.issued[token] = now + self.ttl_s
        return 200, {
            "access_token": token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": int(self.ttl_s),
        }

    def state(self, token: str, now: float) -> str:
        """``good``, ``expired`` or ``unknown``."""
        expires = self.issued.get(token)
        if expires is None:
            return "unknown"
        return "good" if now < expires else "expired"


def _error(code: str, description: str) -> dict[str, Any]:
    return {"error_description": description, "error": code}


def token_route(desk: TokenDesk, now: Callable[[], float]) -> web.RouteDef:
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        status, body = desk.issue({k: str(v) for k, v in form.items()}, now())
        return web.json_response(body, status=status)

    return web.post(TOKEN_PATH, token)
