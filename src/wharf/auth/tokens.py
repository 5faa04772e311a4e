"""Access tokens as OpenShift makes them: `sha256~<random>` handed out once, and stored only as
the name of an object derived from the token's sha256."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

OAUTH_PREFIX = "sha256~"
SERVICE_ACCOUNT_PREFIX = "wharfsa~"
DEFAULT_LIFETIME = 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def new_token(prefix: str = OAUTH_PREFIX) -> str:
    return prefix + _b64(secrets.token_bytes(32))


def stored_name(token: str) -> str:
    """The name under which a token is kept: never the token itself."""
    for prefix in (OAUTH_PREFIX, SERVICE_ACCOUNT_PREFIX):
        if token.startswith(prefix):
            return prefix + _b64(hashlib.sha256(token[len(prefix) :].encode()).digest())
    return OAUTH_PREFIX + _b64(hashlib.sha256(token.encode()).digest())


# Tokens are base64url text; anything else cannot be one and is refused before any lookup.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_~.=-]{1,512}")


def looks_like_token(token: str) -> bool:
    return _TOKEN_SHAPE.fullmatch(token) is not None
