"""The schema: numbered SQL files, applied in order, each once (see docs/deployment.md).

This folder is installed as the package `ayb_jobs.migrations` (pyproject.toml maps it), so the
files ship inside the wheel and an editable install reads them from here. Never edit a shipped file:
a change is a new, higher-numbered one.
"""
