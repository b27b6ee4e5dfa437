#!/usr/bin/env bash
# The fuzz step of CI: every target for FUZZ_SECONDS (default 25) from the committed corpus; fails on any
# crash, hang or input past the memory limit, which run.sh keeps under fuzz/regressions/TARGET/.
# Needs the Release build of fuzz/TerDiT.Fuzz (the test suite builds it) and afl-fuzz (installed from Debian's
# afl++ package when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-25}
if ! command -v afl-fuzz > /dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ > /dev/null
fi
dotnet build fuzz/TerDiT.Fuzz -c Release --nologo -v quiet > /dev/null
status=0
for target in $(ls fuzz/corpus); do
  fuzz/run.sh "$target" "$seconds" || status=1
done
exit $status
