#!/usr/bin/env bash
# Records a deliberate change of the public API: builds the packable projects and appends every symbol the
# PublicApiAnalyzers report as undeclared (RS0016) to that project's PublicAPI.Unshipped.txt. Symbols reported as
# removed (RS0017) are listed for you to delete from the PublicAPI files by hand.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for project in Drakkar.Runtime Drakkar.Sinks.MongoDB; do
  output="$(dotnet build "$root/$project" -c Debug --nologo -v quiet --no-incremental 2>&1 || true)"
  file="$root/$project/PublicAPI.Unshipped.txt"
  added="$(grep -oE "error RS0016: Symbol '.*' is not part of the declared public API" <<<"$output" |
    sed -E "s/^error RS0016: Symbol '(.*)' is not part of the declared public API$/\1/" | sort -u || true)"
  if [ -n "$added" ]; then
    { head -n 1 "$file"; { tail -n +2 "$file"; echo "$added"; } | sort -u; } > "$file.new" && mv "$file.new" "$file"
    echo "$project: recorded $(wc -l <<<"$added") symbol(s) in PublicAPI.Unshipped.txt"
  fi
  grep -oE "error RS0017: Symbol '.*' is part of the declared API, but is either not public or could not be found" <<<"$output" | sort -u || true
done
