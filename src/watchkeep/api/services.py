"""The objects a running server is made of, built once per app and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from watchkeep.config import Settings
from watchkeep.ingest.service import IngestService
from watchkeep.ingest.writer import GroupCommitWriter
from watchkeep.monitor.service import Monitoring
from watchkeep.security.keys import KeyVerifier
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.score_repository import ScoreRepository
from watchkeep.store.trace_queries import TraceQueries

if TYPE_CHECKING:
    from watchkeep.gateway.service import Gateway


@dataclass(frozen=True, slots=True)
class Services:
    """What routers may call: repositories and services, never raw SQL."""

    settings: Settings
    engine: Engine
    registry: CollectorRegistry
    projects: ProjectRepository
    keys: KeyVerifier
    writer: GroupCommitWriter
    ingest: IngestService
    traces: TraceQueries
    scores: ScoreRepository
    monitoring: Monitoring
    gateway: Gateway | None = None
