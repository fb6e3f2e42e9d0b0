"""harness.attest: in-toto Statement (Test Result predicate) beside each report, optionally DSSE-signed."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.attest import PREDICATE_TYPE, STATEMENT_TYPE, AttestationError, attestation_path, build_statement, \
    verify_attestation, write_statement
from harness.checklist import ITEMS
from harness.report import BotIdentity, Evidence, RunInfo, build_report, write_report
from harness.report.cli import report_command

NOW = datetime(2026, 1, 2, 10, 0, tzinfo=timezone.utc)
BOT = BotIdentity("python -m harness.bot", "1.0", "sha256:" + "ab" * 32)


def write_key(path: Path) -> Path:
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    path.write_bytes(pem)
    return path


def results_dir(tmp_path: Path, failing: str | None = None) -> Path:
    """An allure-results directory: one result per checklist item, on the embedded exchange."""
    directory = tmp_path / "allure-results"
    directory.mkdir()
    for n, item in enumerate(ITEMS):
        status = "failed" if item.id == failing else "passed"
        (directory / f"{n}-result.json").write_text(json.dumps({
            "name": f"test_{n}", "status": status, "uuid": str(n), "historyId": str(n), "start": n, "stop": n + 1,
            "labels": [{"name": "checklist_item", "value": item.id}, {"name": "evidence", "value": "embedded"}]}))
    RunInfo(Evidence.EMBEDDED, "embedded exchange (127.0.0.1)", "testnet", "0.1.0", bot=BOT).write(directory)
    return directory


def report_with_attestation(tmp_path: Path, sign_key: Path | None = None, failing: str | None = None) -> tuple[Path, Path, Path]:
    from harness.report import load_results

    results = results_dir(tmp_path, failing)
    report = build_report(load_results(results), now=NOW)
    path = write_report(report, tmp_path / "out")
    attestation = write_statement(build_statement(report, path, [results]), attestation_path(path), sign_key)
    return path, attestation, results


def flip_one_byte(path: Path, offset: int = -2) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


class TestStatement:
    def test_statement_is_in_toto_v1_with_the_test_result_predicate(self, tmp_path: Path) -> None:
        report_path, attestation, _ = report_with_attestation(tmp_path, failing="scenario.2.disabled")
        statement = json.loads(attestation.read_text())
        assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
        assert statement["subject"][0]["name"] == report_path.name
        assert statement["subject"][1] == {"name": "bot-config", "digest": {"sha256": "ab" * 32},
                                           "annotations": {"bot_command": BOT.command, "bot_version": "1.0"}}
        predicate = statement["predicate"]
        assert predicate["result"] == "fail" and predicate["failedTests"] == ["scenario.2.disabled"]
        assert "scenario.1.normal" in predicate["passedTests"] and predicate["notRunTests"] == []
        assert predicate["evidence"] == ["embedded"] and predicate["verdict"] == "NOT READY FOR SIGN-OFF"
        assert {c["name"] for c in predicate["configuration"]} == {"target", "allure-results"}

    def test_unsigned_statement_round_trips_and_a_one_byte_change_to_the_report_fails(self, tmp_path: Path) -> None:
        report_path, attestation, _ = report_with_attestation(tmp_path)
        check = verify_attestation(attestation)
        assert check.ok, check.lines
        flip_one_byte(report_path)
        check = verify_attestation(attestation)
        assert not check.ok and any("DIGEST MISMATCH" in line for line in check.lines)

    def test_a_changed_result_file_fails(self, tmp_path: Path) -> None:
        _, attestation, results = report_with_attestation(tmp_path)
        flip_one_byte(results / "3-result.json", offset=3)
        check = verify_attestation(attestation)
        assert not check.ok and any("results changed" in line for line in check.lines)


class TestSignedEnvelope:
    def test_signed_envelope_round_trips(self, tmp_path: Path) -> None:
        _, attestation, _ = report_with_attestation(tmp_path, write_key(tmp_path / "key.pem"))
        envelope = json.loads(attestation.read_text())
        assert envelope["payloadType"] == "application/vnd.in-toto+json"
        assert json.loads(base64.b64decode(envelope["payload"]))["_type"] == STATEMENT_TYPE
        check = verify_attestation(attestation)
        assert check.ok and check.lines[0].startswith("signature valid"), check.lines

    def test_a_one_byte_change_to_the_report_fails_the_signed_check(self, tmp_path: Path) -> None:
        report_path, attestation, _ = report_with_attestation(tmp_path, write_key(tmp_path / "key.pem"))
        flip_one_byte(report_path, offset=10)
        assert not verify_attestation(attestation).ok

    def test_a_rewritten_payload_breaks_the_signature(self, tmp_path: Path) -> None:
        _, attestation, _ = report_with_attestation(tmp_path, write_key(tmp_path / "key.pem"))
        envelope = json.loads(attestation.read_text())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["result"] = "pass"
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        attestation.write_text(json.dumps(envelope))
        check = verify_attestation(attestation)
        assert not check.ok and check.lines[0].startswith("SIGNATURE INVALID")

    def test_another_signers_public_key_is_refused(self, tmp_path: Path) -> None:
        _, attestation, _ = report_with_attestation(tmp_path, write_key(tmp_path / "key.pem"))
        other = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.PEM,
                                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        (tmp_path / "other.pub").write_bytes(other)
        assert not verify_attestation(attestation, tmp_path / "other.pub").ok

    def test_a_key_that_is_not_ed25519_is_refused_by_name(self, tmp_path: Path) -> None:
        (tmp_path / "bad.pem").write_text("not a key")
        with pytest.raises(AttestationError, match="bad.pem"):
            report_with_attestation(tmp_path, tmp_path / "bad.pem")


class TestReportCommand:
    def test_report_writes_a_signed_attestation_and_verify_attestation_checks_it(self, tmp_path: Path) -> None:
        results = results_dir(tmp_path)
        key = write_key(tmp_path / "key.pem")
        out = tmp_path / "out"
        made = CliRunner().invoke(report_command, ["--results", str(results), "--out", str(out), "--no-html",
                                                   "--sign-key", str(key)])
        assert made.exit_code == 0, made.output
        attestation = next(out.glob("*.intoto.json"))
        ok = CliRunner().invoke(report_command, ["--verify-attestation", str(attestation)])
        assert ok.exit_code == 0 and "ATTESTATION OK" in ok.output, ok.output
        flip_one_byte(next(out.glob("deployment-report-*.md")))
        bad = CliRunner().invoke(report_command, ["--verify-attestation", str(attestation)])
        assert bad.exit_code == 1 and "ATTESTATION CHECK FAILED" in bad.output

    def test_an_unreadable_attestation_is_a_usage_error(self, tmp_path: Path) -> None:
        (tmp_path / "x.json").write_text("{")
        result = CliRunner().invoke(report_command, ["--verify-attestation", str(tmp_path / "x.json")])
        assert result.exit_code == 2 and "x.json" in result.output and "Traceback" not in result.output
