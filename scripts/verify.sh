#!/usr/bin/env bash
# The main job: install, then run the deployment verification against the embedded exchange.
# Arguments are passed to `liquidation-harness verify` (see --help). Exit 0 when every required checklist
# item passed; the verdict line says on what (the embedded exchange, testnet or Demo Trading).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/bootstrap-tools.sh
exec .venv/bin/liquidation-harness verify "$@"
