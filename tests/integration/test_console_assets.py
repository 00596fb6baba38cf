"""The console's browser assets: vendored from npm, served from the wheel, never from a CDN.

``/docs`` (Swagger UI) must load only local files and run under a CSP without inline
scripts; vendored libraries are cached for a year; ``scripts/vendor-ui.sh`` copies exactly
the files the pages load, does nothing when the lockfile has not changed, and says what to
install when npm is missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.apps import Api
from watchkeep.ui.assets import STATIC, StaticUrls, mount_static

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "vendor-ui.sh"
LOCK = REPO / "src" / "watchkeep" / "ui" / "npm" / "package-lock.json"


class PageParts(HTMLParser):
    """The URLs a page loads, its inline scripts, and any inline handlers or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_attrs: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.inline_attrs += [
            f"{tag} {name}" for name, _ in attrs if name.startswith("on") or name == "style"
        ]
        if tag == "script":
            self._in_script = "src" not in found
            if found.get("src"):
                self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def parse(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    return parts


CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def test_docs_loads_only_local_assets_without_inline_script(api: Api) -> None:
    response = api.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parts = parse(response.text)
    assert parts.inline_scripts == []
    assert parts.inline_attrs == []
    assert "cdn" not in response.text.lower()
    assert len(parts.urls) == 4  # favicon, stylesheet, bundle, init script
    for url in parts.urls:
        assert url.startswith("/static/"), url
        assert "://" not in url, url
        asset = api.client.get(url)
        assert asset.status_code == 200, url
        suffix = Path(url.split("?")[0]).suffix
        assert CONTENT_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
    assert 'data-openapi-url="/openapi.json"' in response.text
    assert api.client.get("/openapi.json").status_code == 200


def test_docs_sends_a_policy_that_forbids_inline_and_foreign_scripts(api: Api) -> None:
    policy = api.client.get("/docs").headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert all("http" not in value for values in directives.values() for value in values)


def test_docs_is_not_in_the_openapi_and_fastapis_cdn_pages_are_gone(api: Api) -> None:
    assert "/docs" not in api.client.get("/openapi.json").json()["paths"]
    assert api.client.get("/redoc").status_code == 404
    assert api.client.get("/docs/oauth2-redirect").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "vendor/htmx.min.js",
        "vendor/uPlot.iife.min.js",
        "vendor/uPlot.min.css",
        "vendor/swagger-ui/swagger-ui.css",
    ],
)
def test_vendored_libraries_are_cached_as_immutable(api: Api, path: str) -> None:
    response = api.client.get(f"/static/{path}")
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "max-age=31536000" in response.headers["cache-control"]


@pytest.mark.parametrize("path", ["console.css", "console.js", "theme.js", "swagger-init.js"])
def test_own_files_get_a_short_lifetime(api: Api, path: str) -> None:
    response = api.client.get(f"/static/{path}")
    assert response.status_code == 200
    cache = response.headers["cache-control"]
    assert "immutable" not in cache
    assert "max-age=300" in cache


def test_the_vendored_licences_ship_with_the_libraries(api: Api) -> None:
    for name in ("htmx.org.LICENSE", "uplot.LICENSE", "swagger-ui-dist.LICENSE"):
        assert api.client.get(f"/static/vendor/licenses/{name}").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/static/../app.py", "/static/%2e%2e/assets.py", "/static/..%2fassets.py", "/static/npm/package.json"],
)
def test_static_serves_nothing_outside_its_folder(api: Api, path: str) -> None:
    assert api.client.get(path).status_code == 404


def test_static_urls_carry_a_digest_of_the_content(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("body{}")
    first = StaticUrls(tmp_path)("a.css")
    assert first.startswith("/static/a.css?v=")
    (tmp_path / "a.css").write_text("body{color:red}")
    assert StaticUrls(tmp_path)("a.css") != first  # a new release is a new URL


def test_startup_fails_clearly_without_the_vendored_libraries(tmp_path: Path) -> None:
    from fastapi import FastAPI

    with pytest.raises(RuntimeError, match=r"make install.*vendor-ui\.sh"):
        mount_static(FastAPI(), tmp_path)


# ---- scripts/vendor-ui.sh ------------------------------------------------------------------


def test_the_vendored_files_match_the_lockfile() -> None:
    """``make install`` ran the script for the lockfile in the tree (else rerun it)."""
    stamp = (STATIC / "vendor" / ".stamp").read_text().strip()
    assert stamp == hashlib.sha256(LOCK.read_bytes()).hexdigest()


def _fake_npm(bin_dir: Path, marker: Path) -> None:
    """An ``npm`` whose ``ci`` lays out node_modules as the real one does, offline."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text(
        "#!/usr/bin/env bash\nset -e\n"
        f'echo "$*" >> "{marker}"\n'
        "m=node_modules\n"
        "mkdir -p $m/htmx.org/dist $m/uplot/dist $m/swagger-ui-dist\n"
        "echo htmx > $m/htmx.org/dist/htmx.min.js; echo L > $m/htmx.org/LICENSE\n"
        "echo up > $m/uplot/dist/uPlot.iife.min.js; echo c > $m/uplot/dist/uPlot.min.css; echo L > $m/uplot/LICENSE\n"
        "for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE"
        " swagger-ui-bundle.js.LICENSE.txt index.html swagger-ui.js.map; do echo s > $m/swagger-ui-dist/$f; done\n"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)


def _checkout(tmp_path: Path) -> Path:
    """A copy of the script and the lockfile in a tree of their own."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "vendor-ui.sh")
    (root / "src/watchkeep/ui/npm").mkdir(parents=True)
    shutil.copy(LOCK, root / "src/watchkeep/ui/npm/package-lock.json")
    return root


def _run(root: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(root / "scripts" / "vendor-ui.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_vendor_script_copies_only_what_pages_load_and_then_does_nothing(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    marker = tmp_path / "npm-calls"
    _fake_npm(tmp_path / "bin", marker)
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"

    first = _run(root, path)
    assert first.returncode == 0, first.stderr
    assert marker.read_text().split() == [
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]
    vendor = root / "src/watchkeep/ui/static/vendor"
    copied = sorted(str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file())
    assert copied == [
        ".stamp",
        "htmx.min.js",
        "licenses/htmx.org.LICENSE",
        "licenses/swagger-ui-bundle.third-party.txt",
        "licenses/swagger-ui-dist.LICENSE",
        "licenses/swagger-ui-dist.NOTICE",
        "licenses/uplot.LICENSE",
        "swagger-ui/favicon-32x32.png",
        "swagger-ui/swagger-ui-bundle.js",
        "swagger-ui/swagger-ui.css",
        "uPlot.iife.min.js",
        "uPlot.min.css",
    ]
    before = {p: p.stat().st_mtime_ns for p in vendor.rglob("*")}

    second = _run(root, path)
    assert second.returncode == 0, second.stderr
    assert marker.read_text().count("ci") == 1  # npm not run again
    assert {p: p.stat().st_mtime_ns for p in vendor.rglob("*")} == before

    lock = root / "src/watchkeep/ui/npm/package-lock.json"
    lock.write_text(lock.read_text() + "\n")  # a new lockfile: copied again
    assert _run(root, path).returncode == 0
    assert marker.read_text().count("ci") == 2


def test_vendor_script_says_how_to_get_npm(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "sha256sum", "cut", "cat"):  # what the script needs before npm
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    result = _run(root, str(bin_dir))
    assert result.returncode != 0
    assert "install Node.js and npm: scripts/install-system-deps.sh" in result.stderr
    assert not (root / "src/watchkeep/ui/static/vendor").exists()
