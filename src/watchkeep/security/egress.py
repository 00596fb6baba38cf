"""Where the server may connect on a tenant's behalf: one address policy for every outbound call.

A tenant can name URLs the server will call (gateway routes made through the API, alert
webhooks, Slack, Alertmanager, SMTP hosts). Without a check, such a URL reaches the
cloud metadata service, a database on loopback or an admin port on the private
network (server-side request forgery: LiteLLM CVE-2024-6587, Langfuse CVE-2026-41487).

The rule is deny by default: only globally routable addresses, plus networks the
operator lists (``WATCHKEEP_EGRESS_ALLOW_NETWORKS``). The check runs twice: on the URL
when it is stored (a literal address, ``localhost``), and on the address actually
connected to, after the name is resolved, so a name that resolves to a public address
when stored and to ``127.0.0.1`` at call time (DNS rebinding) is refused all the same.
The adapters below give aiohttp (gateway upstreams), httpx (alert webhooks) and
smtplib (e-mail) the same resolver, so no caller has a way around it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services that are not covered by "not global" on every provider.
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(ValueError):
    """A destination the policy does not allow; the message says which and why."""


class EgressConnectRefused(OSError):
    """The connect-time refusal, an ``OSError`` as aiohttp expects from a resolver; its own
    type so a client can tell the policy's refusal from a network failure."""


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in a mapped (::ffff:a.b.c.d) or NAT64 IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def origin_of(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL, lower-cased, default port filled in."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise EgressRefused(f"only http and https URLs are allowed, not {scheme or 'no scheme'!r}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise EgressRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("credentials in the URL are not allowed")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise EgressRefused(f"invalid port: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses outbound calls may reach: global ones and the listed networks."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> AddressPolicy:
        """A policy from CIDR strings (``"127.0.0.0/8"``, ``"10.1.2.3"``); ``ValueError`` if one is bad."""
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()))

    def _listed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed_networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be reached, or None."""
        if self._listed(ip):
            return None
        inner = _embedded_v4(ip)
        if inner is not None:
            return self.refusal(inner)
        if ip in _METADATA:
            return f"{ip} is a cloud metadata address"
        if ip.is_loopback:
            return f"{ip} is a loopback address"
        if ip.is_link_local:
            return f"{ip} is a link-local address"
        if not ip.is_global or ip.is_multicast:
            return f"{ip} is a private or reserved address"
        return None

    def check_ip(self, ip: IPAddress) -> None:
        """Raise ``EgressRefused`` unless ``ip`` may be reached."""
        why = self.refusal(ip)
        if why is not None:
            raise EgressRefused(f"{why}; the operator can allow it with WATCHKEEP_EGRESS_ALLOW_NETWORKS")

    def check_host(self, host: str) -> None:
        """The static part of the check: a literal address, or a ``localhost`` name."""
        name = host.strip("[]").rstrip(".").lower()
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name == "localhost" or name.endswith(".localhost"):
                self.check_ip(ipaddress.ip_address("127.0.0.1"))
            return
        self.check_ip(ip)

    def check_url(self, url: str) -> str:
        """The URL's origin, after the static check (the connection is checked again)."""
        origin = origin_of(url)
        self.check_host(urlsplit(url.strip()).hostname or "")
        return origin

    def checked_addresses(self, infos: Sequence[Any], host: str) -> None:
        """Refuse a name if any address it resolved to is refused (a rebinding name may
        return a public and an internal address and let the client pick)."""
        if not infos:
            raise EgressRefused(f"{host!r} did not resolve")
        for info in infos:
            self.check_ip(ipaddress.ip_address(str(info).split("%", 1)[0]))

    def resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        """``(family, address)`` pairs for ``host``, each allowed; raises ``EgressRefused``."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise EgressRefused(f"{host!r} did not resolve ({exc.strerror})") from None
        pairs = [(int(i[0]), str(i[4][0])) for i in infos]
        self.checked_addresses([a for _, a in pairs], host)
        return pairs

    def connect(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A TCP connection to ``host`` through an address the policy allows (for smtplib)."""
        last: OSError | None = None
        for family, address in self.resolve(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                if timeout is not None:
                    sock.settimeout(timeout)
                sock.connect((address, port))
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or OSError(f"could not connect to {host}:{port}")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver with the policy applied to every answer (aiohttp does not
    resolve literal addresses: ``check_url`` covers those when the URL is accepted)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner: ThreadedResolver | None = None  # needs the running loop: made on first use

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        try:
            self._policy.checked_addresses([r["host"] for r in results], host)
        except EgressRefused as exc:
            raise EgressConnectRefused(f"egress refused: {exc}") from None
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend connecting only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self._policy.check_host(host)
        pairs = self._policy.resolve(host, port)
        # Connect to the checked address; TLS still verifies the name (httpcore passes the
        # URL's host as server_hostname), so the certificate check is unchanged.
        return super().connect_tcp(pairs[0][1], port, timeout, local_address, socket_options)


def guarded_httpx_client(policy: AddressPolicy, timeout: float) -> httpx.Client:
    """An httpx client (no redirects) whose every connection passes the policy."""
    transport = httpx.HTTPTransport()
    # httpx has no setting for the network backend: rebuild its pool around ours, keeping
    # the TLS context (certificate checks) it made.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=transport._pool._ssl_context, network_backend=_GuardedBackend(policy)
    )
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
