"""Who may use the dashboard: the token, sessions, CSRF tokens and the Host check.

As Jupyter does, the dashboard is behind a token: a request carries it as
``Authorization: Bearer TOKEN``, or once as ``?token=TOKEN``, which swaps it
for an HttpOnly, SameSite=Strict session cookie and redirects to the same
address without it. The Host header must name this server (a loopback name,
the bound address, or a name allowed by hand), which defeats DNS rebinding:
a page of another site that resolves its own name to 127.0.0.1 still sends
its own name as the Host.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from ..errors import ConfigError

__all__ = ["Access", "Session", "is_loopback"]

_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_WILDCARDS: Final = frozenset({"", "0.0.0.0", "::"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only ever reaches this machine."""
    name = host.strip("[]").rstrip(".").lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_name(header: str) -> str:
    """The name in a Host header, without its port, lower case: ``[::1]:80`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return header.rstrip(".")


@attrs.frozen
class Session:
    """How a request proved it may look: a session cookie, or the token in its header."""

    #: the session cookie's random part; ``None`` when the token came in a header
    nonce: str | None

    @property
    def by_header(self) -> bool:
        """Authenticated by ``Authorization: Bearer``, which no other site can make a
        browser send: such a request needs no CSRF token."""
        return self.nonce is None


@attrs.frozen
class Access:
    """The dashboard's access rules, fixed at start."""

    #: the token requests must carry; ``None`` only when bound to a loopback address
    token: str | None
    #: the address the server is bound to
    bind_host: str
    #: extra names the Host header may carry (a reverse proxy's public name)
    allowed_hosts: frozenset[str] = frozenset()
    read_only: bool = False
    #: signs session cookies and CSRF tokens
    secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32))
    #: this machine's own names, allowed when bound to every address
    machine_names: frozenset[str] = frozenset()

    @classmethod
    def create(
        cls,
        *,
        token: str | None,
        no_token: bool,
        bind_host: str,
        allowed_hosts: Iterable[str] = (),
        read_only: bool = False,
        environ: Mapping[str, str],
    ) -> Access:
        """The rules for a server about to bind ``bind_host``.

        ``token`` wins over ``OMNIQ_DASHBOARD_TOKEN``; with neither, a random
        token is made. ``no_token`` is refused unless ``bind_host`` is loopback.
        """
        if no_token:
            if token is not None:
                raise ConfigError("give a token or ask for none (--no-token), not both")
            if not is_loopback(bind_host):
                raise ConfigError(
                    f"--no-token is only allowed on a loopback address, not {bind_host!r}: "
                    "anyone who can reach the port could cancel and purge tasks"
                )
            return cls(None, bind_host, _names(allowed_hosts), read_only)
        if token is None:
            token = environ.get("OMNIQ_DASHBOARD_TOKEN") or secrets.token_urlsafe(24)
        if not token.strip() or token != token.strip() or not token.isprintable():
            raise ConfigError("the dashboard token must be printable text without spaces")
        # derived from the token: a restart with the same token keeps sessions
        secret = hashlib.sha256(b"omniq-trio dashboard sessions\0" + token.encode()).digest()
        machine = _machine_names() if host_name(bind_host) in _WILDCARDS else frozenset()
        return cls(token, bind_host, _names(allowed_hosts), read_only, secret, machine)

    # ------------------------------------------------------------------ host

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's Host header names this server."""
        if not header:
            return False
        name = host_name(header)
        if is_loopback(name) or name in self.allowed_hosts:
            return True
        bound = host_name(self.bind_host)
        if bound in _WILDCARDS:
            # any address of this machine; names only when they are its own
            return _is_address(name) or name in self.machine_names
        return name == bound

    # ----------------------------------------------------------- credentials

    def token_matches(self, presented: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            presented.encode(), self.token.encode()
        )

    def bearer(self, authorization: str | None) -> Session | None:
        """The session of an ``Authorization: Bearer TOKEN`` header, if it is right."""
        if authorization is None:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(presented.strip()):
            return Session(None)
        return None

    def new_session(self) -> tuple[Session, str]:
        """A fresh session and the cookie value that carries it."""
        nonce = secrets.token_urlsafe(16)
        return Session(nonce), f"{nonce}.{self._sign('session', nonce)}"

    def cookie_session(self, value: str | None) -> Session | None:
        """The session a cookie value carries, if this server signed it."""
        if not value:
            return None
        nonce, _, signature = value.partition(".")
        if nonce and hmac.compare_digest(signature, self._sign("session", nonce)):
            return Session(nonce)
        return None

    def csrf_token(self, session: Session) -> str:
        """The token the session's forms carry (empty for header sessions: not needed)."""
        return "" if session.nonce is None else self._sign("csrf", session.nonce)

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        if session.by_header:
            return True
        return presented is not None and hmac.compare_digest(presented, self.csrf_token(session))

    def _sign(self, purpose: str, nonce: str) -> str:
        message = f"{purpose}:{nonce}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:40]


def _names(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(host_name(h) for h in hosts if h.strip())


def _machine_names() -> frozenset[str]:
    hostname = socket.gethostname().lower()
    return frozenset({hostname, hostname.partition(".")[0], socket.getfqdn().lower()})
