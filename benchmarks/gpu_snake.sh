#!/usr/bin/env bash
# The GPU Snake study of docs/results.md, as one time-boxed script (part of one GPU lease).
# Round 3: the wide recipe of round 2 (MLP 512x3, 256 envs x 8 minibatches, food shaping that
# fades by half a board) collapsed in all four runs (entropy -> 0 by 1-3M steps, clip fraction
# 0.3-0.5, then NaN). Its first update already clipped 0.17 (Adam) / 0.33 (Muon) of the samples
# against ~0.1 for the 128x2 net: Adam's per-weight step moves a 512-wide layer's output ~4x as
# far, and 8 minibatches make twice as many Muon steps per update as the preset's 4. A CPU check
# of the first updates (docs/results.md) gives the 128x2 net's clip fraction at Adam lr 1.25e-4
# and at Muon muon_lr 0.005 (with lr 1.25e-4 for its Adam part), so this round uses those, and
# leaves out the flip augmentation, which measured worse on CPU (docs/results.md):
#   wide_muon / wide_adam: 10x10, 3 vmapped seeds, up to 30M env steps per seed, same steps and
#       seeds for both: who reaches 90% greedy wins first.
# Rounds 1 and 2 (commits 6d27596 and f95b9fe) are in git history; docs/results.md lists their
# commands.
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

wide10=(--preset snake-master --hidden-size 512 --num-hidden-layers 3 --num-envs 256
        --num-minibatches 8 --env-params food_shaping=0.5,food_shaping_decay=2
        --lr 1.25e-4 --num-seeds 3 --total-timesteps "$steps10" --save-freq 46 --eval-freq 92)

job wide_muon "$episodes" "" -- "${wide10[@]}" --optimizer muon --muon-lr 0.005 &
job wide_adam "$episodes" "--gif none" -- "${wide10[@]}" --optimizer adam &
wait
say "done"
