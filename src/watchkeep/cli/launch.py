"""The ``watchkeep`` command's entry point, which says what to install when the server is missing.

``pip install watchkeep`` is the SDK alone; the command drives the platform, whose
dependencies come with ``pip install 'watchkeep[server]'``. The command line is imported
inside ``main`` so that a missing server dependency becomes one actionable line on stderr
and exit status 1 instead of a traceback. A broken import of watchkeep's own modules still
raises: that is a bug, not a missing extra.
"""

from __future__ import annotations

import sys

SERVER_MISSING = "the watchkeep command needs the server: pip install 'watchkeep[server]'"


def main() -> None:
    """Run the command line, or explain how to install it."""
    try:
        from watchkeep.cli.main import app
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] == "watchkeep":
            raise
        print(f"{SERVER_MISSING} (missing module: {exc.name})", file=sys.stderr)
        raise SystemExit(1) from None
    app()
