"""A jobs.handlers module that cannot be imported: the daemon must refuse to start (exit 2)."""

import ayb_e2e_no_such_module  # noqa: F401


def register(registry: object) -> None:
    raise AssertionError("never reached")
