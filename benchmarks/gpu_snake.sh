#!/usr/bin/env bash
# A GPU Snake study, as one time-boxed script (prepared, not yet run). On a 2-core CPU the 128x2
# `snake-master` recipe at gamma 0.9995 won 92.9%, 90.6%, 93.6% of greedy games on seeds 0-2
# after 20M steps, more than the wide `snake-wide` at the same gamma on a GPU (85-89% at 30M;
# docs/results/snake-wins-gpu-gamma); four runs side by side, CAP bounds each run's training time
# (three 10x10 runs alone finished 30M steps in ~4 min on an H200):
#   master_heldout  snake-master, Muon, on seeds the gamma was never looked at on (--seed 100)
#   master_adam     snake-master, Adam, seeds 0-2: Muon vs Adam on the winning recipe, to 20M
#   20x20_wide      20x20 with the wide net at snake-wide's minibatch size (1024 envs x 32
#                   minibatches = 4096 samples, as 256 x 8) and muon_lr, gamma 0.9995, food
#                   shaping fading over the board; 2 seeds, 60M steps or the box (the earlier
#                   512-wide 20x20 GPU run, `snake-20x20-gpu` at commit a8f2b1b^, used 16
#                   minibatches at muon_lr 0.02 and gamma 0.995)
#   20x20_master    the same with snake-master's network (minibatches of 4096 as its own)
# The earlier GPU Snake studies and their commands are in docs/results.md's history section.
#
#   bash benchmarks/gpu_snake.sh OUT_DIR            # the reported run (H100/H200)
#   STEPS10=65536 STEPS20=262144 CAP=60 EPISODES=16 EPISODES20=4 \
#     EXTRA="--hidden-size 32 --num-envs 32 --save-freq 2 --eval-freq 4" bash benchmarks/gpu_snake.sh /tmp/x  # CPU dry run
set -uo pipefail
out=${1:?usage: gpu_snake.sh OUT_DIR}
steps10=${STEPS10:-20000000}
cap=${CAP:-270}          # seconds of training per run (all run at once)
episodes=${EPISODES:-1024}
read -r -a extra <<< "${EXTRA:-}"
# shellcheck source=benchmarks/gpu_lib.sh
source "$(dirname "$0")/gpu_lib.sh"

python3 -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$log"

master=(--preset snake-master --num-seeds 3 --total-timesteps "$steps10")
board20=(--num-seeds 2 --env-kwargs width=20,height=20 --env-params food_shaping=0.5,food_shaping_decay=1
         --num-envs 1024 --num-minibatches 32 --total-timesteps "${STEPS20:-60000000}")

job master_heldout "$episodes" "" -- "${master[@]}" --optimizer muon --seed 100 &
job master_adam "$episodes" "--gif none" -- "${master[@]}" --optimizer adam &
job 20x20_wide "${EPISODES20:-64}" "" -- --preset snake-wide --optimizer muon "${board20[@]}" &
job 20x20_master "${EPISODES20:-64}" "" -- --preset snake-master --optimizer muon "${board20[@]}" &
wait
say "done"
