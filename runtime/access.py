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
import os
import re
import secrets
from urllib.parse import parse_qs

from .errors import InputError

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


CREDENTIAL_NAME = "token"  # systemd's LoadCredential=token:/etc/artcam/token (artcam service install)


def token_from(given: str | None, token_file: str | None, env=None) -> str | None:
    """The viewer token: ``--token``, else ``--token-file``, else ``$ARTCAM_TOKEN``, else the credential
    systemd passes a service (``$CREDENTIALS_DIRECTORY/token``); None when there is none.

    A file keeps the token off the command line, where every user of the machine could read it (``ps``).
    """
    env = os.environ if env is None else env
    if given:
        return given
    path = token_file
    if not path and not env.get("ARTCAM_TOKEN") and env.get("CREDENTIALS_DIRECTORY"):
        candidate = os.path.join(env["CREDENTIALS_DIRECTORY"], CREDENTIAL_NAME)
        path = candidate if os.path.isfile(candidate) else None
    if not path:
        return env.get("ARTCAM_TOKEN") or None
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the token file {path}: {getattr(e, 'strerror', None) or e}",
                         "check the path and that this user may read it") from None
    if not token or any(c.isspace() for c in token):
        raise InputError(f"the token file {path} is empty" if not token else
                         f"the token file {path} holds more than one word", "put the token alone in it")
    return token
