#!/usr/bin/env bash
# The GPU Snake study of docs/results.md, as one time-boxed script (part of one GPU lease).
# Round 4 (prepared, not yet run): the `snake-wide` preset (round 3: Muon 60-67% greedy wins at
# 30M steps, still rising by 3-11 points per 3M steps when the learning rate reached 0) and one
# change each, Muon, 3 vmapped seeds, 30M env steps, all side by side:
#   w4_base   the preset as it is (the same-lease reference for the others)
#   w4_g999   gamma 0.999: a game that fills the board lasts ~850 steps, 4x the horizon of 0.995
#   w4_ent003 entropy 0.003 instead of 0.01: less noise in the long, crowded late game
#   w4_lr75   muon_lr 0.0075: 1.5x the step, for a curve that was still rising at the end
# Round 3 (commit f44caf4) ran snake-wide's settings as flags for Muon and Adam; rounds 1 and 2
# (commits 6d27596 and f95b9fe) are in git history; docs/results.md lists their commands.
#
#   bash benchmarks/gpu_snake.sh OUT_DIR            # the reported run (H100/H200)
#   STEPS10=65536 CAP=60 EPISODES=16 \
#     EXTRA="--hidden-size 32 --num-envs 32 --save-freq 2 --eval-freq 4" bash benchmarks/gpu_snake.sh /tmp/x  # CPU dry run
set -uo pipefail
out=${1:?usage: gpu_snake.sh OUT_DIR}
steps10=${STEPS10:-30000000}
cap=${CAP:-270}          # seconds of training per run (all run at once)
episodes=${EPISODES:-1024}
read -r -a extra <<< "${EXTRA:-}"
# shellcheck source=benchmarks/gpu_lib.sh
source "$(dirname "$0")/gpu_lib.sh"

python3 -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$log"

wide=(--preset snake-wide --optimizer muon --num-seeds 3 --total-timesteps "$steps10")

job w4_base "$episodes" "" -- "${wide[@]}" &
job w4_g999 "$episodes" "--gif none" -- "${wide[@]}" --gamma 0.999 &
job w4_ent003 "$episodes" "--gif none" -- "${wide[@]}" --ent-coef 0.003 &
job w4_lr75 "$episodes" "--gif none" -- "${wide[@]}" --muon-lr 0.0075 &
wait
say "done"
