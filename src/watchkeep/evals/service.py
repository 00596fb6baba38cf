"""One evaluation run from config to verdict: what ``watchkeep eval run`` (and the API) calls.

The order is chosen so that a mistake costs nothing: the config, the evaluators and the
dataset are checked before a run row exists; results are stored batch by batch, so an
interruption loses nothing and a resume (explicit, or the newest unfinished run with the
same config hash and dataset version) computes only what is missing. The exit code tells
a pipeline which kind of failure it was: 1 is the model's fault, 2 is ours or the setup's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from watchkeep.config import Settings
from watchkeep.evals.aggregate import aggregate
from watchkeep.evals.config import ConfigError, RunConfig
from watchkeep.evals.dataset_repository import DatasetNotFound, DatasetRepository, DatasetVersionInfo
from watchkeep.evals.datasets import detect_format, parse_items
from watchkeep.evals.gate import Comparison, GatePolicy, check_thresholds, compare_runs
from watchkeep.evals.model import CheckSpec, DatasetItem, Executor, ItemResult, RunPlan
from watchkeep.evals.plan import PlannedCases, build_cases
from watchkeep.evals.reports import write_reports
from watchkeep.evals.run_repository import RunInfo, RunNotFound, RunRepository
from watchkeep.evals.runner import DriveStats, LocalExecutor, drive
from watchkeep.evals.targets import build_target
from watchkeep.evals.tracing import EvalTracer
from watchkeep.evaluators.registry import EvaluatorRegistry, InvalidParams, UnknownEvaluator
from watchkeep.security.crypto import keyring_from_settings
from watchkeep.security.egress import AddressPolicy

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_INFRA = 2
TRANSPORT_ERRORS = frozenset({"timeout", "rate_limited", "target", "garbage"})
LOOPBACK = ("127.0.0.0/8", "::1/128")
MAX_DATASET_FILE_BYTES = 512 * 1024 * 1024


class InfrastructureError(RuntimeError):
    """The run could not be done as asked (dataset, database, target, cluster): exit 2."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run, its verdict and where its reports went."""

    run: RunInfo
    comparison: Comparison | None
    threshold_failures: list[str]
    exit_code: int
    reports: list[Path] = field(default_factory=list)
    resumed: bool = False


def transport_error_rate(results: Sequence[ItemResult]) -> float:
    """The share of results whose call failed in transport (not bad input, not a bad answer)."""
    if not results:
        return 0.0
    return sum(r.error_kind in TRANSPORT_ERRORS for r in results) / len(results)


class EvalService:
    """Runs configs against one database; the registry defaults to the built-ins plus plugins.

    ``trusted`` says the config comes from the operator (the CLI), so its targets may reach
    loopback (the local gateway, a mock); a tenant's config gets only the configured networks."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        registry: EvaluatorRegistry | None = None,
        trusted: bool = True,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.registry = registry or EvaluatorRegistry()
        self.trusted = trusted
        # Encryption at rest (issue 16) from the same settings as the server: dataset items,
        # results' inputs and outputs, cached replies and the runs' spans (None: plaintext).
        self.sealer = keyring_from_settings(settings)
        self.datasets = DatasetRepository(engine, sealer=self.sealer)
        self.runs = RunRepository(engine, sealer=self.sealer)

    # --- checks before anything is written -------------------------------------------

    def validate(self, config: RunConfig) -> tuple[CheckSpec, ...]:
        """The run's checks, each built once to prove name and parameters; raises ``ConfigError``."""
        checks: list[CheckSpec] = []
        for spec in config.evaluators:
            try:
                evaluator = self.registry.create(spec.name, dict(spec.params))
            except UnknownEvaluator as exc:
                raise ConfigError(exc.message) from exc
            except InvalidParams as exc:
                raise ConfigError(str(exc)) from exc
            if getattr(evaluator, "requires_judge", False) and config.judge is None:
                raise ConfigError(f"evaluator {spec.name!r} needs a judge: add `judge:` to the config")
            checks.append(CheckSpec(spec.name, dict(spec.params)))
        if config.dataset is None and config.adversarial is None:
            raise ConfigError("the config needs a dataset, an adversarial suite, or both")
        return tuple(checks)

    def _import_file(self, config: RunConfig, project_id: int, base: Path, created_by: str | None) -> None:
        ref = config.dataset
        assert ref is not None
        assert ref.file is not None
        path = Path(ref.file) if Path(ref.file).is_absolute() else base / ref.file
        try:
            if path.stat().st_size > MAX_DATASET_FILE_BYTES:
                raise InfrastructureError(
                    f"dataset file {path} is larger than {MAX_DATASET_FILE_BYTES} bytes"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise InfrastructureError(f"cannot read dataset file {path}: {exc.strerror}") from exc
        try:
            items = parse_items(data, detect_format(path.name)).items
        except ValueError as exc:
            raise InfrastructureError(f"dataset file {path}: {exc}") from exc
        self.datasets.create_version(
            project_id,
            ref.name,
            items,
            source={"file": path.name},
            message=f"imported from {path.name}",
            created_by=created_by,
        )

    def load_items(
        self, config: RunConfig, project_id: int, *, base: Path, created_by: str | None = None
    ) -> tuple[DatasetVersionInfo | None, list[DatasetItem]]:
        """Import the config's dataset file when given (a new version only if it changed), then
        resolve the version and read its items; raises ``InfrastructureError``."""
        ref = config.dataset
        if ref is None:
            return None, []
        if ref.file is not None:
            self._import_file(config, project_id, base, created_by)
        try:
            version = self.datasets.resolve(project_id, ref.name, ref.version)
            items = self.datasets.items(project_id, version.id, split=ref.split, limit=ref.limit)
        except DatasetNotFound as exc:
            raise InfrastructureError(f"dataset {ref.name!r} version {ref.version}: {exc}") from exc
        return version, items

    def plan(self, config: RunConfig, checks: tuple[CheckSpec, ...]) -> RunPlan:
        """The plain-data plan every executor's workers receive."""
        allow = tuple(str(n) for n in self.settings.egress_allow_networks)
        if self.trusted:
            allow = (*allow, *LOOPBACK)
        return RunPlan(
            target=config.target.model_dump(mode="json"),
            checks=checks,
            params=dict(config.params),
            seed=config.seed,
            concurrency=config.concurrency,
            timeout_s=config.timeout_s,
            retries=config.retries,
            judge=config.judge.model_dump(mode="json") if config.judge is not None else None,
            egress_allow=allow,
        )

    # --- the run -----------------------------------------------------------------------

    def _open_run(
        self,
        config: RunConfig,
        project_id: int,
        version: DatasetVersionInfo | None,
        target: dict[str, Any],
        target_version: str,
        planned: PlannedCases,
        *,
        baseline_run_id: int | None,
        resume_run_id: int | None,
        created_by: str | None,
    ) -> tuple[RunInfo, bool]:
        version_id = version.id if version is not None else None
        config_hash = config.config_hash()
        if resume_run_id is not None:
            try:
                run = self.runs.get_run(project_id, resume_run_id)
            except RunNotFound as exc:
                raise InfrastructureError(f"no run {resume_run_id} to resume in this project") from exc
            if run.config_hash != config_hash or run.dataset_version_id != version_id:
                raise ConfigError(
                    f"run {resume_run_id} ran another config or dataset version; cannot resume it"
                )
            if run.status == "completed":
                raise ConfigError(f"run {resume_run_id} is already completed")
            return run, True
        found = self.runs.find_resumable(project_id, config_hash)
        if found is not None and found.dataset_version_id == version_id:
            return found, True
        run = self.runs.create_run(
            project_id,
            name=config.name,
            dataset_version_id=version_id,
            target=target,
            target_version=target_version,
            config=config.model_dump(mode="json"),
            config_hash=config_hash,
            seed=config.seed,
            cases_total=len(planned.cases) + len(planned.input_errors),
            baseline_run_id=baseline_run_id,
            created_by=created_by,
        )
        return run, False

    async def _drive(
        self,
        config: RunConfig,
        plan: RunPlan,
        planned: PlannedCases,
        run: RunInfo,
        *,
        executor: Executor,
        target_version: str,
        progress: bool,
    ) -> DriveStats:
        project_id = run.project_id
        if planned.input_errors:
            self.runs.add_results(project_id, run.id, planned.input_errors)
        tracer = await asyncio.to_thread(EvalTracer.start, self.engine, self.settings, self.sealer)
        try:
            return await drive(
                plan,
                planned.cases,  # drive skips what a resumed run already stored
                executor=executor,
                repo=self.runs,
                project_id=project_id,
                run_id=run.id,
                target_version=target_version,
                use_cache=config.cache,
                tracer=tracer,
                progress=progress,
            )
        finally:
            tracer.close()

    def _verdict(
        self,
        config: RunConfig,
        run: RunInfo,
        results: list[ItemResult],
        baseline_run_id: int | None,
    ) -> tuple[dict[str, Any], Comparison | None, list[str]]:
        aggregates = aggregate(results, confidence=1 - config.gate.alpha, seed=config.seed)
        comparison = None
        if baseline_run_id is not None:
            try:
                baseline = self.runs.all_results(run.project_id, baseline_run_id)
            except RunNotFound as exc:
                raise InfrastructureError(f"no baseline run {baseline_run_id} in this project") from exc
            comparison = compare_runs(baseline, results, GatePolicy.from_spec(config.gate), seed=config.seed)
        failures = check_thresholds(aggregates, config.gate.thresholds)
        return aggregates, comparison, failures

    async def run(
        self,
        config: RunConfig,
        project_id: int,
        *,
        baseline_run_id: int | None = None,
        resume_run_id: int | None = None,
        executor: Executor | None = None,
        gate: bool = False,
        output_dir: Path | None = None,
        progress: bool = False,
        created_by: str | None = None,
        base_dir: Path | None = None,
    ) -> RunOutcome:
        """Run ``config`` in ``project_id`` and judge it. Raises ``ConfigError`` and
        ``InfrastructureError`` for what fails before the run exists (exit 2); a run that
        exists is always finished (completed, failed, or interrupted when cancelled)."""
        checks = self.validate(config)
        if baseline_run_id is not None:
            try:
                self.runs.get_run(project_id, baseline_run_id)
            except RunNotFound as exc:
                raise InfrastructureError(f"no baseline run {baseline_run_id} in this project") from exc
        version, items = self.load_items(
            config, project_id, base=base_dir or Path.cwd(), created_by=created_by
        )
        planned = build_cases(config, items)
        plan = self.plan(config, checks)
        try:
            target = build_target(
                plan.target,
                egress=AddressPolicy.from_strings(plan.egress_allow),
                gateway_url=self.gateway_url(),
                timeout_s=config.timeout_s,
                concurrency=1,
            )
        except (ValueError, OSError) as exc:
            raise InfrastructureError(f"target: {exc}") from exc
        try:
            resolve = getattr(target, "resolve_version", None)
            target_version = str(await resolve()) if resolve is not None else target.version
            run, resumed = self._open_run(
                config,
                project_id,
                version,
                target.describe(),
                target_version,
                planned,
                baseline_run_id=baseline_run_id,
                resume_run_id=resume_run_id,
                created_by=created_by,
            )
        finally:
            await target.aclose()
        try:
            stats = await self._drive(
                config,
                plan,
                planned,
                run,
                executor=executor or LocalExecutor(registry=self.registry, gateway_url=self.gateway_url()),
                target_version=run.target_version,
                progress=progress,
            )
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.runs.finish_run(
                project_id, run.id, status="interrupted", aggregates=None, error="interrupted"
            )
            raise
        except (SQLAlchemyError, RuntimeError, OSError) as exc:
            failed = self.runs.finish_run(
                project_id, run.id, status="failed", aggregates=None, error=str(exc)[:2000]
            )
            return RunOutcome(failed, None, [], EXIT_INFRA, resumed=resumed)
        # A fresh run has every result in hand; a resumed one reads what earlier drives stored.
        collected = [*planned.input_errors, *stats.results] if stats.skipped_done == 0 else None
        return self._finish(
            config,
            run,
            baseline_run_id=baseline_run_id,
            gate=gate,
            output_dir=output_dir,
            resumed=resumed,
            collected=collected,
        )

    def _finish(
        self,
        config: RunConfig,
        run: RunInfo,
        *,
        baseline_run_id: int | None,
        gate: bool,
        output_dir: Path | None,
        resumed: bool,
        collected: list[ItemResult] | None = None,
    ) -> RunOutcome:
        results = collected if collected is not None else self.runs.all_results(run.project_id, run.id)
        aggregates, comparison, failures = self._verdict(config, run, results, baseline_run_id)
        error_rate = transport_error_rate(results)
        error = None
        if error_rate > config.gate.max_error_rate:
            error = f"{error_rate:.1%} of cases failed to reach the target (max_error_rate {config.gate.max_error_rate:.1%})"
        regression = (comparison is not None and comparison.verdict == "regression") or bool(failures)
        exit_code = EXIT_INFRA if error else (EXIT_REGRESSION if gate and regression else EXIT_OK)
        verdict = {
            "verdict": "error" if error else ("regression" if regression else "pass"),
            "comparison": comparison.to_json() if comparison is not None else None,
            "threshold_failures": failures,
            "error_rate": error_rate,
            "exit_code": exit_code,
        }
        finished = self.runs.finish_run(
            run.project_id,
            run.id,
            status="failed" if error else "completed",
            aggregates=aggregates,
            gate=verdict,
            error=error,
        )
        reports: list[Path] = []
        if output_dir is not None:
            reports = write_reports(output_dir, finished, results, aggregates, comparison, failures)
        return RunOutcome(finished, comparison, failures, exit_code, reports, resumed)

    def gateway_url(self) -> str:
        """This server's gateway, where a route target without ``url`` goes."""
        return f"http://127.0.0.1:{self.settings.port}"
