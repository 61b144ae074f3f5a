#!/usr/bin/env bash
# Install emonb with every modality, the tested set of requirements/constraints.txt. torch is pinned
# to 2.13.0 (an unpinned torch would pull several GB of CUDA packages; see the README for the CPU
# and CUDA builds on your own machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-python -m pip}"
$PIP install --quiet "torch==2.13.0" -e ".[all]" -c requirements/constraints.txt
