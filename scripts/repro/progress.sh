#!/usr/bin/env bash
# Prints each run's last metrics line and checkpoint (scripts/repro/train-runs.sh).
R=${RUNS:-/tmp/repro}
for r in fp terdit nonorm absmean; do
  echo "$r: $(tail -n 1 "$R/$r/metrics.jsonl" 2>/dev/null) | $(ls "$R/$r/checkpoints" 2>/dev/null | tail -n 1)"
  tail -n 2 "$R/$r.log" | cut -c1-200
done
