#!/usr/bin/env bash
# Idempotent setup on a fresh machine: a virtual environment in .venv with the project and its
# test dependencies. Optional tools for the sign-off report (promtool, Chromium, Allure 3) are
# installed by scripts/bootstrap-tools.sh when present; nothing here needs them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import harness, binance, pytest" || { echo "bootstrap: installation failed" >&2; exit 1; }
echo "bootstrap: ready (.venv/bin/liquidation-harness, .venv/bin/python -m pytest)"
