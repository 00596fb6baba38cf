"""The route form of the console: a route's common fields or its whole YAML, to a ``RouteSpec``.

The console never judges a route itself: what is typed becomes the dict the routes API
would receive, ``RouteSpec`` (the API's request model, with ``RouteBody``'s checks) parses
it, and ``RouteSync.put`` applies the operator's policy (``gateway.admission``: egress,
upstream origins, secret bindings, llama.cpp profiles, the ttl ceiling, the quota) exactly
as it does for ``PUT /api/v1/routes/{name}``. This module only moves values between the
form and that dict and pins pydantic's messages on the fields that hold the bad values.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from watchkeep.gateway.config import RouteSpec
from watchkeep.ui.forms import Form, typed_mapping

MAX_SPEC_CHARS = 64_000  # a route of 65 deployments with every field fits several times over
EDITABLE = ("model", "base_url", "weight")  # per deployment, as ``<field>:<deployment>``
ROLES = ("deployments", "fallbacks")
NEW_ROUTE = {
    "deployments": [
        {"name": "stable", "backend": "mock", "weight": 9},
        {"name": "canary", "backend": "mock", "weight": 1},
    ],
    "fallbacks": [],
}


def spec_text(body: dict[str, Any]) -> str:
    """A route body as the YAML the text box shows (defaults left out, so it stays short)."""
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def stored_body(spec: RouteSpec) -> dict[str, Any]:
    """The route's body (no name) without default values, but with every primary's weight
    (the canary split should be read without knowing the default)."""
    body = spec.model_dump(mode="json", exclude={"name"}, exclude_defaults=True)
    for stored, d in zip(body["deployments"], spec.deployments, strict=True):
        stored.setdefault("weight", d.weight)
    return body


def fields_of(spec: RouteSpec) -> dict[str, str]:
    """The form values of the common fields of every deployment of ``spec``."""
    values: dict[str, str] = {}
    for d in spec.all_deployments():
        values[f"model:{d.name}"] = d.model or ""
        values[f"base_url:{d.name}"] = d.base_url or ""
        values[f"weight:{d.name}"] = f"{d.weight:g}"
    return values


def _deployment_dicts(body: dict[str, Any]) -> list[dict[str, Any]]:
    shadow = body.get("shadow")
    return [*body.get("deployments", []), *body.get("fallbacks", []), *([shadow] if shadow else [])]


def with_fields(form: Form, current: RouteSpec) -> dict[str, Any]:
    """``current``'s body with the form's model, base URL and weight of each deployment."""
    body = current.model_dump(mode="json", exclude={"name"})
    for d in _deployment_dicts(body):
        for field in EDITABLE:
            typed = form.data.get(f"{field}:{d['name']}")
            if typed is None:
                continue
            typed = typed.strip()
            if field == "weight":
                d[field] = typed
            else:
                d[field] = typed or None
    return body


def yaml_body(form: Form, name: str) -> dict[str, Any] | None:
    """The route typed in the ``spec`` box (YAML or JSON), or None with an error on ``spec``."""
    data = typed_mapping(
        form,
        noun="route",
        shape="a mapping with deployments (and fallbacks, shadow, retry, ...)",
        max_chars=MAX_SPEC_CHARS,
    )
    if data is None:
        return None
    if data.get("name", name) != name:
        form.fail("spec", f"the YAML names the route {data['name']!r}; its name here is {name!r}")
        return None
    data.pop("name", None)
    return data


def parsed(form: Form, name: str, body: dict[str, Any], *, by_field: bool) -> RouteSpec | None:
    """``RouteSpec`` of ``name`` and ``body``, or None with each error on its field
    (``<field>:<deployment>`` when ``by_field`` and the field is on the form, else ``spec``)."""
    try:
        return RouteSpec.model_validate({**body, "name": name})
    except ValidationError as exc:
        for error in exc.errors():
            form.fail(_placed(error["loc"], body, by_field), str(error["msg"]).removeprefix("Value error, "))
        return None


def _placed(loc: tuple[int | str, ...], body: dict[str, Any], by_field: bool) -> str:
    """The form field an error at ``loc`` belongs to."""
    if loc[:1] == ("name",):
        return "name"
    path = ".".join(str(part) for part in loc)
    if not by_field:
        return f"spec ({path})" if path else "spec"
    deployment = _deployment_at(body, loc)
    if deployment is not None and len(loc) > 0 and loc[-1] in EDITABLE:
        return f"{loc[-1]}:{deployment}"
    return f"route ({path})" if path else "route"


def _deployment_at(body: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """The name of the deployment ``loc`` points into, if any."""
    if loc[:1] == ("shadow",):
        shadow = body.get("shadow")
        return str(shadow.get("name")) if isinstance(shadow, dict) else None
    if len(loc) >= 2 and loc[0] in ROLES and isinstance(loc[1], int):
        items = body.get(str(loc[0]), [])
        if 0 <= loc[1] < len(items) and isinstance(items[loc[1]], dict):
            return str(items[loc[1]].get("name"))
    return None
