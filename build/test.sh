#!/usr/bin/env bash
# Runs every test project against real servers (PostgreSQL, Redis, the embedded Kafka broker, HTTP, processes).
# Installs what is missing first (build/setup.sh), builds, publishes the Native AOT sample and MongoDB worker for the
# smoke and fault tests and runs the package/template check (build/template-check.sh) in the background while the
# tests run, prints each phase's duration and the ten slowest tests, and ends with one line:
# "N passed, N failed[, N skipped]" summed over all test projects and the package/template check.
# Exits non-zero on any failure. Each test runs once: a crashed or hung test host is a failure, never rerun.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Phases: each prints its start time and the seconds since the run began; the durations are listed before the summary.
timings=() phase_name="" phase_start=0
phase() { # phase [NAME]: ends the current phase (recording its duration) and starts NAME
  [ -n "$phase_name" ] && timings+=("$(printf '%6d s  %s' $((SECONDS - phase_start)) "$phase_name")")
  phase_name="${1:-}" phase_start=$SECONDS
  [ -z "$phase_name" ] || echo "[test] $(date -u +%H:%M:%S) +${SECONDS}s $phase_name" >&2
}

phase "setup"
bash build/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$root/.artifacts"

log="$root/.artifacts/test-output.log"
results="$root/.artifacts/test-results"
rm -rf "$results"
: > "$log"
status=0 passed=0 failed=0 skipped=0

phase "restore and build (Debug)"
dotnet build Drakkar.sln --nologo -v quiet 2>&1 | tee -a "$log" | grep -E "error|warn" >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The Native AOT publishes (ILC) and the template check are CPU work that only a few tests wait for: one background job
# (one at a time: they all build Drakkar.Runtime in Release) runs them at a low CPU priority (nice 10: about a tenth of
# a core while the tests want both; not 19, so that the template check's own worker run is not starved), with its own
# compiler and MSBuild processes so that all of its work is niced, while the tests run; those mostly wait on servers,
# brokers and timeouts. Each step leaves "<exit status> <seconds>" in $jobs/<step> when it ends.
jobs="$root/.artifacts/background" && rm -rf "$jobs" && mkdir -p "$jobs"
aot_out="$root/.artifacts/sample-aot" mongo_out="$root/.artifacts/mongo-worker-aot"
template_log="$root/.artifacts/template-check.log"
step_done() { # step_done NAME COMMAND...: runs COMMAND, then records its status and duration in $jobs/NAME
  local name="$1" start=$SECONDS; shift
  "$@"; local step_status=$?
  echo "$step_status $((SECONDS - start))" > "$jobs/$name.tmp" && mv "$jobs/$name.tmp" "$jobs/$name"
}
publish_aot() { # publish_aot PROJECT OUT LOG: Native AOT publish
  dotnet publish "$1" -c Release -p:PublishAot=true -o "$2" --nologo -v quiet > "$3" 2>&1
}
background_steps() {
  renice -n 10 -p "$BASHPID" > /dev/null
  export UseSharedCompilation=false MSBUILDDISABLENODEREUSE=1
  step_done sample publish_aot Drakkar.Sample "$aot_out" "$root/.artifacts/aot-publish.log"
  # tests/Drakkar.MongoWorker: the heaviest publish (the driver's assemblies are rooted whole).
  step_done mongo-worker publish_aot tests/Drakkar.MongoWorker "$mongo_out" "$root/.artifacts/aot-publish-mongo.log"
  # The packages from outside the repository: pack → dotnet new drakkar-worker → build → its tests → Native AOT
  # publish → check-config → a run on the embedded broker.
  step_done template-check bash build/template-check.sh > "$template_log" 2>&1
}
awaited() { # awaited NAME WHAT: waits until the background step NAME ended; records its duration; returns its status
  phase "waiting for the background job: $2"
  while [ ! -e "$jobs/$1" ] && kill -0 "$background_job" 2> /dev/null; do sleep 1; done
  local step_status=1 seconds=0
  [ -e "$jobs/$1" ] && read -r step_status seconds < "$jobs/$1"
  timings+=("$(printf '%6d s  %s (background, ended by +%ds, exit %d)' "$seconds" "$2" "$SECONDS" "$step_status")")
  return "$step_status"
}

# One test project (or a part of one) at a time: the servers they start and the processes they spawn share two cores.
# A test that runs longer than the hang timeout gets its test host dumped (under $results) and killed, which aborts
# that run; the outer timeout only catches a run that hangs outside any test (it should never fire).
hang_timeout=5m
project_timeout=30m
run_tests() { # run_tests PROJECT RUN_NAME [FILTER]: runs the project's tests (those FILTER selects), adds up the counts
  local project="$1" name="$2" filter=("${@:3}") p f s n culprit project_status
  phase "$name"
  local run_log="$root/.artifacts/test-$name.log"
  [ ${#filter[@]} -eq 0 ] || filter=(--filter "${filter[0]}")
  timeout -k 30s "$project_timeout" dotnet test "$project" --no-build --nologo "${filter[@]}" \
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
    echo "[test] FAILED: the test run $name of $project was aborted (a test hung past $hang_timeout, the host crashed, or the run passed $project_timeout; running: ${culprit:-unknown}; dumps under $results)" | tee -a "$log" >&2
    failed=$((failed + 1))
  elif [ "$project_status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "[test] FAILED: $name ($project) exited $project_status without a failed test" | tee -a "$log" >&2
    failed=$((failed + 1))
  fi
}

# Its own process group (job control on for the one start), so that an interrupted run takes it down too.
set -m
background_steps < /dev/null > "$jobs/output.log" 2>&1 &
background_job=$!
set +m
trap 'kill -- -"$background_job" 2> /dev/null' EXIT
echo "[test] background job $background_job: Native AOT publishes of the sample and the MongoDB worker, then the package/template check" >&2

for project in tests/*/*Tests.csproj; do
  case "$project" in *IntegrationTests*) continue ;; esac
  run_tests "$project" "$(basename "$project" .csproj)"
done

# The integration tests without the Native AOT binaries first (while those are published), then the ones that run them
# (tests marked NativeAot=sample or NativeAot=mongo-worker), each part once the binary exists. The first part points
# DRAKKAR_SAMPLE_AOT at a path that does not exist, so that a test starting the AOT sample without the trait fails
# plainly instead of picking up a binary half written.
integration=tests/Drakkar.IntegrationTests/Drakkar.IntegrationTests.csproj
DRAKKAR_SAMPLE_AOT="$root/.artifacts/not-published-yet/drakkar-sample" \
  run_tests "$integration" Drakkar.IntegrationTests "NativeAot!=sample&NativeAot!=mongo-worker"

if awaited sample "Native AOT publish of the sample"; then
  export DRAKKAR_SAMPLE_AOT="$aot_out/drakkar-sample"
else
  cat "$root/.artifacts/aot-publish.log" >&2
  echo "[test] FAILED: the Native AOT publish of the sample" | tee -a "$log" >&2
  failed=$((failed + 1))
fi
run_tests "$integration" Drakkar.IntegrationTests.NativeAotSample "NativeAot=sample"

if awaited mongo-worker "Native AOT publish of the MongoDB worker"; then
  export DRAKKAR_MONGO_WORKER_AOT="$mongo_out/drakkar-mongo-worker"
  echo "[test] Native AOT sizes: sample $(du -m "$aot_out/drakkar-sample" | cut -f1) MB, MongoDB worker $(du -m "$DRAKKAR_MONGO_WORKER_AOT" | cut -f1) MB" >&2
else
  # Without the binary the AOT case of MongoWorkerTests fails too, saying how to get it.
  cat "$root/.artifacts/aot-publish-mongo.log" >&2
  echo "[test] FAILED: the Native AOT publish of the MongoDB worker" | tee -a "$log" >&2
  failed=$((failed + 1))
fi
run_tests "$integration" Drakkar.IntegrationTests.MongoWorker "NativeAot=mongo-worker"

awaited template-check "package/template check (build/template-check.sh)"
wait "$background_job"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# The template check counts each step as one test, and the generated project's own tests are added as they ran.
phase "report"
echo "[test] the packages and the template, from an empty directory" >&2
cat "$template_log"
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

phase
echo "[test] phases (total $SECONDS s):"
printf '[test] %s\n' "${timings[@]}"

line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
