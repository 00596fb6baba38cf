"""The egress address policy: every spelling of an internal address is refused, on the URL
and on the address a name resolves to (what the gateway, alerts and SMTP connect through)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeep.security.egress import AddressPolicy, EgressRefused, GuardedResolver, guarded_httpx_client

DENY = AddressPolicy()
INTERNAL_URLS = [
    "http://127.0.0.1/",
    "http://127.1/",  # short form: resolved by the C library to 127.0.0.1
    "http://2130706433/",  # decimal
    "http://0x7f000001/",  # hex
    "http://0177.0.0.1/",  # octal
    "http://localhost:8700/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of the metadata address
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://0.0.0.0/",
    "http://[fe80::1]/",
]


def _refused_somewhere(policy: AddressPolicy, url: str) -> bool:
    """Refused by the static check, or by the check of what the host resolves to."""
    try:
        policy.check_url(url)
    except EgressRefused:
        return True
    parts = urlsplit(url)
    try:
        policy.resolve(parts.hostname or "", parts.port or 80)
    except EgressRefused:
        return True
    return False


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_destinations_are_refused(url: str) -> None:
    assert _refused_somewhere(DENY, url)


def test_listed_networks_are_allowed_and_nothing_else() -> None:
    policy = AddressPolicy.from_strings(["127.0.0.0/8"])
    assert policy.check_url("http://127.0.0.1:9000/x") == "http://127.0.0.1:9000"
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.2")) is None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) is not None
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) is not None


def test_public_addresses_pass_and_origins_are_normalised() -> None:
    assert DENY.check_url("HTTPS://Example.COM/v1") == "https://example.com:443"
    assert DENY.check_url("http://8.8.8.8:8080/") == "http://8.8.8.8:8080"
    assert DENY.check_url("https://[2606:4700::1111]/") == "https://[2606:4700::1111]:443"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/", "http:///x"]
)
def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(EgressRefused):
        DENY.check_url(url)


@given(st.ip_addresses())
def test_every_non_global_address_is_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    inner = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    target = inner or ip
    if not target.is_global or target.is_multicast:
        assert DENY.refusal(ip) is not None


def test_names_that_resolve_inward_are_refused_at_connect_time() -> None:
    """DNS rebinding: the URL passed when stored; the connection is checked again."""
    with pytest.raises(EgressRefused):
        DENY.connect("localhost", 9, timeout=1)
    with pytest.raises(OSError, match="egress refused"):
        asyncio.run(GuardedResolver(DENY).resolve("localhost", 80, socket.AF_INET))
    client = guarded_httpx_client(DENY, timeout=2)
    with pytest.raises(EgressRefused):
        client.get("http://localhost:9/")
    client.close()
