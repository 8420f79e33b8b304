#!/usr/bin/env bash
# Idempotent machine setup for building, testing and running Drakkar for .NET on Debian.
# Installs missing OS packages, packs the librdkafka.redist placeholder into the local feed, and builds the
# librdkafka compatibility shim. Each step is skipped when its result is already in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[setup] $*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root to run: $*"; exit 1; fi; }

# 1. OS packages -------------------------------------------------------------------------------------------
packages=(librdkafka1 librdkafka-dev kcat redis-server redis-tools clang lld gcc python3-bson)
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

# 2. librdkafka.redist placeholder in the local feed ---------------------------------------------------------
feed="$root/.local-feed"
if [ ! -f "$feed/librdkafka.redist.2.15.1.nupkg" ]; then
  log "packing librdkafka.redist placeholder into $feed"
  mkdir -p "$feed"
  dotnet pack "$root/build/librdkafka-placeholder/librdkafka.redist.csproj" -c Release -o "$feed" \
    -p:BaseIntermediateOutputPath="$root/.artifacts/placeholder/obj/" -p:OutputPath="$root/.artifacts/placeholder/bin/" \
    --nologo -v quiet | grep -E "error|warn" >&2 || true
  [ -f "$feed/librdkafka.redist.2.15.1.nupkg" ] || { log "packing the placeholder failed"; exit 1; }
fi

# 3. librdkafka compatibility shim -------------------------------------------------------------------------
shim="$root/.artifacts/native/librdkafka.so"
src="$root/build/librdkafka-shim/rdkafka_compat.c"
if [ ! -f "$shim" ] || [ "$src" -nt "$shim" ]; then
  log "building librdkafka shim -> $shim"
  mkdir -p "$(dirname "$shim")"
  gcc -shared -fPIC -O2 -o "$shim" "$src" -Wl,--no-as-needed -l:librdkafka.so.1 -ldl
fi
