#!/usr/bin/env bash
# The commands that produced docs/RESULTS.md's 1000-step table, as run on the GPU machine: the fp and
# absmean runs of `BATCH=256 LR=3e-4 EMA=0.998 bash scripts/repro/train-runs.sh` were going (the terdit and
# nonorm runs had died of GPU memory with four at batch 256), so this stops them, restarts terdit and
# nonorm for 1000 steps, and meanwhile evaluates fp, absmean and PTQ at step 1000 (and fp at 4500); then
# TerDiT and no-norm, packs TerDiT and sweeps cfg, stopping the sweep at the call's time limit.
# Results in $OUT/evals.tgz and $OUT/terdit-s-fmnist-raw.tdit.
set -u
source scripts/gpu-env.sh
R=/tmp/repro; T=gpu-publish/terdit; S=0001000; T0=$SECONDS
pkill -x terdit; sleep 2
COMMON="--preset TerDiT-S --data fashion-mnist --data-dir gpu-data --device cuda --batch 256 --lr 3e-4 --ema-decay 0.998 --precision bf16 --steps 1000 --ckpt-every 500 --log-every 50 --seed 0"
rm -rf $R/terdit $R/nonorm
setsid nohup $T train $COMMON --out $R/terdit > $R/terdit.log 2>&1 < /dev/null &
setsid nohup $T train $COMMON --no-adaln-norm --out $R/nonorm > $R/nonorm.log 2>&1 < /dev/null &
E="--samples 1000 --steps 25 --sampler ddim --batch 500 --device cuda --reference-dir gpu-data --seed 0"
pack() { (cd $R && tar czf $OUT/evals.tgz eval-*.json grid-*.png */metrics.jsonl *.log 2>/dev/null); echo "[$((SECONDS-T0)) s] $1"; }
$T ptq --checkpoint $R/fp/checkpoints/step-$S.ckpt --weights raw --out $R/ptq | tail -1
for r in fp absmean ptq; do $T eval --checkpoint $R/$r/checkpoints/step-$S.ckpt --weights raw --cfg 1.5 $E --out $R/eval-$r.json --grid $R/grid-$r.png | tail -2; done
$T eval --checkpoint $R/fp/checkpoints/step-0004500.ckpt --weights raw --cfg 1.5 $E --out $R/eval-fp-4500.json --grid $R/grid-fp-4500.png | tail -2
pack "fp, absmean, ptq done"
while [ ! -f $R/terdit/checkpoints/step-$S.ckpt ] || [ ! -f $R/nonorm/checkpoints/step-$S.ckpt ]; do sleep 5; [ $((SECONDS-T0)) -gt 480 ] && break; done
tail -2 $R/terdit.log $R/nonorm.log; sleep 3
$T pack --checkpoint $R/terdit/checkpoints/step-$S.ckpt --weights raw --out $OUT/terdit-s-fmnist-raw.tdit | tail -1
for r in terdit nonorm; do $T eval --checkpoint $R/$r/checkpoints/step-$S.ckpt --weights raw --cfg 1.5 $E --out $R/eval-$r.json --grid $R/grid-$r.png | tail -2; done
pack "terdit, nonorm done"
for w in 1 4 10; do [ $((SECONDS-T0)) -gt 520 ] && break; $T eval --checkpoint $R/terdit/checkpoints/step-$S.ckpt --weights raw --cfg $w $E --out $R/eval-terdit-cfg$w.json --grid $R/grid-terdit-cfg$w.png | tail -1; done
pack "cfg sweep done"
