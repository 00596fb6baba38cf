"""The whole relational schema: every table module registered on the one ``metadata``.

Migrations and the schema check import ``metadata`` from here, so a table module that is
not imported here is a table the migration check cannot see.
"""

from __future__ import annotations

from watchkeep.store import eval_tables, index_tables, privacy_tables, registry_tables
from watchkeep.store.tables import metadata

__all__ = ["eval_tables", "index_tables", "metadata", "privacy_tables", "registry_tables"]
