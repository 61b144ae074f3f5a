#!/usr/bin/env bash
# The whole test suite with the Python on PATH (installation is the caller's job): the tests, then
# every notebook top to bottom with nbval (lax: outputs are not compared, every cell must run).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
