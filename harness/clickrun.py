"""Run a click command as a console entry point and return its exit code (never raise SystemExit)."""

from __future__ import annotations

import click


def run_click(command: click.Command, argv: list[str] | None, prog_name: str) -> int:
    """Exit code of ``command`` run on ``argv``: click's usage errors give 2, a bare ``sys.exit()`` 0."""
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
