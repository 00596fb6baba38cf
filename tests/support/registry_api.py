"""Set-up for the registry API's rows in the authorization matrix: a released model or prompt."""

from __future__ import annotations

from tests.support.eval_api import Stage
from tests.support.tenant import unique

MODEL_BODY = {"backend": "openai", "params": {"model": "m"}}


def stage_release(t: Stage, kind: str) -> str:
    """A fresh name with versions 1 and 2, ``production`` moved 1 then 2 (so a rollback has a
    target), registered by the tenant's admin key."""
    assert kind in ("models", "prompts"), kind
    name = unique(kind[:-1])
    for n in (1, 2):
        body = {"template": f"v{n} {{{{ x }}}}"} if kind == "prompts" else {**MODEL_BODY, "params": {"n": n}}
        t.make("POST", f"/api/v1/{kind}/{name}/versions", json=body)
    for version in (1, 2):
        t.make("PUT", f"/api/v1/{kind}/{name}/aliases/production", json={"version": version})
    return name


def stage_gated(t: Stage, kind: str) -> str:
    """``stage_release`` plus a promotion policy with no gates on ``production``."""
    name = stage_release(t, kind)
    t.make("PUT", f"/api/v1/{kind}/{name}/aliases/production/policy", json={"required_gates": []})
    return name
