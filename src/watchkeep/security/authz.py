"""Permissions and roles: every route and console page names the permission it needs
(deny by default), and ``permissions_of`` is the one place a role becomes permissions, for
API keys (``Role``) and for people in the console (``UserRole``) alike."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """One capability a route can demand of the caller's key."""

    TRACES_WRITE = "traces:write"
    TRACES_READ = "traces:read"
    SCORES_WRITE = "scores:write"
    SCORES_READ = "scores:read"
    METRICS_READ = "metrics:read"
    MODELS_INVOKE = "models:invoke"
    ROUTES_READ = "routes:read"
    ROUTES_WRITE = "routes:write"
    PROJECT_ADMIN = "project:admin"
    MONITORS_READ = "monitors:read"
    MONITORS_WRITE = "monitors:write"
    ALERTS_READ = "alerts:read"
    ALERTS_WRITE = "alerts:write"  # alert channels: they hold URLs and secrets, so admins only
    COMMENTS_WRITE = "comments:write"
    ANNOTATIONS_WRITE = "annotations:write"  # annotation queues: create, fill, label
    MEMBERS_WRITE = "members:write"  # invite people, change their roles (admins and owners)
    ORGANISATION_OWN = "organisation:own"  # grant or take the owner role (owners only)
    EVALS_READ = "evals:read"  # datasets, their versions and items; runs and their results
    EVALS_WRITE = "evals:write"  # create dataset versions, record and delete runs
    REGISTRY_READ = "registry:read"  # model and prompt versions, aliases and their history
    PROMPTS_READ = "prompts:read"  # fetch a prompt version by label (what the SDK's get_prompt needs)
    REGISTRY_WRITE = "registry:write"  # register versions, move aliases, roll back, start canaries
    REGISTRY_ADMIN = "registry:admin"  # force a promotion past its gates, set promotion policies
    AUDIT_READ = "audit:read"  # the audit log (admins and owners)
    PRIVACY_ADMIN = "privacy:admin"  # PII actions, retention periods, erasure and data export of a subject


class Role(StrEnum):
    """A named bundle of permissions given to an API key."""

    ADMIN = "admin"
    MEMBER = "member"
    INGEST = "ingest"
    VIEWER = "viewer"


class UserRole(StrEnum):
    """A person's role in an organisation or project (the console's, not a key's)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission) - {Permission.ORGANISATION_OWN},
    Role.MEMBER: frozenset(
        {
            Permission.TRACES_WRITE,
            Permission.TRACES_READ,
            Permission.SCORES_WRITE,
            Permission.SCORES_READ,
            Permission.METRICS_READ,
            Permission.MODELS_INVOKE,
            Permission.ROUTES_READ,
            Permission.MONITORS_READ,
            Permission.MONITORS_WRITE,
            Permission.ALERTS_READ,
            Permission.COMMENTS_WRITE,
            Permission.ANNOTATIONS_WRITE,
            Permission.EVALS_READ,
            Permission.EVALS_WRITE,
            Permission.REGISTRY_READ,
            Permission.REGISTRY_WRITE,
            Permission.PROMPTS_READ,
        }
    ),
    # For applications: they send traces and feedback but cannot read anyone's data.
    Role.INGEST: frozenset(
        {Permission.TRACES_WRITE, Permission.SCORES_WRITE, Permission.MODELS_INVOKE, Permission.PROMPTS_READ}
    ),
    Role.VIEWER: frozenset(
        {
            Permission.TRACES_READ,
            Permission.SCORES_READ,
            Permission.METRICS_READ,
            Permission.ROUTES_READ,
            Permission.MONITORS_READ,
            Permission.ALERTS_READ,
            Permission.EVALS_READ,
            Permission.REGISTRY_READ,
            Permission.PROMPTS_READ,
        }
    ),
}


# A person's role maps onto the key roles: what an admin key may do, an admin may do.
USER_ROLE_PERMISSIONS: dict[UserRole, frozenset[Permission]] = {
    UserRole.OWNER: frozenset(Permission),
    UserRole.ADMIN: ROLE_PERMISSIONS[Role.ADMIN],
    UserRole.MEMBER: ROLE_PERMISSIONS[Role.MEMBER],
    UserRole.VIEWER: ROLE_PERMISSIONS[Role.VIEWER],
}


def permissions_of(role: str) -> frozenset[Permission]:
    """The permissions of a key or user ``role``; an unknown role has none."""
    if role in USER_ROLE_PERMISSIONS:
        return USER_ROLE_PERMISSIONS[UserRole(role)]
    try:
        return ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()


def may_grant(granter_role: str, role: str) -> bool:
    """Whether a key of ``granter_role`` may create a key of ``role``: never a role that holds a
    permission the granter lacks, so no key can mint its way up. An admin holds every
    permission of its project, so it may create any role, another admin included."""
    wanted = permissions_of(role)
    return bool(wanted) and wanted <= permissions_of(granter_role)
