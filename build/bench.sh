#!/usr/bin/env bash
# Regenerates the measured table in docs/performance.md: installs what is missing (build/setup.sh), builds the
# bench and the sample in Release, publishes the Native AOT sample, then runs every scenario against its baseline
# in one process, alternating, and splices the table between the markers in docs/performance.md.
# Extra arguments go to the report (for example: --rounds 5, --messages 50000, --only pipeline,sinks, --out -).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { echo "[bench] $*" >&2; }
bash build/setup.sh

log "building the bench and the sample (Release)"
dotnet build bench/Drakkar.Bench -c Release --nologo -v quiet
dotnet build Drakkar.Sample -c Release --nologo -v quiet
log "publishing the Native AOT sample"
aot_out="$root/.artifacts/sample-aot"
mkdir -p "$root/.artifacts"
dotnet publish Drakkar.Sample -c Release -p:PublishAot=true -o "$aot_out" --nologo -v quiet > "$root/.artifacts/aot-publish.log" 2>&1 \
  || { cat "$root/.artifacts/aot-publish.log" >&2; exit 1; }

log "publishing the Native AOT orchestration worker (the debug row's AOT variant)"
worker_out="$root/.artifacts/bench-worker-aot"
dotnet publish bench/Drakkar.Bench.Worker -c Release -p:PublishAot=true -o "$worker_out" --nologo -v quiet > "$root/.artifacts/bench-worker-publish.log" 2>&1 \
  || { cat "$root/.artifacts/bench-worker-publish.log" >&2; exit 1; }

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (ratios within one run are what count)"
exec dotnet "bench/Drakkar.Bench/bin/Release/net10.0/Drakkar.Bench.dll" report \
  --out "$root/docs/performance.md" \
  --aot "$aot_out/drakkar-sample" \
  --aot-worker "$worker_out/drakkar-bench-worker" \
  --jit "$root/Drakkar.Sample/bin/Release/net10.0/drakkar-sample.dll" \
  "$@"
