"""A small client for the MLflow Model Registry REST API (``/api/2.0/mlflow/...``).

Why httpx against the documented REST API rather than ``mlflow``'s ``MlflowClient``: the
registry endpoints are a handful of JSON calls, and the ``mlflow`` packages would pull
dozens of pinned dependencies into watchkeep's environment (docs/decisions/0016). Only the
endpoints the interop needs are here: registered models (search, get, create, set-tag),
model versions (search, create) and aliases (set, delete). MLflow numbers versions
as strings on the wire; this client returns its JSON as is and callers convert.

The base URL is operator-given (the CLI); nothing here applies the tenant egress policy, so
an API route that lets a tenant name a server must check the URL first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

import httpx

API = "/api/2.0/mlflow"
PAGE_MODELS = 1000  # registered-models/search allows up to 1000 a page
PAGE_VERSIONS = 10_000


class MlflowError(RuntimeError):
    """A failed call: the server's error code and message, or why it could not be reached."""

    def __init__(self, message: str, error_code: str = "") -> None:
        super().__init__(message)
        self.error_code = error_code


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """MLflow's wire form of tags: ``[{"key", "value"}]``, sorted for a stable request."""
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def tag_dict(entity: Mapping[str, Any]) -> dict[str, str]:
    """An entity's ``tags`` list as a mapping (absent when it has none)."""
    return {str(t["key"]): str(t.get("value", "")) for t in entity.get("tags") or []}


def _quote(value: str) -> str:
    """A string literal for MLflow's filter syntax."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MlflowRegistry:
    """The Model Registry of one MLflow tracking server (closes its own httpx client)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"MLflow tracking URI must be http(s)://..., not {base_url!r}")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url + API, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> MlflowRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        try:
            if method == "GET":
                response = self._http.get(path, params=dict(body or {}))
            else:
                response = self._http.request(method, path, json=dict(body or {}))
        except httpx.HTTPError as exc:
            raise MlflowError(f"MLflow at {self.base_url} cannot be reached: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400 or not isinstance(data, dict):
            payload = data if isinstance(data, dict) else {}
            message = payload.get("message") or response.text[:200] or response.reason_phrase
            code = str(payload.get("error_code", ""))
            raise MlflowError(f"MLflow {path} answered {response.status_code}: {message}", code)
        return cast("dict[str, Any]", data)

    def _pages(self, path: str, key: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            page = self._call("GET", path, {**query, **({"page_token": token} if token else {})})
            yield from page.get(key) or []
            token = str(page.get("next_page_token") or "")
            if not token:
                return

    # --- registered models --------------------------------------------------------------

    def registered_models(self) -> list[dict[str, Any]]:
        """Every registered model (with ``tags`` and ``aliases``), by name."""
        found = self._pages("/registered-models/search", "registered_models", {"max_results": PAGE_MODELS})
        return sorted(found, key=lambda m: str(m["name"]))

    def registered_model(self, name: str) -> dict[str, Any] | None:
        """One registered model, or None when the server has no model of that name."""
        try:
            return cast(
                "dict[str, Any]",
                self._call("GET", "/registered-models/get", {"name": name})["registered_model"],
            )
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def create_registered_model(self, name: str, *, description: str, tags: Mapping[str, str]) -> None:
        """Create ``name`` with a description and tags."""
        body = {"name": name, "description": description, "tags": tag_list(tags)}
        self._call("POST", "/registered-models/create", body)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or overwrite) one tag of a registered model."""
        self._call("POST", "/registered-models/set-tag", {"name": name, "key": key, "value": value})

    # --- model versions -----------------------------------------------------------------

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name`` (with ``tags``), oldest first."""
        query = {"filter": f"name={_quote(name)}", "max_results": PAGE_VERSIONS}
        found = self._pages("/model-versions/search", "model_versions", query)
        return sorted(found, key=lambda v: int(v["version"]))

    def create_model_version(
        self, name: str, *, source: str, description: str, tags: Mapping[str, str], run_id: str | None = None
    ) -> dict[str, Any]:
        """A new version of ``name`` (MLflow numbers it); returns it."""
        body: dict[str, Any] = {
            "name": name,
            "source": source,
            "description": description,
            "tags": tag_list(tags),
        }
        if run_id:
            body["run_id"] = run_id
        return cast("dict[str, Any]", self._call("POST", "/model-versions/create", body)["model_version"])

    # --- aliases ------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` of ``name`` at ``version`` (MLflow keeps no record of the move)."""
        self._call("POST", "/registered-models/alias", {"name": name, "alias": alias, "version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` of ``name``."""
        self._call("DELETE", "/registered-models/alias", {"name": name, "alias": alias})
