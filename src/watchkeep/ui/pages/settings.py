"""The project's Settings section: its Members tab (``settings_members``) and its Keys tab
(``settings_keys``), one sidebar entry."""

from __future__ import annotations

from fastapi import APIRouter

from watchkeep.ui.pages import settings_keys, settings_members

router = APIRouter(include_in_schema=False)
router.include_router(settings_members.router)
router.include_router(settings_keys.router)
NAV = settings_members.NAV
