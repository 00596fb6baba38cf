"""A tenant's API route cannot aim the operator's secrets, or the server's own network
position, at a destination of its choosing; upstream error bodies do not reach callers.

The upstreams here are local servers that record the ``Authorization`` header they get,
so "no secret left" is observed where it would have arrived.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import (
    RecordingUpstream,
    chat,
    live_gateway,
    project_of,
)
from tests.support.keys import new_key
from watchkeep.security.egress import origin_of

SECRET = "sk-operator-0123456789abcdef"
LOOPBACK = {"egress_allow_networks": "127.0.0.0/8"}


def _openai(name: str, base_url: str, secret_env: str | None = None) -> dict[str, Any]:
    deployment: dict[str, Any] = {"name": name, "backend": "openai_compatible", "base_url": base_url}
    if secret_env:
        deployment["api_key_env"] = secret_env
    return deployment


def _admin(gw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(gw.database_url, 'admin', project_of(gw))}"}


def _call(client: httpx.Client, model: str, **extra: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json={**chat(**extra), "model": model})


def test_a_file_secret_goes_only_to_the_origins_it_is_bound_to(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_SECRET", SECRET)
    with RecordingUpstream() as legit, RecordingUpstream() as evil:
        config = {
            "routes": [{"name": "m", "deployments": [_openai("a", legit.url(), "WK_SECRET")]}],
            # The operator lets tenants reach the attacker's origin, but binds no secret to it.
            "allowed_upstream_origins": [f"http://127.0.0.1:{evil.port}"],
        }
        with live_gateway(tmp_path, database_url, config, **LOOPBACK) as gw, gw.http() as client:
            admin = _admin(gw)
            steal = {"deployments": [_openai("x", evil.url(), "WK_SECRET")]}
            refused = client.put("/api/v1/routes/steal", json=steal, headers=admin)
            stolen = _call(client, "steal")
            plain = {"deployments": [_openai("x", evil.url())]}
            assert client.put("/api/v1/routes/plain", json=plain, headers=admin).status_code == 200
            assert _call(client, "plain").status_code == 200
            bound = {"deployments": [_openai("x", legit.url(), "WK_SECRET")]}
            assert client.put("/api/v1/routes/bound", json=bound, headers=admin).status_code == 200
            assert _call(client, "bound").status_code == 200
    assert refused.status_code == 422, refused.text
    assert "WK_SECRET" in refused.json()["error"]["message"]
    assert stolen.status_code == 404
    assert evil.authorizations == [None]  # the plain route reached it, without a secret
    assert legit.authorizations == [f"Bearer {SECRET}"]


def test_an_origin_outside_the_allow_list_is_refused(tmp_path: Path, database_url: str) -> None:
    with RecordingUpstream() as legit, RecordingUpstream() as other:
        config = {"routes": [{"name": "m", "deployments": [_openai("a", legit.url())]}]}
        with live_gateway(tmp_path, database_url, config, **LOOPBACK) as gw, gw.http() as client:
            admin = _admin(gw)
            elsewhere = {"deployments": [_openai("x", other.url())]}
            refused = client.put("/api/v1/routes/elsewhere", json=elsewhere, headers=admin)
            same = {"deployments": [_openai("x", legit.url("ok"))]}
            assert client.put("/api/v1/routes/same", json=same, headers=admin).status_code == 200
            _call(client, "elsewhere")
    assert refused.status_code == 422, refused.text
    assert "allowed_upstream_origins" in refused.json()["error"]["message"]
    assert other.authorizations == []


INTERNAL = [
    "http://169.254.169.254/v1",
    "http://10.0.0.1:8000/v1",
    "http://localhost:{port}/v1",
    "http://127.0.0.1:{port}/v1",
    "http://[::1]:{port}/v1",
]


def test_internal_addresses_are_refused_when_the_route_is_put(tmp_path: Path, database_url: str) -> None:
    with RecordingUpstream() as target:
        urls = [u.format(port=target.port) for u in INTERNAL]
        config = {
            "routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}],
            # Even an allow-listed origin must not point inward without egress_allow_networks.
            "allowed_upstream_origins": [origin_of(u) for u in urls],
        }
        with live_gateway(tmp_path, database_url, config) as gw, gw.http() as client:
            admin = _admin(gw)
            answers = [
                client.put(f"/api/v1/routes/r{i}", json={"deployments": [_openai("x", url)]}, headers=admin)
                for i, url in enumerate(urls)
            ]
            for i in range(len(urls)):
                _call(client, f"r{i}")
    assert [a.status_code for a in answers] == [422] * len(urls), [a.text for a in answers]
    assert all("egress" in a.json()["error"]["message"] for a in answers)
    assert target.authorizations == []


def _name_resolving_to_loopback() -> str:
    """A host name (not a literal, not ``localhost``) this machine resolves to 127.0.0.1."""
    for name in (socket.gethostname(), "runsc", "vm"):
        try:
            infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        if infos and all(str(i[4][0]).startswith("127.") for i in infos):
            return name
    # Which names resolve inward is the host's resolver's business, so this end-to-end case
    # may not run everywhere; the same check on a resolved name ("localhost", always in the
    # hosts file) runs unconditionally in test_egress_policy.py.
    pytest.skip("no host name here resolves to loopback")


def test_a_name_that_resolves_inward_is_refused_at_connect_time(tmp_path: Path, database_url: str) -> None:
    # The static check cannot know where a name points (DNS rebinding: public when stored,
    # 127.0.0.1 when called); the connection's resolver checks the address it gets.
    name = _name_resolving_to_loopback()
    with RecordingUpstream() as target:
        url = target.url(host=name)
        config = {
            "routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}],
            "allowed_upstream_origins": [origin_of(url)],
        }
        with live_gateway(tmp_path, database_url, config) as gw, gw.http() as client:
            admin = _admin(gw)
            route = {"deployments": [_openai("x", url)], "retry": {"attempts": 0}}
            stored = client.put("/api/v1/routes/rebound", json=route, headers=admin)
            answer = _call(client, "rebound")
    assert stored.status_code == 200, stored.text
    assert answer.status_code == 502, answer.text
    assert "egress policy" in answer.json()["error"]["message"]
    assert target.authorizations == []


def test_upstream_error_bodies_are_not_relayed(tmp_path: Path, database_url: str) -> None:
    with RecordingUpstream() as upstream:
        config = {
            "routes": [
                {"name": name, "deployments": [_openai("a", upstream.url(mode))], "retry": {"attempts": 0}}
                for name, mode in (("m401", "status401"), ("m400", "status400"), ("mstream", "streamerror"))
            ]
        }
        with live_gateway(tmp_path, database_url, config) as gw, gw.http() as client:
            unauthorised = _call(client, "m401")
            rejected = _call(client, "m400")
            streamed = _call(client, "mstream", stream=True)
    assert (unauthorised.status_code, rejected.status_code) == (502, 400)
    for response in (unauthorised, rejected, streamed):
        assert RecordingUpstream.LEAK not in response.text
        assert "10.0.0.7" not in response.text
    assert "upstream answered 401" in unauthorised.json()["error"]["message"]
    assert "upstream answered 400" in rejected.json()["error"]["message"]
    assert "the upstream stream failed" in streamed.text
