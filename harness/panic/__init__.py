"""The panic button: ``liquidation-harness liquidate`` flattens one account or a fleet from the command line.

Modules: ``accounts`` (the account of the command line, the fleet file and its strict validation),
``run`` (accounts flattened concurrently, each within its deadline, sharing the per-IP weight
budget), ``progress`` (live lines, plain lines, JSON lines, the tables), ``command`` (the click
command: safety checks, confirmation, exit codes).
"""

from __future__ import annotations

from harness.panic.command import liquidate_command

__all__ = ["liquidate_command"]
