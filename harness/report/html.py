"""The Allure HTML report, built offline by the Allure 3 CLI (npm package ``allure``).

Verified command: ``allure awesome <results> --single-file --output <dir>`` writes one
self-contained ``<dir>/index.html`` (plus ``summary.json`` and ``test-results.json``) without any
network access. The CLI is looked up, in order, at ``$ALLURE_BIN``, at
``.allure/node_modules/.bin/allure`` under the working directory and under the project checkout
(what ``npm install --prefix .allure allure@3`` creates), then as ``allure`` on PATH.

Opening the report contacts nobody. Allure 3's report template loads Google Analytics
(``googletagmanager.com``) whenever the page is opened, and its awesome plugin ignores
``ALLURE_NO_ANALYTICS`` (Allure 3.18). A sign-off report of a trading account has no business
telling a third party when it is read, and an unreachable analytics host was seen to leave the
page stuck on its loader under load. :func:`generate_html` removes those two script tags and
logs a warning if the report would still load any script from the network.

When Node.js or the package is absent, or the CLI fails, :func:`generate_html` says why through
``log`` and returns None: the HTML report is a convenience, the markdown report is the record.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

ALLURE_ENV = "ALLURE_BIN"
LOCAL_BIN = Path(".allure") / "node_modules" / ".bin" / "allure"
INSTALL_HINT = "install it with: npm install --prefix .allure allure@3 (needs Node.js >= 20)"
HTML_TIMEOUT_SECONDS = 300.0
DEFAULT_REPORT_NAME = "Emergency liquidation deployment verification"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>\s*", re.S)
_ANALYTICS_SRC = re.compile(r"""\bsrc=["']https?://(?:www\.)?googletagmanager\.com/""")
_REMOTE_SRC = re.compile(r"""\bsrc=["'](https?://[^"']+)""")


def find_allure() -> Path | None:
    """The Allure 3 CLI to run, or None when none is installed where we look."""
    explicit = os.environ.get(ALLURE_ENV)
    if explicit:
        return Path(explicit)
    for root in (Path.cwd(), _PROJECT_ROOT):
        candidate = root / LOCAL_BIN
        if candidate.exists():
            return candidate
    on_path = shutil.which("allure")
    return Path(on_path) if on_path else None


def generate_html(
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    allure_bin: str | Path | None = None,
    report_name: str = DEFAULT_REPORT_NAME,
    log: Callable[[str], None] | None = None,
) -> Path | None:
    """Build ``out_dir/index.html`` from ``results_dir``; None (with the reason sent to ``log``,
    default: a logging warning) when the CLI is missing or fails. Never raises for those cases."""
    say = log or logger.warning
    results, out = Path(results_dir), Path(out_dir)
    if not results.is_dir():
        say(f"Allure HTML report skipped: results directory {str(results)!r} does not exist")
        return None
    binary = Path(allure_bin) if allure_bin is not None else find_allure()
    if binary is None:
        say(f"Allure HTML report skipped: the Allure 3 CLI was not found; {INSTALL_HINT}")
        return None
    if not binary.exists():
        say(f"Allure HTML report skipped: Allure CLI {str(binary)!r} does not exist; {INSTALL_HINT}")
        return None
    if _needs_node(binary) and shutil.which("node") is None:
        say(f"Allure HTML report skipped: {str(binary)!r} needs Node.js, and `node` is not on PATH")
        return None
    out.mkdir(parents=True, exist_ok=True)
    # grouped by story: the report's top level is the checklist's boxes, readable without expanding
    command = [str(binary), "awesome", str(results.resolve()), "--single-file",
               "--output", str(out.resolve()), "--report-name", report_name, "--group-by", "story"]
    try:
        done = subprocess.run(
            command, cwd=out, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=HTML_TIMEOUT_SECONDS, env={**os.environ, "NO_COLOR": "1", "ALLURE_NO_ANALYTICS": "true"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"Allure HTML report skipped: running {str(binary)!r} failed: {exc}")
        return None
    index = out / "index.html"
    if done.returncode != 0 or not index.is_file():
        output = " ".join((done.stderr or done.stdout or "no output").split())[-500:]
        say(
            f"Allure HTML report skipped: `{binary} awesome` exited {done.returncode}"
            f"{'' if index.is_file() else ' without writing index.html'} (is it Allure 3?): {output}"
        )
        return None
    try:
        remote = strip_analytics(index)
    except (OSError, UnicodeError) as exc:
        say(f"Allure HTML report {str(index)!r}: could not remove its analytics scripts: {exc}")
        return index
    if remote:
        say(f"Allure HTML report {str(index)!r} still loads scripts from the network when opened: {remote}")
    return index


def strip_analytics(index: Path) -> list[str]:
    """Remove the analytics scripts from the report at ``index`` (in place, atomically).

    Returns the remote script addresses that are left (none for the report Allure 3 writes)."""
    html = index.read_text(encoding="utf-8")

    def keep(script: re.Match[str]) -> str:
        attributes, body = script.group(1), script.group(2)
        if _ANALYTICS_SRC.search(attributes) or "function gtag(" in body:
            return ""
        return script.group(0)

    cleaned = _SCRIPT.sub(keep, html)
    if cleaned != html:
        scratch = index.with_name(index.name + ".tmp")
        scratch.write_text(cleaned, encoding="utf-8")
        scratch.replace(index)
    return [found.group(1) for script in _SCRIPT.finditer(cleaned) if (found := _REMOTE_SRC.search(script.group(1)))]


def _needs_node(binary: Path) -> bool:
    """True for an npm-installed CLI (a node script), which cannot run without ``node``."""
    try:
        with binary.resolve().open("rb") as handle:
            first_line = handle.readline(200)
    except OSError:
        return False
    return first_line.startswith(b"#!") and b"node" in first_line
