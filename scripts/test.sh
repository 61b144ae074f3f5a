#!/usr/bin/env bash
# Install what the tests need, exactly the tested set of requirements/constraints.txt (Python
# packages, and Debian's chromium for the browser tests), and run the whole suite. Tests that use
# ../shared/data skip when it is absent. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-python -m pip}"
LOCK=requirements/constraints.txt
$PIP install --quiet "torch==2.13.0" -c "$LOCK"
$PIP install --quiet -e ".[test]" -c "$LOCK"
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed: browser tests will skip"
  fi
fi
bash scripts/run_suite.sh "$@"
