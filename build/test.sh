#!/usr/bin/env bash
# Runs every test project against real servers (PostgreSQL, Redis, the embedded Kafka broker, HTTP, processes).
# Installs what is missing first (build/setup.sh), publishes the Native AOT sample and MongoDB worker for the smoke
# tests, prints the ten slowest tests, and ends with one line: "N passed, N failed[, N skipped]" summed over all test
# projects, plus the package/template check (build/template-check.sh).
# Exits non-zero on any failure. Each project runs once: a crashed or hung test host is a failure, never rerun.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$root/.artifacts"

echo "[test] publishing the Native AOT sample" >&2
aot_out="$root/.artifacts/sample-aot"
if dotnet publish Drakkar.Sample -c Release -p:PublishAot=true -o "$aot_out" --nologo -v quiet > "$root/.artifacts/aot-publish.log" 2>&1; then
  export DRAKKAR_SAMPLE_AOT="$aot_out/drakkar-sample"
else
  cat "$root/.artifacts/aot-publish.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# A worker with the MongoDB sink (tests/Drakkar.MongoWorker): the driver must insert under Native AOT too. It is the
# heaviest publish (the driver's assemblies are rooted whole); a few minutes on two cores.
echo "[test] publishing the Native AOT MongoDB worker" >&2
mongo_out="$root/.artifacts/mongo-worker-aot"
if dotnet publish tests/Drakkar.MongoWorker -c Release -p:PublishAot=true -o "$mongo_out" --nologo -v quiet > "$root/.artifacts/aot-publish-mongo.log" 2>&1; then
  export DRAKKAR_MONGO_WORKER_AOT="$mongo_out/drakkar-mongo-worker"
else
  cat "$root/.artifacts/aot-publish-mongo.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
echo "[test] Native AOT sizes: sample $(du -m "$DRAKKAR_SAMPLE_AOT" | cut -f1) MB, MongoDB worker $(du -m "$DRAKKAR_MONGO_WORKER_AOT" | cut -f1) MB" >&2

log="$root/.artifacts/test-output.log"
results="$root/.artifacts/test-results"
rm -rf "$results"
: > "$log"
status=0
dotnet build Drakkar.sln --nologo -v quiet 2>&1 | tee -a "$log" | grep -E "error|warn" >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# One test project at a time: the servers they start and the processes they spawn share two cores.
# A test that runs longer than the hang timeout gets its test host dumped (under $results) and killed, which aborts
# that project's run; the outer timeout only catches a run that hangs outside any test (it should never fire).
hang_timeout=5m
project_timeout=30m
passed=0 failed=0 skipped=0
projects=(tests/*/*Tests.csproj)
for project in "${projects[@]}"; do
  name="$(basename "$project" .csproj)"
  echo "[test] $project" >&2
  run_log="$root/.artifacts/test-$name.log"
  timeout -k 30s "$project_timeout" dotnet test "$project" --no-build --nologo \
    --blame-hang-timeout "$hang_timeout" --blame-hang-dump-type mini \
    --results-directory "$results" --logger "trx;LogFileName=$name.trx" 2>&1 | tee "$run_log"
  project_status=${PIPESTATUS[0]}
  cat "$run_log" >> "$log"
  [ "$project_status" -eq 0 ] || status=1
  # The runner's summary: "Passed!  - Failed: 0, Passed: 19, Skipped: 0, Total: 19, ...".
  read -r p f s n < <(grep -E '^(Passed|Failed)! +- +Failed:' "$run_log" | awk -F'[:,]' '
    { f += $2; p += $4; s += $6; n++ } END { printf "%d %d %d %d\n", p, f, s, n }')
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  if [ "$n" -eq 0 ] || grep -qE "Test Run Aborted|The active test run was aborted" "$run_log" || [ "$project_status" -eq 124 ]; then
    # The test that hung or crashed the host has no result of its own; it counts as one failure.
    culprit="$(awk '/The test running when the crash occurred/ { on = 1; next } on && !NF { exit } on { printf "%s%s", sep, $1; sep = ", " }' "$run_log")"
    echo "[test] FAILED: the test run of $project was aborted (a test hung past $hang_timeout, the host crashed, or the run passed $project_timeout; running: ${culprit:-unknown}; dumps under $results)" | tee -a "$log" >&2
    failed=$((failed + 1))
  elif [ "$project_status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "[test] FAILED: $project exited $project_status without a failed test" | tee -a "$log" >&2
    failed=$((failed + 1))
  fi
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# The packages from outside the repository: pack → dotnet new drakkar-worker → build → its tests → Native AOT publish
# → check-config → a run on the embedded broker (build/template-check.sh). Each step counts as one test, and the
# generated project's own tests are added as they ran.
echo "[test] the packages and the template, from an empty directory" >&2
template_log="$root/.artifacts/template-check.log"
bash build/template-check.sh 2>&1 | tee "$template_log"
read -r p f < <(sed -n 's/^template-check: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$template_log")
read -r gp gf < <(grep -E '^(Passed|Failed)! +- +Failed:' "$template_log" | awk -F'[:,]' '{ f += $2; p += $4 } END { printf "%d %d\n", p, f }')
if [ -z "${p:-}" ]; then
  echo "[test] FAILED: build/template-check.sh ended without its summary" >&2
  failed=$((failed + 1))
else
  passed=$((passed + p + gp)) failed=$((failed + f + gf))
fi
cat "$template_log" >> "$log"

echo "[test] ten slowest tests:"
python3 - "$results" <<'PY' || echo "[test] (could not read the TRX files)"
import glob, os, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
rows = []
for path in glob.glob(os.path.join(sys.argv[1], "**", "*.trx"), recursive=True):
    project = os.path.splitext(os.path.basename(path))[0]
    for result in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", ns):
        h, m, s = result.get("duration", "0:0:0").split(":")
        rows.append((int(h) * 3600 + int(m) * 60 + float(s), result.get("outcome", "?"), project, result.get("testName", "?")))
for seconds, outcome, project, test in sorted(rows, reverse=True)[:10]:
    print(f"[test] {seconds:8.2f} s  {outcome:<7} {project}: {test}")
PY

line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
