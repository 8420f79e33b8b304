#!/usr/bin/env bash
# Idempotent machine setup for building, testing and running Drakkar for .NET on Debian.
# Installs the OS packages that are missing; safe to run again (nothing is done when all are in place).
# librdkafka itself is not among them: it comes from the librdkafka.redist NuGet package (see README).
set -euo pipefail
log() { echo "[setup] $*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root to run: $*"; exit 1; fi; }

# OS packages (kcat is a test tool only) ---------------------------------------------------------------------
# chromium: the debug UI test loads the page in a real headless browser.
packages=(kcat redis-server redis-tools clang lld python3-bson chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
