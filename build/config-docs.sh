#!/usr/bin/env bash
# Rewrites the generated key tables of docs/configuration.md from DrakkarConfigSchema: runs the test that checks
# them with DRAKKAR_UPDATE_DOCS=1, which writes the page instead of comparing it.
set -euo pipefail
cd "$(dirname "$0")/.."
DRAKKAR_UPDATE_DOCS=1 dotnet test tests/Drakkar.Runtime.Tests -c Debug \
  --filter "FullyQualifiedName~Drakkar.Runtime.Tests.Configuration.ConfigDocsTests" "$@"
