#!/usr/bin/env bash
# The demo is one command now: `rfdeploy pipeline` with no arguments (what `make demo` runs). This wrapper is kept
# for old habits; extra arguments are passed on (e.g. scripts/demo.sh -o demo-out --force).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/rfdeploy ]; then exec .venv/bin/rfdeploy pipeline "$@"; fi
exec rfdeploy pipeline "$@"
