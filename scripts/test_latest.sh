#!/usr/bin/env bash
# The whole suite in a fresh virtual environment with the newest releases of every dependency
# (no constraints), to catch drift before users meet it. With --lock, a green run also rewrites
# requirements/constraints.txt from that environment (the locked set both README commands install).
#
#   bash scripts/test_latest.sh            # CI runs this after the locked run
#   bash scripts/test_latest.sh --lock     # regenerate the lock from a green run
#
# Extra arguments go to pytest. EMONB_LATEST_VENV picks the environment's folder (default
# .venv-latest, git-ignored); it is rebuilt each run, and only when emonb made it.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=0
if [ "${1:-}" = "--lock" ]; then LOCK=1; shift; fi
VENV="${EMONB_LATEST_VENV:-.venv-latest}"
MARK="$VENV/.emonb-latest-venv"
if [ -e "$VENV" ] && [ ! -e "$MARK" ]; then
  echo "test_latest: $VENV exists and was not made by this script; remove it or set EMONB_LATEST_VENV" >&2
  exit 2
fi
rm -rf "$VENV"
python -m venv "$VENV"
touch "$MARK"
VENV="$(cd "$VENV" && pwd)"
PY="$VENV/bin/python"
t0=$(date +%s)
# torch stays at the CPU build the project pins (an unpinned torch is a CUDA build of several GB)
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet "torch==2.13.0"
"$PY" -m pip install --quiet -e ".[test]"
echo "newest releases installed in $VENV in $(( $(date +%s) - t0 )) s:"
"$PY" -m pip list --format=freeze 2>/dev/null | grep -iE '^(numpy|pandas|scipy|xarray|zarr|av|neurokit2|mediapipe|opencv-contrib-python|onnxruntime|scikit-learn|librosa|jupyterlab|papermill|nbconvert|dask)==' | tr '\n' ' '
echo
# the Binder build test and the checks of the lock file are about the locked set: they run in the
# locked suite only (EMONB_NEWEST_RELEASES=1 skips them here, also while the lock is regenerated)
EMONB_NEWEST_RELEASES=1 EMONB_SKIP_INSTALL_TESTS=1 PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV" bash scripts/run_suite.sh "$@"
if [ "$LOCK" = 1 ]; then
  "$PY" scripts/write_lock.py "$VENV" requirements/constraints.txt
fi
