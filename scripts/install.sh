#!/usr/bin/env bash
# Install emonb with every modality. torch is pinned to the CPU build (2.13.0): an unpinned torch
# would pull several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-python -m pip}"
$PIP install --quiet "torch==2.13.0"
$PIP install --quiet -e ".[all]"
