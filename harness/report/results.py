"""Read an ``allure-results`` directory written by allure-pytest.

Only ``*-result.json`` files carry test outcomes. The other files Allure writes beside them
(``*-container.json`` fixtures, ``*-attachment.*``, ``environment.properties``, ``executor.json``,
``categories.json``, a ``history/`` folder) are expected and skipped quietly;
``environment.properties`` is also read into :attr:`RunResults.environment`. Anything else is
ignored with a warning, and so is a result file that cannot be parsed: the warnings are kept on
:attr:`RunResults.warnings` so a report can show them.

When a test ran more than once (reruns, several runs into one directory) only its latest result
counts: results are keyed by ``historyId`` and the one with the greatest ``stop`` time wins.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from harness.checklist import CHECKLIST_LABEL
from harness.core.errors import HarnessError
from harness.report.evidence import EVIDENCE_LABEL, EVIDENCE_TARGET_LABEL, RUN_FILE, Evidence, RunInfo

log = logging.getLogger(__name__)

RESULT_SUFFIX = "-result.json"
KNOWN_SUFFIXES = ("-container.json",)
KNOWN_NAMES = frozenset({"environment.properties", "executor.json", "categories.json", RUN_FILE})
ATTACHMENT_MARK = "-attachment"


class ResultsError(HarnessError):
    """The allure-results directory is missing, not a directory, or holds no test results."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"allure results directory {str(path)!r}: {problem}")


class ResultStatus(str, Enum):
    """An Allure test status. ``broken`` (an error outside an assertion) is kept apart from ``failed``."""

    PASSED = "passed"
    FAILED = "failed"
    BROKEN = "broken"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> ResultStatus:
        """The status for Allure's string; anything unrecognised is ``UNKNOWN``."""
        try:
            return cls(str(value).lower())
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class TestResult:
    """One test's outcome as Allure recorded it. ``start``/``stop`` are Unix milliseconds."""

    __test__ = False  # not a pytest test class

    name: str
    full_name: str
    status: ResultStatus
    history_id: str
    message: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    start: int = 0
    stop: int = 0
    source: str = ""  # the file it came from

    def label(self, name: str) -> str | None:
        """The first value of the label ``name``, or None."""
        return next((value for key, value in self.labels if key == name), None)

    def label_values(self, name: str) -> tuple[str, ...]:
        """Every value of the label ``name`` (a label may repeat)."""
        return tuple(value for key, value in self.labels if key == name)

    @property
    def checklist_items(self) -> tuple[str, ...]:
        return self.label_values(CHECKLIST_LABEL)

    @property
    def epic(self) -> str | None:
        return self.label("epic")

    @property
    def feature(self) -> str | None:
        return self.label("feature")

    @property
    def story(self) -> str | None:
        return self.label("story")

    @property
    def severity(self) -> str | None:
        return self.label("severity")

    @property
    def suite(self) -> str | None:
        return self.label("suite")

    @property
    def parent_suite(self) -> str | None:
        return self.label("parentSuite")

    @property
    def evidence(self) -> Evidence:
        """Where this result was obtained (the plugin's ``evidence`` label; ``unknown`` without it)."""
        return Evidence.parse(self.label(EVIDENCE_LABEL))

    @property
    def evidence_target(self) -> str:
        return self.label(EVIDENCE_TARGET_LABEL) or ""

    @property
    def duration_seconds(self) -> float:
        return max(0, self.stop - self.start) / 1000.0


@dataclass(frozen=True)
class RunResults:
    """The latest result of every test found in one allure-results directory."""

    directory: Path
    results: tuple[TestResult, ...]
    environment: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    info: RunInfo | None = None  # harness-run.json, when the harness plugin wrote the results

    @property
    def total(self) -> int:
        return len(self.results)

    def count(self, status: ResultStatus) -> int:
        return sum(1 for result in self.results if result.status is status)

    def counts(self) -> dict[ResultStatus, int]:
        """Results per status, every status present (zero when none)."""
        tally = Counter(result.status for result in self.results)
        return {status: tally.get(status, 0) for status in ResultStatus}

    def by_checklist_item(self) -> dict[str, list[TestResult]]:
        """Results grouped by their ``checklist_item`` label values (unlabelled results left out)."""
        grouped: dict[str, list[TestResult]] = {}
        for result in self.results:
            for item_id in result.checklist_items:
                grouped.setdefault(item_id, []).append(result)
        return grouped

    def failures(self) -> list[TestResult]:
        """Failed and broken results, in run order."""
        return [r for r in self.results if r.status in (ResultStatus.FAILED, ResultStatus.BROKEN)]


def load_results(directory: str | Path) -> RunResults:
    """Parse ``directory``; ResultsError when it is missing, not a directory or has no results."""
    path = Path(directory)
    if not path.exists():
        raise ResultsError(path, "does not exist; run pytest with --alluredir first")
    if not path.is_dir():
        raise ResultsError(path, "is not a directory")
    warnings: list[str] = []
    latest: dict[str, TestResult] = {}
    environment: dict[str, str] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.endswith(RESULT_SUFFIX) and entry.is_file():
            result = _read_result(entry, warnings)
            if result is None:
                continue
            current = latest.get(result.history_id)
            if current is None or (result.stop, result.start) >= (current.stop, current.start):
                latest[result.history_id] = result
        elif entry.name == "environment.properties" and entry.is_file():
            environment = _read_properties(entry)
        elif not _is_expected(entry):
            _warn(warnings, f"ignored {entry.name!r}: not an Allure result file")
    if not latest:
        raise ResultsError(path, f"holds no *{RESULT_SUFFIX} files (empty or not allure output)")
    results = tuple(sorted(latest.values(), key=lambda r: (r.start, r.full_name, r.name)))
    return RunResults(path, results, environment, tuple(warnings), RunInfo.read(path))


def _is_expected(entry: Path) -> bool:
    name = entry.name
    if entry.is_dir():
        return name == "history"
    return name in KNOWN_NAMES or name.endswith(KNOWN_SUFFIXES) or ATTACHMENT_MARK in name


def _read_result(path: Path, warnings: list[str]) -> TestResult | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _warn(warnings, f"ignored {path.name!r}: unreadable result ({exc})")
        return None
    if not isinstance(data, dict) or "status" not in data or "name" not in data:
        _warn(warnings, f"ignored {path.name!r}: not an Allure result (no name/status)")
        return None
    details = data.get("statusDetails") or {}
    labels = _pairs(data.get("labels"))
    parameters = _pairs(data.get("parameters"))
    full_name = str(data.get("fullName") or data["name"])
    history_id = str(data.get("historyId") or data.get("uuid") or f"{full_name}{parameters}")
    return TestResult(
        name=str(data["name"]),
        full_name=full_name,
        status=ResultStatus.parse(data["status"]),
        history_id=history_id,
        message=str(details.get("message") or "") if isinstance(details, dict) else "",
        labels=labels,
        parameters=parameters,
        start=_millis(data.get("start")),
        stop=_millis(data.get("stop", data.get("start"))),
        source=path.name,
    )


def _pairs(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        (str(entry["name"]), str(entry.get("value", "")))
        for entry in raw
        if isinstance(entry, dict) and "name" in entry
    )


def _millis(raw: Any) -> int:
    return int(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else 0


def _read_properties(path: Path) -> dict[str, str]:
    """Java-style ``key=value`` lines (``#``/``!`` comments); good enough for what Allure writes."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            key, sep, value = stripped.partition(":")
        values[key.strip()] = value.strip()
    return values


def _warn(warnings: list[str], message: str) -> None:
    log.warning(message)
    warnings.append(message)
