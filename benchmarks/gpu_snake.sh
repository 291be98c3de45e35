#!/usr/bin/env bash
# The GPU Snake study of docs/results.md, as one time-boxed script (part of one GPU lease).
# Round 6 (prepared, not yet run): the `snake-wide` preset as rounds 4-5 left it (gamma 0.9995:
# Muon 85-89% greedy wins per seed at 30M steps on seeds 0-2, the seeds it was picked on), four
# runs side by side (three 10x10 runs alone finished 30M steps in ~4 min on an H200; CAP bounds
# each run's training time):
#   w6_muon_heldout  Muon on seeds the choice never saw (--seed 100), 3 seeds
#   w6_adam          Adam on the same recipe, seeds 0-2: Muon vs Adam on the winning recipe
#   w6_g9998         gamma 0.9998: the next step of the horizon that took 65% to 88%
#   w6_20x20         20x20 with what made 10x10 work: the wide net at snake-wide's minibatch size
#                    (1024 envs x 32 minibatches = 4096 samples, as 256 x 8) and muon_lr, gamma
#                    0.9995, food shaping fading over the board; 2 seeds, 60M steps or the box
#                    (round 1's 20x20 run used 16 minibatches at muon_lr 0.02 and gamma 0.995)
# Rounds 4 and 5 (this script's round 4 with CAP=300 beside gpu_minatar.sh, then three gamma
# runs as jobs of gpu_lib.sh) are in docs/results/snake-wins-gpu-round4 and -gamma; round 3 is
# commit f44caf4; rounds 1 and 2 are commits 6d27596 and f95b9fe; docs/results.md lists their
# commands.
#
#   bash benchmarks/gpu_snake.sh OUT_DIR            # the reported run (H100/H200)
#   STEPS10=65536 STEPS20=262144 CAP=60 EPISODES=16 EPISODES20=4 \
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

wide=(--preset snake-wide --num-seeds 3 --total-timesteps "$steps10")

job w6_muon_heldout "$episodes" "" -- "${wide[@]}" --optimizer muon --seed 100 &
job w6_adam "$episodes" "--gif none" -- "${wide[@]}" --optimizer adam &
job w6_g9998 "$episodes" "--gif none" -- "${wide[@]}" --optimizer muon --gamma 0.9998 &
job w6_20x20 "${EPISODES20:-64}" "" -- --preset snake-wide --optimizer muon --num-seeds 2 \
    --env-kwargs width=20,height=20 --env-params food_shaping=0.5,food_shaping_decay=1 \
    --num-envs 1024 --num-minibatches 32 --total-timesteps "${STEPS20:-60000000}" &
wait
say "done"
