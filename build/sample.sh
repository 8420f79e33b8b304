#!/usr/bin/env bash
# Runs the sample search worker. With no configuration it uses the embedded default: an in-process Kafka broker,
# a built-in corpus and generated requests, results written as JSONL files. Extra arguments go to the worker
# (for example: --config Drakkar.Sample/drakkar.yaml, or --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/build/setup.sh"
exec dotnet run --project "$root/Drakkar.Sample" -c Release -- "$@"
