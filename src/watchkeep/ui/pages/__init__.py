"""The console's pages: one module per section, each with a ``router`` (and a ``NAV`` entry
when it appears in the sidebar), listed in ``ui.console.PAGES``."""
