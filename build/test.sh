#!/usr/bin/env bash
# Runs every test project against real servers (PostgreSQL, Redis, the embedded Kafka broker, HTTP, processes).
# Installs what is missing first (build/setup.sh), publishes the Native AOT sample for the smoke tests, and ends
# with one line: "N passed, N failed[, N skipped]" summed over all test projects. Exits non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

echo "[test] publishing the Native AOT sample" >&2
aot_out="$root/.artifacts/sample-aot"
if dotnet publish Drakkar.Sample -c Release -p:PublishAot=true -o "$aot_out" --nologo -v quiet > "$root/.artifacts/aot-publish.log" 2>&1; then
  export DRAKKAR_SAMPLE_AOT="$aot_out/drakkar-sample"
else
  cat "$root/.artifacts/aot-publish.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

log="$root/.artifacts/test-output.log"
: > "$log"
status=0
dotnet build Drakkar.sln --nologo -v quiet 2>&1 | tee -a "$log" | grep -E "error|warn" >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# One test project at a time: the servers they start and the processes they spawn share two cores.
projects=(tests/*/*Tests.csproj)
for project in "${projects[@]}"; do
  echo "[test] $project" >&2
  run_log="$root/.artifacts/test-project.log"
  dotnet test "$project" --no-build --nologo 2>&1 | tee "$run_log"
  project_status=${PIPESTATUS[0]}
  # A crashed test host (an open defect: a native glibc heap abort, seen late in some integration runs, suspected in
  # librdkafka 2.0.2) is not a test verdict; the project runs again, loudly, at most twice, and only the last run counts.
  for retry in 1 2; do
    grep -q "Test Run Aborted" "$run_log" || break
    echo "[test] WARNING: the test host of $project crashed; running it again ($retry of 2)" | tee -a "$log" >&2
    dotnet test "$project" --no-build --nologo 2>&1 | tee "$run_log"
    project_status=${PIPESTATUS[0]}
  done
  cat "$run_log" >> "$log"
  [ "$project_status" -eq 0 ] || status=1
done

# Sum the per-project summaries ("Passed!  - Failed: 0, Passed: 19, Skipped: 0, Total: 19, ...").
read -r passed failed skipped reported < <(grep -E '^(Passed|Failed)! +- +Failed:' "$log" | awk -F'[:,]' '
  { f += $2; p += $4; s += $6; n++ } END { printf "%d %d %d %d\n", p, f, s, n }')
if [ "$reported" -lt "${#projects[@]}" ]; then
  echo "[test] only $reported of ${#projects[@]} test projects reported a summary (a test host crashed or a build failed)" >&2
  failed=$((failed + ${#projects[@]} - reported))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
