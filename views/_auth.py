"""Optional bearer-token access: every path needs the token except the open probes."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BearerTokenMiddleware", "check_token"]


def check_token(token: str) -> None:
    """A ``ValueError`` for a token no request could present: empty, or with whitespace around it.

    A client's header value loses its surrounding whitespace, so a token read from a secret file
    that ends in a newline would never match and every request would be refused without a hint.
    The message never contains the token.
    """
    if not token:
        raise ValueError("the API token must not be empty")
    if token != token.strip():
        raise ValueError(
            "the API token has leading or trailing whitespace (a secret file ending in a newline?); "
            "no request could present it: strip it"
        )
    if not token.isprintable():
        raise ValueError("the API token contains a control character, which no HTTP header can carry")


class BearerTokenMiddleware:
    """Answers 401 to any HTTP request without ``Authorization: Bearer <token>``.

    Only paths for which ``is_open(path)`` is true pass without it (the liveness and readiness
    probes). The check is on the decoded path exactly as routing sees it, so no case, encoding or
    query-string variant of a protected path gets through: anything not exactly open is protected,
    unknown paths included. The token is compared in constant time and never logged.
    """

    def __init__(self, app: ASGIApp, token: str, is_open: Callable[[str], bool]) -> None:
        check_token(token)
        self.app = app
        self._token = token.encode("utf-8")
        self._is_open = is_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        if self._authorized(scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "missing or invalid bearer token"}).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"www-authenticate", b'Bearer realm="telemetry"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, headers: Collection[tuple[bytes, bytes]]) -> bool:
        presented = [value for name, value in headers if name.lower() == b"authorization"]
        if len(presented) != 1:  # none, or an ambiguous repetition
            return False
        scheme, _, credential = presented[0].strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(credential.strip(), self._token)
