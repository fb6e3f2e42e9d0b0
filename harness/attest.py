"""In-toto attestation of a Deployment Validation Report (Statement v1, Test Result predicate v0.1).

Beside ``deployment-report-*.md`` verify writes ``deployment-report-*.intoto.json``:

- unsigned: the Statement itself;
- with ``--sign-key FILE`` (an ed25519 private key, PEM): a DSSE envelope
  ``{"payloadType": "application/vnd.in-toto+json", "payload": <base64 Statement>, "signatures":
  [{"keyid": ..., "sig": <base64 ed25519 over PAE(payloadType, payload)>}]}`` and the public key
  beside it (``*.intoto.pub.pem``).

Subject: the report's sha256, and the bot's configuration digest when known. Predicate (the
in-toto Test Result fields): ``result`` pass|fail, ``configuration`` (the target and every results
directory with a digest over its result files), ``url`` (the CI job, when known), ``passedTests`` /
``warnedTests`` / ``failedTests`` = checklist item ids; extension fields ``notRunTests`` (skipped or
absent items), ``verdict`` and ``evidence``.

``verify_attestation`` recomputes every digest it can reach (report, results) and checks the
signature; one changed byte in the report or a result file fails it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SUFFIX = ".intoto.json"
PUBLIC_SUFFIX = ".intoto.pub.pem"


class AttestationError(HarnessError):
    """An attestation or key that cannot be read, or a check that failed."""


@dataclass(frozen=True)
class Check:
    ok: bool
    lines: tuple[str, ...]


def attestation_path(report_path: Path) -> Path:
    return report_path.with_suffix(SUFFIX)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def results_digest(directory: Path) -> str:
    """sha256 over the names and bytes of every file in a results directory (history/ left out)."""
    digest = hashlib.sha256()
    root = Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "history" not in p.relative_to(root).parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_statement(report: Any, report_path: Path, results_dirs: Sequence[Path]) -> dict[str, Any]:
    """The Statement for ``report`` (a harness.report.Report) written at ``report_path``."""
    from harness.report import ItemStatus

    base = report_path.parent
    subject: list[dict[str, Any]] = [{"name": report_path.name, "digest": {"sha256": sha256_file(report_path)}}]
    bot = report.bot
    if bot.config_digest.startswith("sha256:"):
        subject.append({"name": "bot-config", "digest": {"sha256": bot.config_digest.removeprefix("sha256:")},
                        "annotations": {"bot_command": bot.command, "bot_version": bot.version}})
    configuration: list[dict[str, Any]] = [
        {"name": "target", "annotations": {"evidence": [e.value for e in report.evidence],
                                           "description": [e.description for e in report.evidence]}}
    ]
    for directory in results_dirs:
        configuration.append({"name": "allure-results", "uri": os.path.relpath(Path(directory).resolve(), base.resolve()),
                              "digest": {"sha256": results_digest(Path(directory))}})
    outcomes = report.outcomes
    predicate: dict[str, Any] = {
        "result": "pass" if report.ready else "fail",
        "configuration": configuration,
        "passedTests": [o.id for o in outcomes if o.status is ItemStatus.PASSED],
        "warnedTests": [],
        "failedTests": [o.id for o in outcomes if o.status.is_failure],
        "notRunTests": [o.id for o in outcomes if o.status is not ItemStatus.PASSED and not o.status.is_failure],
        "verdict": report.verdict.value,
        "evidence": [e.value for e in report.evidence],
    }
    url = os.environ.get("CI_JOB_URL") or _github_run_url()
    if url:
        predicate["url"] = url
    return {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": PREDICATE_TYPE, "predicate": predicate}


def _github_run_url() -> str:
    server, repo, run = (os.environ.get(n) for n in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def load_signing_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AttestationError(f"sign key {str(path)!r}: cannot be read as an unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AttestationError(f"sign key {str(path)!r}: is a {type(key).__name__}; allowed: an ed25519 private key")
    return key


def _keyid(public_pem: bytes) -> str:
    return "sha256:" + hashlib.sha256(public_pem).hexdigest()


def write_statement(statement: dict[str, Any], path: Path, sign_key: Path | None = None) -> Path:
    """Write ``statement`` (plain, or a signed DSSE envelope with ``sign_key``) to ``path``."""
    payload = json.dumps(statement, indent=2, sort_keys=True).encode()
    if sign_key is None:
        path.write_bytes(payload + b"\n")
        return path
    from cryptography.hazmat.primitives import serialization

    key = load_signing_key(sign_key)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                "signatures": [{"keyid": _keyid(public_pem), "sig": base64.b64encode(signature).decode()}]}
    path.write_text(json.dumps(envelope, indent=2) + "\n", encoding="utf-8")
    path.with_name(path.name.removesuffix(SUFFIX) + PUBLIC_SUFFIX).write_bytes(public_pem)
    return path


def verify_attestation(path: Path, public_key: Path | None = None) -> Check:
    """Check the signature (when signed) and every subject / results digest that can be reached."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AttestationError(f"attestation {str(path)!r}: cannot be read as JSON ({type(exc).__name__})") from None
    lines: list[str] = []
    ok = True
    if isinstance(data, dict) and "payloadType" in data:
        statement, sig_ok, sig_line = _check_envelope(Path(path), data, public_key)
        ok &= sig_ok
        lines.append(sig_line)
    else:
        statement = data
        lines.append("unsigned statement (no signature to check; sign with --sign-key)")
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(f"attestation {str(path)!r}: not an in-toto Statement v1 with predicate {PREDICATE_TYPE}")
    base = Path(path).parent
    report_checked = False
    for subject in statement.get("subject", []):
        name, expected = subject.get("name", ""), (subject.get("digest") or {}).get("sha256", "")
        if name == "bot-config":
            lines.append(f"subject bot-config: sha256:{expected} (recorded; compare with the deployed configuration)")
            continue
        target = base / name
        if not target.is_file():
            ok = False
            lines.append(f"subject {name}: MISSING beside the attestation")
            continue
        report_checked = True
        actual = sha256_file(target)
        ok &= actual == expected
        lines.append(f"subject {name}: {'digest matches' if actual == expected else f'DIGEST MISMATCH (sha256 {actual}, attested {expected})'}")
    if not report_checked:
        ok = False
        lines.append("no report subject could be checked")
    for entry in (statement.get("predicate") or {}).get("configuration", []):
        if entry.get("name") != "allure-results" or not entry.get("uri"):
            continue
        directory = (base / entry["uri"]).resolve()
        expected = (entry.get("digest") or {}).get("sha256", "")
        if not directory.is_dir():
            lines.append(f"results {entry['uri']}: not present here (digest not rechecked)")
            continue
        actual = results_digest(directory)
        ok &= actual == expected
        lines.append(f"results {entry['uri']}: {'digest matches' if actual == expected else 'DIGEST MISMATCH (results changed)'}")
    predicate = statement.get("predicate") or {}
    lines.append(f"attested: result={predicate.get('result')}, verdict={predicate.get('verdict')}, "
                 f"evidence={', '.join(predicate.get('evidence') or [])}")
    return Check(ok, tuple(lines))


def _check_envelope(path: Path, envelope: dict[str, Any], public_key: Path | None) -> tuple[Any, bool, str]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
        statement = json.loads(payload)
    except (KeyError, ValueError, TypeError) as exc:
        raise AttestationError(f"attestation {str(path)!r}: not a DSSE envelope ({type(exc).__name__})") from None
    key_file = public_key or path.with_name(path.name.removesuffix(SUFFIX) + PUBLIC_SUFFIX)
    try:
        pem = Path(key_file).read_bytes()
        key = serialization.load_pem_public_key(pem)
    except (OSError, ValueError) as exc:
        raise AttestationError(f"public key {str(key_file)!r}: cannot be read ({type(exc).__name__}); pass --public-key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AttestationError(f"public key {str(key_file)!r}: allowed: an ed25519 public key")
    for signature in signatures if isinstance(signatures, list) else []:
        try:
            key.verify(base64.b64decode(signature.get("sig", "")), pae(str(envelope.get("payloadType")), payload))
        except (InvalidSignature, ValueError, TypeError):
            continue
        pinned = "" if public_key else " (key read from beside the attestation; pass --public-key to pin the signer)"
        return statement, True, f"signature valid, ed25519 {_keyid(pem)}{pinned}"
    return statement, False, f"SIGNATURE INVALID for ed25519 {_keyid(pem)}"
