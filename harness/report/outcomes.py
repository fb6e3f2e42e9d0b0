"""Map a run's results onto the checklist: one outcome per checklist item, plus what blocks sign-off.

An item's status is the worst status among the results labelled with it
(failed > broken > unknown > skipped > passed); an item with no result at all is ``NOT RUN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from harness.checklist import BY_ID, ITEMS, ChecklistItem
from harness.report.results import ResultStatus, RunResults, TestResult

MESSAGE_LIMIT = 300  # characters of a failure message kept in a one-line reason


class ItemStatus(str, Enum):
    """A checklist item's outcome. ``MISSING``: no result was labelled with the item."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    BROKEN = "BROKEN"
    UNKNOWN = "UNKNOWN"
    SKIPPED = "SKIPPED"
    MISSING = "NOT RUN"

    @property
    def icon(self) -> str:
        return _ICONS[self]

    @property
    def is_failure(self) -> bool:
        """True for outcomes that report a problem (not merely an unverified box)."""
        return self in (ItemStatus.FAILED, ItemStatus.BROKEN)


_ICONS = {
    ItemStatus.PASSED: "✅",
    ItemStatus.FAILED: "❌",
    ItemStatus.BROKEN: "❌",
    ItemStatus.UNKNOWN: "❔",
    ItemStatus.SKIPPED: "⏭️",
    ItemStatus.MISSING: "⏭️",
}
_WORST_FIRST = (ResultStatus.FAILED, ResultStatus.BROKEN, ResultStatus.UNKNOWN, ResultStatus.SKIPPED, ResultStatus.PASSED)


@dataclass(frozen=True)
class ItemOutcome:
    """What the run says about one checklist item."""

    item: ChecklistItem
    status: ItemStatus
    reason: str  # empty when passed
    results: tuple[TestResult, ...] = ()

    @property
    def id(self) -> str:
        return self.item.id


@dataclass(frozen=True)
class Blocker:
    """Something that stops sign-off: a required item that did not pass, or an unlabelled failure."""

    subject: str  # checklist item id, or the test's full name
    status: ItemStatus
    reason: str


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def item_outcomes(run: RunResults) -> list[ItemOutcome]:
    """One outcome per checklist item, in checklist order."""
    grouped = run.by_checklist_item()
    return [_outcome(item, grouped.get(item.id, [])) for item in ITEMS]


def unknown_item_ids(run: RunResults) -> list[str]:
    """``checklist_item`` label values that name no checklist item (typos, stale ids)."""
    return sorted(set(run.by_checklist_item()) - set(BY_ID))


def blockers(run: RunResults, outcomes: Iterable[ItemOutcome]) -> list[Blocker]:
    """Required items that did not pass, then failed/broken results that no known item covers."""
    found = [
        Blocker(o.id, o.status, o.reason)
        for o in outcomes
        if o.item.required and o.status is not ItemStatus.PASSED
    ]
    for result in run.failures():
        if not any(item_id in BY_ID for item_id in result.checklist_items):
            status = ItemStatus(result.status.value.upper())
            found.append(Blocker(result.full_name, status, _result_reason(result)))
    return found


def _outcome(item: ChecklistItem, results: list[TestResult]) -> ItemOutcome:
    if not results:
        return ItemOutcome(item, ItemStatus.MISSING, "no result in this run")
    worst = min(results, key=lambda r: _WORST_FIRST.index(r.status)).status
    status = ItemStatus(worst.value.upper())
    if status is ItemStatus.PASSED:
        return ItemOutcome(item, status, "", tuple(results))
    culprits = [r for r in results if r.status is worst]
    reason = _result_reason(culprits[0])
    if len(culprits) > 1:
        reason += f" (+{len(culprits) - 1} more {worst.value})"
    return ItemOutcome(item, status, reason, tuple(results))


def _result_reason(result: TestResult) -> str:
    message = one_line(result.message) if result.message else f"no message ({result.status.value})"
    return f"{result.name}: {message}"
