#!/usr/bin/env bash
# Builds the Python package into a virtualenv (maturin develop: a debug build sharing the
# workspace's target/) and runs its pytest suite. Used by .ci/run; needs python3 ≥ 3.9 and
# PyPI (maturin, numpy, pytest).
#   bash crates/python/test.sh            (env VENV: the virtualenv, default $TMPDIR/scalegnn-venv)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-${TMPDIR:-/tmp}/scalegnn-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.7,<2" numpy pytest
# maturin develop installs into the active virtualenv.
VIRTUAL_ENV=$VENV PATH="$VENV/bin:$PATH" maturin develop --quiet
"$VENV/bin/python" -m pytest -q tests
