"""The bot's garbage-collector settings: start-up objects frozen, the collector paused for a run."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from harness.bot.gctune import collector_paused, freeze_after_start_up


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def test_freeze_moves_what_survived_start_up_out_of_the_collectors_generations() -> None:
    gc.unfreeze()
    survivor = [object() for _ in range(100)]
    frozen = freeze_after_start_up()
    assert frozen == gc.get_freeze_count() >= len(survivor)


def test_the_collector_is_off_inside_the_block_and_back_on_after_it_even_on_error() -> None:
    gc.enable()
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("the liquidation failed")
    assert gc.isenabled()


def test_a_collector_the_program_switched_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
