"""Settings from arguments and WATCHKEEP_* variables; a missing key means a silent no-op."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import watchkeep as wk
from watchkeep.sdk.client import install
from watchkeep.sdk.config import load_config


def test_arguments_win_over_environment_and_bad_values_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "WATCHKEEP_ENDPOINT": "http://env:1/",
        "WATCHKEEP_API_KEY": "env-key",
        "WATCHKEEP_SAMPLE_RATE": "2.5",
        "WATCHKEEP_CAPTURE_CONTENT": "off",
        "WATCHKEEP_HOME": "/tmp/wk",
        "WATCHKEEP_QUEUE_SIZE": "-3",
    }
    config = load_config({"environment": "prod", "release": None}, env)
    assert config.endpoint == "http://env:1"
    assert config.api_key == "env-key"
    assert config.active
    assert config.environment == "prod"
    assert config.release is None
    assert config.sample_rate == 1.0
    assert config.queue_size == 8192
    assert config.capture_content is False
    assert config.spool_root == Path("/tmp/wk/spool")
    assert config.spool_dir.parent == config.spool_root  # one folder per destination
    assert "WATCHKEEP_SAMPLE_RATE" in caplog.text
    assert "WATCHKEEP_QUEUE_SIZE" in caplog.text
    assert load_config({"endpoint": "http://arg:2"}, env).endpoint == "http://arg:2"


def test_without_a_key_init_warns_and_everything_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("WATCHKEEP_API_KEY", raising=False)
    client = wk.init(endpoint="http://127.0.0.1:9")
    try:
        assert not client.active
        assert "no API key" in caplog.text

        @wk.observe
        def work(x: int) -> int:
            wk.update_current(model="m")
            return x + 1

        with wk.span("s"):
            assert work(1) == 2
        assert wk.score("accuracy", 1.0, trace_id="0" * 32) is False
        assert wk.flush(0.1)
        assert wk.shutdown(0.1)
        assert wk.stats().exported == 0
    finally:
        install({"enabled": False})


def test_init_never_raises_on_nonsense(caplog: pytest.LogCaptureFixture) -> None:
    client = wk.init(
        api_key="k",
        home=12345,
        queue_size="many",  # type: ignore[arg-type]
        unknown_option=True,
    )
    install({"enabled": False})
    assert client.active
    assert client.config.queue_size == 8192
    assert "unknown_option" in caplog.text
    assert "queue_size" in caplog.text


def test_import_watchkeep_stays_cheap() -> None:
    code = (
        "import sys, watchkeep; "
        "heavy = [m for m in sys.modules if m.startswith(('opentelemetry', 'httpx', "
        "'watchkeep.sdk', 'watchkeep.store', 'watchkeep.api', 'fastapi', 'sqlalchemy'))]; "
        "assert not heavy, heavy; "
        "watchkeep.observe; assert 'watchkeep.sdk' in sys.modules; "
        "assert not any(m.startswith(('watchkeep.store', 'watchkeep.api')) "
        "for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_endpoint_and_key_has_a_spool_of_its_own() -> None:
    def spool(endpoint: str, key: str) -> Path:
        return load_config({"endpoint": endpoint, "api_key": key, "home": "/tmp/wk"}, {}).spool_dir

    mine = spool("http://a:1", "wk_key-a")
    assert spool("http://a:1/", "wk_key-a") == mine  # the same destination
    assert spool("http://a:1", "wk_key-b") != mine
    assert spool("http://b:1", "wk_key-a") != mine
    assert "wk_key-a" not in str(mine)
