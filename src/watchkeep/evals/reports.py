"""A run's reports for people and CI: report.json, junit.xml, report.html.

- report.json: the run, its aggregates, the comparison with its baseline, the thresholds
  missed and every per-item result: everything needed to re-check the verdict offline.
- junit.xml: one testsuite per run, one testcase per case; a case that did not pass is a
  ``<failure>`` carrying its evaluators' comments, a case whose call failed an ``<error>``,
  which is what CI systems (GitHub, GitLab, Jenkins) count and show.
- report.html: self-contained (inline CSS, no script, no external URL) and rendered with
  Jinja2 autoescape, so a model's output can never inject markup; outputs are truncated.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from watchkeep.evals.gate import Comparison
from watchkeep.evals.model import ItemResult
from watchkeep.evals.run_repository import RunInfo

TEMPLATES = Path(__file__).parent / "templates"
HTML_OUTPUT_CHARS = 500  # per output cell in the HTML table
HTML_MAX_ROWS = 5000  # rows of the HTML per-item table; report.json keeps them all


def result_to_json(r: ItemResult) -> dict[str, Any]:
    """One result as plain JSON (scores by evaluator name)."""
    return {
        "item_key": r.item_key,
        "repeat": r.repeat,
        "variant": r.variant,
        "family": r.family,
        "messages": [dict(m) for m in r.messages] if r.messages is not None else None,
        "output": r.output,
        "passed": r.passed,
        "scores": {
            name: {
                "passed": s.passed,
                "value": s.value,
                "comment": s.comment,
                "details": dict(s.details) if s.details is not None else None,
                "error": s.error,
            }
            for name, s in r.scores.items()
        },
        "error": r.error,
        "error_kind": r.error_kind,
        "latency_ms": r.latency_ms,
        "cost_usd": r.cost_usd,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cached": r.cached,
        "trace_id": r.trace_id,
    }


def _clean(value: Any) -> Any:
    """NaN and infinities become null: strict JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def report_json(
    run: RunInfo,
    results: Sequence[ItemResult],
    aggregates: Mapping[str, Any],
    comparison: Comparison | None,
    threshold_failures: Sequence[str],
) -> dict[str, Any]:
    """The content of report.json."""
    content: dict[str, Any] = _clean(
        {
            "run": asdict(run),
            "aggregates": dict(aggregates),
            "comparison": comparison.to_json() if comparison is not None else None,
            "thresholds": {"failures": list(threshold_failures)},
            "results": [result_to_json(r) for r in sorted(results, key=lambda r: r.key)],
        }
    )
    return content


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (a model may emit them)."""
    return _XML_INVALID.sub("\ufffd", text)


def _case_name(r: ItemResult) -> str:
    name = f"{r.item_key} [repeat {r.repeat}]"
    return _xml(f"{name} [{r.variant}]" if r.variant else name)


def _failure_text(r: ItemResult) -> str:
    lines = [
        f"{name}: {s.comment or ('failed' if s.passed is False else s.error or '')}"
        for name, s in sorted(r.scores.items())
        if s.passed is False
    ]
    return "\n".join(lines) or "failed"


def junit_xml(run: RunInfo, results: Sequence[ItemResult]) -> ET.Element:
    """One testsuite (the run), one testcase per case."""
    ordered = sorted(results, key=lambda r: r.key)
    failures = sum(r.error is None and r.passed is False for r in ordered)
    errors = sum(r.error is not None for r in ordered)
    seconds = sum((r.latency_ms or 0.0) for r in ordered) / 1000
    suites = ET.Element("testsuites", name=_xml(run.name))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=_xml(run.name),
        tests=str(len(ordered)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (("run_id", run.id), ("target_version", run.target_version), ("seed", run.seed)):
        ET.SubElement(props, "property", name=key, value=_xml(str(value)))
    for r in ordered:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_xml(f"{run.name}.{r.family or 'items'}"),
            name=_case_name(r),
            time=f"{(r.latency_ms or 0.0) / 1000:.3f}",
        )
        if r.error is not None:
            err = ET.SubElement(case, "error", type=r.error_kind or "error", message=_xml(r.error[:500]))
            err.text = _xml(r.error)
        elif r.passed is False:
            text = _xml(_failure_text(r))
            fail = ET.SubElement(case, "failure", type="assertion", message=text.splitlines()[0][:500])
            fail.text = text
        if r.output is not None:
            ET.SubElement(case, "system-out").text = _xml(r.output)
    return suites


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    env.filters["num"] = lambda v, d=4: "—" if v is None else f"{v:.{d}f}"
    env.filters["clip"] = lambda s: (
        "" if s is None else (s if len(s) <= HTML_OUTPUT_CHARS else s[:HTML_OUTPUT_CHARS] + "…")
    )
    return env


def report_html(
    run: RunInfo,
    results: Sequence[ItemResult],
    aggregates: Mapping[str, Any],
    comparison: Comparison | None,
    threshold_failures: Sequence[str],
) -> str:
    """The self-contained HTML report."""
    ordered = sorted(results, key=lambda r: r.key)
    template = _environment().get_template("report.html.j2")
    return template.render(
        run=run,
        agg=_clean(dict(aggregates)),
        comparison=_clean(comparison.to_json()) if comparison is not None else None,
        thresholds=list(threshold_failures),
        results=ordered[:HTML_MAX_ROWS],
        truncated=max(0, len(ordered) - HTML_MAX_ROWS),
    )


def write_reports(
    out_dir: Path,
    run: RunInfo,
    results: Sequence[ItemResult],
    aggregates: Mapping[str, Any],
    comparison: Comparison | None,
    threshold_failures: Sequence[str],
) -> list[Path]:
    """Write report.json, junit.xml and report.html into ``out_dir`` (created); their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "junit.xml", out_dir / "report.html"]
    data = report_json(run, results, aggregates, comparison, threshold_failures)
    paths[0].write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tree = ET.ElementTree(junit_xml(run, results))
    ET.indent(tree)
    tree.write(paths[1], encoding="utf-8", xml_declaration=True)
    html = report_html(run, results, aggregates, comparison, threshold_failures)
    paths[2].write_text(html, encoding="utf-8")
    return paths
