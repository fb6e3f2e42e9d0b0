"""``python -m harness.exchanges.sim``: the ``simulate`` command without the main CLI."""

from .cli import simulate_command

if __name__ == "__main__":
    simulate_command(prog_name="python -m harness.exchanges.sim")
