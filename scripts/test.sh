#!/usr/bin/env bash
# Install what the tests need (Python packages and Debian's chromium for the browser tests) and run
# the whole suite. Tests that use ../shared/data skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-python -m pip}"
$PIP install --quiet "torch==2.13.0"
$PIP install --quiet -e ".[test]"
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed: browser tests will skip"
  fi
fi
# notebooks run top to bottom with nbval (lax: outputs are not compared, every cell must run)
python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
