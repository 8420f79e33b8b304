#!/usr/bin/env bash
# Proves the packages from outside the repository, the way a user meets them: packs Drakkar, Drakkar.Sinks.MongoDB
# and Drakkar.Templates into a local feed, runs `dotnet new drakkar-worker` in an empty temporary directory, then
# builds it (and a second one named my-worker, which is not a C# identifier), runs its generated tests, publishes it
# with Native AOT (no warnings from the worker's code), checks its
# configuration with the binary, and runs the binary on the embedded broker until it has processed a message.
# No ProjectReference to this repository is involved.
# Prints the generated tests' runner summary and ends with "template-check: N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/drakkar-template-check.XXXXXX)"
feed="$work/feed" hive="$work/template-hive" app="$work/Acme.Worker"
passed=0 failed=0
step() { # step NAME COMMAND...: runs one check, logs under $work, counts it
  local name="$1"; shift
  echo "[template] $name" >&2
  if "$@" > "$work/$name.log" 2>&1; then passed=$((passed + 1)); return 0; fi
  echo "[template] FAILED: $name (log: $work/$name.log)" >&2
  tail -n 40 "$work/$name.log" >&2
  failed=$((failed + 1)); return 1
}
finish() { echo "template-check: $passed passed, $failed failed"; exit $((failed > 0)); }

version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")"
# The packages cache keeps a package by id and version: drop an older build of this version so the feed's is used.
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
rm -rf "$cache/drakkar/$version" "$cache/drakkar.sinks.mongodb/$version" "$cache/drakkar.templates/$version"

pack() {
  dotnet pack "$root/Drakkar.Runtime" -c Release -o "$feed" --nologo -v quiet &&
  dotnet pack "$root/Drakkar.Sinks.MongoDB" -c Release -o "$feed" --nologo -v quiet &&
  dotnet pack "$root/templates/Drakkar.Templates.csproj" -c Release -o "$feed" --nologo -v quiet
}
step pack pack || finish

# The template engine's own settings stay in $hive, not in the user's ~/.templateengine.
create() {
  dotnet new install "$feed/Drakkar.Templates.$version.nupkg" --debug:custom-hive "$hive" &&
  dotnet new drakkar-worker -n Acme.Worker -o "$app" --debug:custom-hive "$hive" &&
  # The package source exactly as docs/packages.md tells users to add it: beside nuget.org.
  (cd "$app" && dotnet new nugetconfig && dotnet nuget add source "$feed" --name drakkar) &&
  ! grep -rq "ProjectReference.*Drakkar\.\(Runtime\|Generators\)" "$app"
}
step new create || finish

# A name that is not a C# identifier (as the docs' my-worker): its files, folders and the paths inside them must agree.
hyphenated() {
  local dir="$work/my-worker"
  dotnet new drakkar-worker -n my-worker -o "$dir" --debug:custom-hive "$hive" &&
  cp "$app/nuget.config" "$dir/" && (cd "$dir" && dotnet build --nologo -warnaserror)
}
step new-hyphenated hyphenated
cd "$app" || finish

# A file without `using Drakkar;`, as the documentation's code is written: the package adds it to the implicit usings.
cat > Acme.Worker/ImplicitUsingCheck.cs <<'CS'
namespace Acme.Worker;

internal static class ImplicitUsingCheck
{
    internal static SinkKind Kind => SinkKind.Http;
}
CS
step build dotnet build --nologo -warnaserror
rm -f Acme.Worker/ImplicitUsingCheck.cs
# The generated tests: their own runner summary is printed for the caller to add up.
if ! dotnet test --no-build --nologo > "$work/test.log" 2>&1; then
  echo "[template] FAILED: the generated tests (log: $work/test.log)" >&2; tail -n 40 "$work/test.log" >&2
fi
grep -E '^(Passed|Failed)! +- +Failed:' "$work/test.log" || { echo "[template] FAILED: no test summary" >&2; failed=$((failed + 1)); }

publish() {
  dotnet publish Acme.Worker -c Release -p:PublishAot=true -o "$work/aot" --nologo > "$work/publish-output.log" 2>&1
  local status=$?
  cat "$work/publish-output.log"
  # Warnings from the worker's own code would be errors; say so plainly if any trim/AOT warning shows at all.
  if grep -E "warning (IL|CS)[0-9]+" "$work/publish-output.log"; then return 1; fi
  return $status
}
step publish-aot publish || finish
binary="$work/aot/Acme.Worker"
echo "[template] Native AOT binary: $(du -m "$binary" | cut -f1) MB" >&2
step check-config "$binary" check-config --config "$work/aot/drakkar.yaml"

run_embedded() {
  local out="$work/run" log="$work/run/worker.log"
  mkdir -p "$out"
  RESULTS_DIR="$out" "$binary" run --config "$work/aot/drakkar.yaml" > "$log" 2>&1 &
  local pid=$! address="" i
  for i in $(seq 1 100); do
    address="$(grep -oiE 'embedded Kafka broker at [0-9.]+:[0-9]+' "$log" | grep -oE '[0-9.]+:[0-9]+$' | head -n1)"
    [ -n "$address" ] && break; sleep 0.2
  done
  [ -n "$address" ] || { kill -9 "$pid"; cat "$log"; echo "no broker address logged"; return 1; }
  echo '{"id":"a","text":"hello brave new world"}' | kcat -P -b "$address" -t documents
  for i in $(seq 1 150); do grep -q '"words":4' "$out/counts.jsonl" 2>/dev/null && break; sleep 0.2; done
  kill -TERM "$pid"; wait "$pid"; local status=$?
  cat "$log"; echo "counts.jsonl: $(cat "$out/counts.jsonl" 2>/dev/null)"
  grep -q '{"id":"a","words":4}' "$out/counts.jsonl" && [ "$status" -eq 0 ]
}
step run-embedded run_embedded
finish
