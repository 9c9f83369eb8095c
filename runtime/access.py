"""Who may watch and steer a device through the web viewer: loopback is private, anything else needs a token.

The viewer shows a camera and changes what the device does, so it is safe by default: it binds
127.0.0.1 unless asked otherwise, and any other address (a LAN IP, ``0.0.0.0``) requires a token,
given by the user or generated here and printed once. The token is compared in constant time
(``hmac.compare_digest``) on every request. A loopback bind without a token still checks the
``Host`` header, so a web page on another site cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from urllib.parse import parse_qs

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for wildcards (``0.0.0.0``, ``::``) and names."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token the server will require on ``host`` and whether it was generated here.

    A given token is always required (also on loopback); a non-loopback bind without one gets a
    fresh random token (128 bits, URL-safe) that the caller prints once."""
    if token:
        return token, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(16), True


_BEARER = re.compile(r"\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


def presented_token(headers, query: str) -> str:
    """The token a request carries: ``Authorization: Bearer T`` (scripts) or ``?token=T`` (an ``<img>``
    stream, a phone browser), else the empty string."""
    m = _BEARER.match(headers.get("Authorization", "") or "")
    if m:
        return m.group(1)
    values = parse_qs(query, keep_blank_values=True).get("token")
    return values[0] if values else ""


def token_ok(expected: str | None, presented: str) -> bool:
    """Constant-time comparison (bytes, so a non-ASCII token is refused, not an exception)."""
    if expected is None:
        return True
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8", "surrogateescape"))


def host_header_ok(host_header: str | None) -> bool:
    """Whether a request to a tokenless loopback server names a loopback host (DNS-rebinding guard)."""
    if not host_header:
        return False
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(host)
