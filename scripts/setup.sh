#!/usr/bin/env bash
# Set up .venv with anydiff (editable) and every backend it is tested with, pinned to the CPU
# builds in requirements/constraints.txt. Safe to run again: pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# tinygrad's CPU device compiles kernels with clang (a Debian package).
if ! command -v clang >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[all,test,docs]"
