#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: `anydiff compare` on the built-in scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/anydiff compare "$@"
