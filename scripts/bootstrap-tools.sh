#!/usr/bin/env bash
# Optional tools for the sign-off artefacts, installed where this machine can:
#   - Allure 3 (npm package, into .allure/) for the single-file HTML report;
#   - promtool (Debian package prometheus) to unit-test monitoring/alerts.yml;
#   - Chromium (Debian package chromium) to check the HTML report renders the scenarios;
#   - jq, for the checklist's audit-trail queries.
# Each is skipped with a message when its package manager is missing; nothing else depends on them.
set -uo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null 2>&1; then
  if [ ! -x .allure/node_modules/.bin/allure ]; then
    echo "bootstrap-tools: installing Allure 3 into .allure/"
    npm install --prefix .allure allure@3 --no-audit --no-fund --loglevel=error >/dev/null || echo "bootstrap-tools: Allure 3 install failed; the HTML report will be skipped" >&2
  fi
else
  echo "bootstrap-tools: npm not found; the Allure HTML report will be skipped (the markdown report is still written)" >&2
fi
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v jq >/dev/null 2>&1 || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap-tools: apt-get install ${need[*]}"
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || echo "bootstrap-tools: could not install ${need[*]}; their tests will be skipped with a reason" >&2
  else
    echo "bootstrap-tools: ${need[*]} missing and no root apt-get; their tests will be skipped with a reason" >&2
  fi
fi
exit 0
