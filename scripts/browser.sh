#!/usr/bin/env bash
# Headless Chromium for the UI browser test and screenshots: Debian's `chromium` package,
# installed with apt-get where missing (driven by the Python playwright package; never
# `playwright install`). Prints the browser's path.
set -euo pipefail
if ! command -v chromium >/dev/null; then
    echo "browser.sh: installing chromium with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium >&2
fi
command -v chromium
