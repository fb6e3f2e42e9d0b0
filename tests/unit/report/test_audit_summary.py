"""harness.core.audit.read_audit (tolerant JSONL reading), harness.report's runs and summaries, bundles
and the ``audit`` command."""

from __future__ import annotations

import json
import tarfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.core.audit import AuditEvent, AuditFileError, AuditLogger, AuditRecord, read_audit
from harness.report import bundle_logs, group_runs, summarize_audit
from harness.report.cli import audit_command

NOW = datetime(2026, 1, 2, 10, 0, 0, tzinfo=timezone.utc)


def event(event_type: str, cid: str | None, second: int, **details: Any) -> dict[str, Any]:
    return {"timestamp": f"2026-01-02T10:00:{second:02d}.000000+00:00", "event_type": event_type,
            "correlation_id": cid, "details": details}


def complete(cid: str, second: int, state: str, closed: int, failed: int, cancelled: int,
             duration: float, errors: list[str] | None = None) -> dict[str, Any]:
    return event("LIQUIDATION_COMPLETE", cid, second, state=state, reason="SIGTERM",
                 positions_closed=closed, positions_failed=failed, orders_cancelled=cancelled,
                 duration_seconds=duration, errors=errors or [])


def three_runs() -> list[dict[str, Any]]:
    return [
        event("BOT_STARTED", None, 0),
        event("LIQUIDATION_START", "run-a", 1, reason="SIGTERM"),
        event("ORDER_CANCELLED", "run-a", 2, symbol="BTCUSDT"),
        event("ORDER_PLACED", "run-a", 2, symbol="BTCUSDT"),
        complete("run-a", 3, "COMPLETED", 2, 0, 1, 1.5),
        event("LIQUIDATION_START", "run-b", 10, reason="SIGINT"),
        event("ORDER_REJECTED", "run-b", 11, symbol="ETHUSDT"),
        complete("run-b", 12, "PARTIAL", 1, 1, 0, 2.5, ["ETHUSDT: symbol locked"]),
        event("LIQUIDATION_START", "run-c", 20, reason="operator"),
    ]


def write_log(path: Path, entries: list[dict[str, Any] | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [e if isinstance(e, str) else json.dumps(e) for e in entries]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return write_log(tmp_path / "logs" / "audit.jsonl", three_runs())


class TestReadAudit:
    def test_groups_events_into_runs_by_correlation_id(self, audit_file: Path) -> None:
        runs = group_runs(read_audit(audit_file).records)

        assert [(r.correlation_id, r.state, len(r.records)) for r in runs] == [
            ("run-a", "COMPLETED", 4), ("run-b", "PARTIAL", 3), ("run-c", "INCOMPLETE", 1)]
        b = runs[1]
        assert (b.reason, b.positions_closed, b.positions_failed, b.orders_cancelled,
                b.duration_seconds, b.errors) == ("SIGTERM", 1, 1, 0, 2.5,
                                                  ("ETHUSDT: symbol locked",))
        assert runs[2].reason == "operator" and runs[2].duration_seconds is None

    def test_torn_and_corrupted_lines_are_skipped_counted_and_named(self, tmp_path: Path) -> None:
        entries: list[dict[str, Any] | str] = [
            *three_runs()[:5],
            "{not json",
            '["a list"]',
            json.dumps({"timestamp": "yesterday", "event_type": "X", "correlation_id": "c"}),
            json.dumps({"timestamp": "2026-01-02T10:00:00Z", "correlation_id": "c"}),
            '{"timestamp": "2026-01-02T10:00:30Z", "event_type": "LIQUIDATION_CO',  # torn write
        ]
        log = read_audit(write_log(tmp_path / "audit.jsonl", entries))

        assert len(log.records) == 5 and log.skipped_lines == 5
        assert [w.split(":")[1] for w in log.warnings] == ["6", "7", "8", "9", "10"]
        assert "invalid JSON" in log.warnings[0] and "yesterday" in log.warnings[2]

    def test_z_suffix_and_naive_timestamps_are_read_as_utc(self, tmp_path: Path) -> None:
        path = write_log(tmp_path / "a.jsonl", [
            {"timestamp": "2026-01-02T10:00:00Z", "event_type": "A", "correlation_id": "x"},
            {"timestamp": "2026-01-02T10:00:01", "event_type": "B", "correlation_id": "x"}])
        stamps = [e.timestamp for e in read_audit(path).records]
        assert stamps == [NOW, NOW.replace(second=1)]

    def test_missing_file_is_an_error_naming_it(self, tmp_path: Path) -> None:
        with pytest.raises(AuditFileError, match="nope.jsonl"):
            read_audit(tmp_path / "nope.jsonl")

    def test_a_record_gives_back_the_line_the_logger_wrote(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.jsonl"
        with AuditLogger(path) as audit:
            audit.log(AuditEvent.ORDER_PLACED, "cid", {"symbol": "BTCUSDT", "quantity": Decimal("0.010")})
            audit.log(AuditEvent.LIQUIDATION_COMPLETE, None)
        written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        records = read_audit(path).records

        assert [r.to_dict() for r in records] == written
        assert [r.line for r in records] == [1, 2]
        assert isinstance(records[0], AuditRecord) and records[0].event_type == AuditEvent.ORDER_PLACED


class TestSummarize:
    def test_counts_events_and_averages_completed_durations(self, audit_file: Path) -> None:
        summary = summarize_audit(read_audit(audit_file))

        assert summary.total_events == 9
        assert summary.event_counts["LIQUIDATION_START"] == 3
        assert summary.event_counts["LIQUIDATION_COMPLETE"] == 2
        assert summary.runs_by_state == {"COMPLETED": 1, "INCOMPLETE": 1, "PARTIAL": 1}
        assert summary.average_duration_seconds == pytest.approx(2.0)
        assert summary.max_duration_seconds == pytest.approx(2.5)
        assert [r.correlation_id for r in summary.problem_runs] == ["run-b"]

    def test_last_limits_recent_runs_to_the_newest(self, audit_file: Path) -> None:
        summary = summarize_audit(read_audit(audit_file), last=2)
        assert [r.correlation_id for r in summary.recent_runs] == ["run-b", "run-c"]

    def test_no_completed_runs_has_no_average(self, tmp_path: Path) -> None:
        path = write_log(tmp_path / "a.jsonl", [event("LIQUIDATION_START", "x", 1)])
        assert summarize_audit(read_audit(path)).average_duration_seconds is None

    def test_last_must_be_positive(self, audit_file: Path) -> None:
        with pytest.raises(ValueError, match="last=0"):
            summarize_audit(read_audit(audit_file), last=0)


class TestBundleLogs:
    def test_archive_is_named_by_time_and_holds_the_logs(self, audit_file: Path,
                                                         tmp_path: Path) -> None:
        archive = bundle_logs(audit_file.parent, tmp_path / "out", now=NOW)

        assert archive.name == "liquidation_logs_20260102_100000.tar.gz"
        with tarfile.open(archive) as tar:
            member = tar.extractfile("logs/audit.jsonl")
            assert member is not None and member.read() == audit_file.read_bytes()

    def test_archive_written_inside_the_logs_directory_leaves_itself_out(
            self, audit_file: Path) -> None:
        archive = bundle_logs(audit_file.parent, audit_file.parent, now=NOW)
        with tarfile.open(archive) as tar:
            assert sorted(tar.getnames()) == ["logs", "logs/audit.jsonl"]

    def test_missing_logs_directory_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(AuditFileError, match="nothing to bundle"):
            bundle_logs(tmp_path / "absent", tmp_path)


class TestAuditCommand:
    def test_lists_recent_runs_as_a_table(self, audit_file: Path) -> None:
        outcome = CliRunner().invoke(audit_command, ["--file", str(audit_file), "--last", "2"])

        assert outcome.exit_code == 0, outcome.output
        rows = outcome.output.splitlines()[1:]
        assert [row.split()[2] for row in rows] == ["run-b", "run-c"]
        assert "PARTIAL" in rows[0] and "2.500s" in rows[0]

    def test_summary_shows_counts_average_and_errors(self, audit_file: Path) -> None:
        outcome = CliRunner().invoke(audit_command, ["--file", str(audit_file), "--summary"])

        assert outcome.exit_code == 0, outcome.output
        assert "Average execution time: 2.000 seconds" in outcome.output
        assert "      3 LIQUIDATION_START" in outcome.output
        assert "- ETHUSDT: symbol locked" in outcome.output

    def test_json_output_parses_and_reports_skipped_lines(self, tmp_path: Path) -> None:
        path = write_log(tmp_path / "audit.jsonl", [*three_runs(), "garbage"])
        outcome = CliRunner().invoke(audit_command, ["--file", str(path), "--summary", "--json"])

        assert outcome.exit_code == 0
        payload = json.loads(outcome.stdout)
        assert payload["skipped_lines"] == 1 and payload["runs_by_state"]["PARTIAL"] == 1
        assert "skipped 1 corrupted line" in outcome.stderr

    def test_bundle_writes_the_archive_where_asked(self, audit_file: Path, tmp_path: Path) -> None:
        outcome = CliRunner().invoke(audit_command, ["--file", str(audit_file), "--bundle",
                                                     "--bundle-dir", str(tmp_path / "b")])
        assert outcome.exit_code == 0
        assert len(list((tmp_path / "b").glob("liquidation_logs_*.tar.gz"))) == 1

    def test_missing_file_exits_2_naming_it(self, tmp_path: Path) -> None:
        outcome = CliRunner().invoke(audit_command, ["--file", str(tmp_path / "missing.jsonl")])
        assert outcome.exit_code == 2 and "missing.jsonl" in outcome.output

    def test_last_zero_exits_2(self, audit_file: Path) -> None:
        outcome = CliRunner().invoke(audit_command, ["--file", str(audit_file), "--last", "0"])
        assert outcome.exit_code == 2 and "--last" in outcome.output
