#!/usr/bin/env bash
# A GPU Snake study, as one time-boxed script (prepared, not yet run): the 20x20 board with the
# levers that took the 10x10 board from snake-master's 90.6-93.6% to snake-perfect's 94.7-96.5%
# greedy wins on a 2-core CPU (docs/results.md, "A perfect 10x10, attempted"), and the 10x10
# recipe's GPU wall clock. Four runs side by
# side, CAP bounds each run's training time:
#   perfect         snake-perfect, Muon, its held-out seeds (--seed 1 --num-seeds 3), 30M steps:
#                   the CPU result's wall clock on a GPU
#   20x20_levers    snake-20x20 (reachability + long-body starts, gamma 0.999, lambda 0.9,
#                   256-step rollouts), 2 seeds, 100M steps or the box
#   20x20_reach     the same without the long-body starts (curriculum_start=0), 1 seed
#   20x20_plain     the same without either lever, 1 seed: which lever moves the 20x20 needle
# The earlier GPU Snake studies and their commands are in docs/results.md's history section.
#
#   bash benchmarks/gpu_snake.sh OUT_DIR            # the reported run (H100/H200)
#   STEPS10=65536 STEPS20=262144 CAP=60 EPISODES=16 EPISODES20=4 \
#     EXTRA="--hidden-size 32 --num-envs 32 --num-minibatches 4 --save-freq 2 --eval-freq 4" bash benchmarks/gpu_snake.sh /tmp/x  # CPU dry run
set -uo pipefail
out=${1:?usage: gpu_snake.sh OUT_DIR}
steps10=${STEPS10:-30000000}
cap=${CAP:-270}          # seconds of training per run (all run at once)
episodes=${EPISODES:-1024}
read -r -a extra <<< "${EXTRA:-}"
# shellcheck source=benchmarks/gpu_lib.sh
source "$(dirname "$0")/gpu_lib.sh"

python3 -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$log"

perfect=(--preset snake-perfect --num-seeds 3 --seed 1 --total-timesteps "$steps10")
board20=(--preset snake-20x20 --total-timesteps "${STEPS20:-100000000}")

job perfect "$episodes" "" -- "${perfect[@]}" --optimizer muon &
job 20x20_levers "${EPISODES20:-256}" "" -- "${board20[@]}" --optimizer muon --num-seeds 2 &
job 20x20_reach "${EPISODES20:-256}" "--gif none" -- "${board20[@]}" --optimizer muon \
    --env-kwargs.curriculum_start=0 &
job 20x20_plain "${EPISODES20:-256}" "--gif none" -- "${board20[@]}" --optimizer muon \
    --env-kwargs.curriculum_start=0 --env-kwargs.reachability=false &
wait
say "done"
