"""report.json, junit.xml and report.html: parseable, complete, self-contained, escaped."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.support.eval_results import result, run_of
from watchkeep.evals.aggregate import aggregate
from watchkeep.evals.gate import GatePolicy, check_thresholds, compare_runs
from watchkeep.evals.model import ItemResult, Score
from watchkeep.evals.reports import write_reports
from watchkeep.evals.run_repository import RunInfo

HOSTILE = '<script>alert("x")</script><img src="https://evil.example/p.png">'


def _run(name: str = "nightly <qa>") -> RunInfo:
    return RunInfo(
        id=7,
        project_id=1,
        name=name,
        status="completed",
        dataset_version_id=3,
        dataset_name="faq",
        dataset_version=2,
        target={"kind": "route", "name": "chat"},
        target_version="route:chat@abc",
        config={"name": name},
        config_hash="h",
        seed=0,
        baseline_run_id=6,
        cases_total=4,
        cases_done=4,
        cases_failed=1,
        aggregates=None,
        gate=None,
        error=None,
        created_by="alice",
        started_at_ns=1,
        finished_at_ns=2,
    )


def _results() -> list[ItemResult]:
    return [
        result("ok", True, latency_ms=1500.0),
        result("bad", False, output=HOSTILE, comment="expected 'Paris'"),
        result("ctrl", False, output="bell\x07 and nul\x00", comment="wrong\x1b"),
        result("slow", None, error_kind="timeout"),
        result("inj", False, family="injection", extra={"leak": Score(False, 0.0, "leaked canary")}),
    ]


def _write(tmp_path: Path) -> list[Path]:
    results = _results()
    agg = aggregate(results)
    baseline = [*run_of([True, True], prefix=""), result("ok", True), result("bad", True)]
    comparison = compare_runs(baseline, results, GatePolicy())
    failures = check_thresholds(agg, {"pass_rate": 0.9})
    return write_reports(tmp_path / "out", _run(), results, agg, comparison, failures)


def test_writes_three_files(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    assert [p.name for p in paths] == ["report.json", "junit.xml", "report.html"]
    assert all(p.is_file() for p in paths)


def test_json_report_holds_everything(tmp_path: Path) -> None:
    data = json.loads((tmp_path / "out" / "report.json").read_text() if _write(tmp_path) else "")
    assert data["run"]["id"] == 7
    assert data["aggregates"]["n_cases"] == 5
    assert data["comparison"]["verdict"] in {"pass", "regression", "inconclusive"}
    assert data["comparison"]["n_paired"] == 2
    assert data["thresholds"]["failures"] == ["pass_rate: 0.3333 is below the minimum 0.9"]
    by_key = {r["item_key"]: r for r in data["results"]}
    assert by_key["bad"]["output"] == HOSTILE
    assert by_key["bad"]["scores"]["exact"]["comment"] == "expected 'Paris'"
    assert by_key["slow"]["error_kind"] == "timeout"
    assert by_key["slow"]["passed"] is None


def test_junit_parses_and_counts(tmp_path: Path) -> None:
    _write(tmp_path)
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "nightly <qa>"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "3", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {f"{k} [repeat 0]" for k in ("ok", "bad", "ctrl", "slow", "inj")}
    assert cases["ok [repeat 0]"].find("failure") is None
    assert cases["ok [repeat 0]"].get("time") == "1.500"
    failure = cases["bad [repeat 0]"].find("failure")
    assert failure is not None
    assert failure.text == "exact: expected 'Paris'"
    assert "leaked canary" in (cases["inj [repeat 0]"].find("failure").text or "")  # type: ignore[union-attr]
    assert cases["inj [repeat 0]"].get("classname") == "nightly <qa>.injection"
    error = cases["slow [repeat 0]"].find("error")
    assert error is not None
    assert error.get("type") == "timeout"
    out = cases["ctrl [repeat 0]"].find("system-out")
    assert out is not None
    assert out.text == "bell\ufffd and nul\ufffd"


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    _write(tmp_path)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html
    assert "nightly &lt;qa&gt;" in html
    assert "expected &#39;Paris&#39;" in html
    assert "33.3%" in html  # the pass rate
    assert "Against the baseline" in html
    assert "pass_rate: 0.3333 is below the minimum 0.9" in html
    assert "injection" in html  # the adversarial table


def test_html_truncates_long_outputs(tmp_path: Path) -> None:
    long = "x" * 5000
    results = [result("a", False, output=long)]
    write_reports(tmp_path, _run("r"), results, aggregate(results), None, [])
    html = (tmp_path / "report.html").read_text()
    assert "x" * 500 + "…" in html
    assert "x" * 501 not in html
    assert json.loads((tmp_path / "report.json").read_text())["results"][0]["output"] == long
