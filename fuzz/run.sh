#!/usr/bin/env bash
# Fuzzes one target with afl-fuzz (Debian's afl++) and SharpFuzz for SECONDS, starting from the committed
# corpus; prints the run's statistics; exits 1 when it found a crash or a hang (kept under
# fuzz/regressions/TARGET/ as found-*). See fuzz/README.md.
# Usage: fuzz/run.sh TARGET SECONDS [OUT_DIR]   (OUT_DIR default: $FUZZ_WORK/findings/TARGET, emptied first;
# FUZZ_WORK, default fuzz/.work, holds the instrumented build, redone when the build is newer: give
# concurrent sessions their own)
set -euo pipefail
cd "$(dirname "$0")/.."
target=$1
seconds=$2
work=${FUZZ_WORK:-fuzz/.work}
out=${3:-$work/findings/$target}
bin=$work/bin

# An instrumented copy of the build output (SharpFuzz rewrites the loaders' assemblies in place; a copy, not
# links, so that a rebuild never reaches a running fuzzer).
build=fuzz/TerDiT.Fuzz/bin/Release/net10.0
if [[ ! -e $work/instrumented || -n $(find "$build" -maxdepth 1 -name 'TerDiT*.dll' -newer "$work/instrumented") ]]; then
  dotnet tool restore > /dev/null
  rm -rf "$bin"
  mkdir -p "$work"
  cp -a "$build" "$bin"
  for assembly in TerDiT.Runtime.dll TerDiT.dll TerDiT.Serve.dll; do
    dotnet tool run sharpfuzz "$bin/$assembly" > /dev/null
  done
  touch "$work/instrumented"
fi

rm -rf "$out" "$out.findings.log"
mkdir -p "$(dirname "$out")"
# The engine's own memory limit (-m) counts address space, which .NET reserves by the gigabyte: the limit
# is the harness's resident-memory check (1 GiB added per input) plus a GC heap limit of the same size.
# Each finding's exception and stack go to OUT_DIR.findings.log.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
  AFL_FAST_CAL=1 AFL_CMPLOG_ONLY_NEW=1 DOTNET_GCHeapHardLimit=0x40000000 DOTNET_TieredPGO=0 TERDIT_FUZZ_LOG=$(realpath -m "$out").findings.log
afl-fuzz -i "fuzz/corpus/$target" -o "$out" -t 10000 -m none -V "$seconds" -- dotnet "$bin/TerDiT.Fuzz.dll" "$target" > "$out.log" 2>&1 || {
  tail -20 "$out.log"; exit 2; }

stats=$out/default/fuzzer_stats
awk -F' *: *' '$1 ~ /^(run_time|execs_done|execs_per_sec|corpus_count|edges_found|total_edges|saved_crashes|saved_hangs)$/ { printf "%s %s=%s", (n++ ? "," : "'"$target"':"), $1, $2 } END { print "" }' "$stats"
found=0
for kind in crashes hangs; do
  for f in "$out/default/$kind"/id:*; do
    [[ -e $f ]] || continue
    mkdir -p "fuzz/regressions/$target"
    cp "$f" "fuzz/regressions/$target/found-$kind-$(sha1sum "$f" | cut -c1-12)"
    found=1
  done
done
if (( found )); then
  echo "$target: findings kept under fuzz/regressions/$target/; their exceptions: $out.findings.log" >&2
  exit 1
fi
