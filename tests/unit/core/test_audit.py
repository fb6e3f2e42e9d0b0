"""AuditLogger: one whole JSON line per event, owner-only files, secrets masked, failures counted."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from harness.core.audit import REDACTED, AuditEvent, AuditLogError, AuditLogger, read_audit


class TestAuditLogger:
    def test_creates_the_directory_and_an_owner_only_file(self, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "logs" / "audit.jsonl"
        with AuditLogger(path):
            pass
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_line_schema_matches_the_design(self, tmp_path: Path) -> None:
        with AuditLogger(tmp_path / "audit.jsonl") as audit:
            assert audit.log(AuditEvent.ORDER_PLACED, "cid-1", {"symbol": "BTCUSDT", "quantity": Decimal("0.010")})
            [line] = [json.loads(raw) for raw in audit.path.read_text(encoding="utf-8").splitlines()]
        assert set(line) == {"timestamp", "event_type", "correlation_id", "details"}
        assert line["event_type"] == "ORDER_PLACED" and line["correlation_id"] == "cid-1"
        assert line["details"] == {"symbol": "BTCUSDT", "quantity": "0.010"}  # Decimal kept exact, as text

    def test_appends_and_never_truncates(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.jsonl"
        with AuditLogger(path) as first:
            first.log("LIQUIDATION_START", "a")
        with AuditLogger(path) as second:
            second.log("LIQUIDATION_START", "b")
        assert [r.correlation_id for r in read_audit(path).records] == ["a", "b"]

    def test_concurrent_writers_never_interleave_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.jsonl"
        with AuditLogger(path) as audit:
            def write(worker: int) -> None:
                for n in range(200):
                    audit.log("ORDER_CANCELLED", f"w{worker}", {"n": n, "pad": "x" * 300})

            threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        raw = path.read_text().splitlines()
        assert len(raw) == 800
        assert all(json.loads(line)["event_type"] == "ORDER_CANCELLED" for line in raw)

    def test_secret_looking_keys_are_redacted(self, tmp_path: Path) -> None:
        with AuditLogger(tmp_path / "audit.jsonl") as audit:
            audit.log("LIQUIDATION_START", "c", {"api_secret": "s3cr3t-value", "nested": {"signature": "abcdef"}, "ok": 1})
            [record] = read_audit(audit.path).records
        assert record.details == {"api_secret": REDACTED, "nested": {"signature": REDACTED}, "ok": 1}

    def test_registered_secrets_are_masked_inside_any_text(self, tmp_path: Path) -> None:
        secret = "VerySecretApiKey123456"
        with AuditLogger(tmp_path / "audit.jsonl") as audit:
            audit.register_secret(secret)
            audit.log("ORDER_REJECTED", "c", {"error": f"bad key {secret} refused", "list": [secret]})
        text = (tmp_path / "audit.jsonl").read_text()
        assert secret not in text and REDACTED in text

    def test_unwritable_directory_is_a_clear_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with pytest.raises(AuditLogError, match="not writable") as info:
            AuditLogger(blocker / "audit.jsonl")
        assert str(blocker) in str(info.value)

    def test_write_failure_is_counted_and_logged_not_raised(self, caplog: pytest.LogCaptureFixture) -> None:
        audit = AuditLogger("/dev/full")
        with caplog.at_level(logging.ERROR, logger="harness.audit"):
            assert audit.log("LIQUIDATION_COMPLETE", "c", {"state": "COMPLETED"}) is False
        assert audit.write_errors == 1
        assert any("audit write failed" in r.getMessage() for r in caplog.records)
        audit.close()

    def test_reader_skips_a_torn_last_line_with_a_warning(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        path = tmp_path / "audit.jsonl"
        with AuditLogger(path) as audit:
            audit.log("LIQUIDATION_START", "c")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write('{"timestamp": "2026-11-25T00:00:00+00:00", "event_ty')
        with caplog.at_level(logging.WARNING, logger="harness.audit"):
            log = read_audit(path)
        assert [r.event_type for r in log.records] == ["LIQUIDATION_START"]
        assert log.skipped_lines == 1 and log.warnings[0].startswith("audit.jsonl:2: torn or corrupt line skipped")
        assert any("torn" in r.getMessage() for r in caplog.records)

    def test_every_checklist_event_type_is_declared(self) -> None:
        with AuditLogger(os.devnull) as audit:
            for name in ("LIQUIDATION_START", "ORDER_CANCELLED", "ORDER_PLACED", "ORDER_REJECTED", "LIQUIDATION_COMPLETE"):
                assert name in audit.event_types
