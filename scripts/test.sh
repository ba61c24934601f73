#!/usr/bin/env bash
# Set up (scripts/setup.sh), check the types (mypy) and run the whole test suite on every
# installed backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m mypy src
.venv/bin/python -m pytest "$@"
