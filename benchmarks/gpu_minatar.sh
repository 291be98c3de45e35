#!/usr/bin/env bash
# The four MinAtar games of the suite at gymnax-blines' own budget (10M env steps per seed), as
# one time-boxed script: each game's preset (gymnax-blines' PPO settings)
# with Adam and with Muon, 4 vmapped seeds each, eight runs side by side on the one GPU, each
# stopped at its time box, then 64 greedy episodes per seed (`ppo-eval`), as the CPU suite does.
# The CPU suite (docs/results/suite) runs the same presets at 2M steps.
#
#   bash benchmarks/gpu_minatar.sh OUT_DIR          # the reported run (H100/H200)
#   GAMES="Freeway SpaceInvaders" bash benchmarks/gpu_minatar.sh OUT_DIR   # some of the games
#   STEPS=65536 CAP=60 EXTRA="--hidden-size 32 --save-freq 2" bash benchmarks/gpu_minatar.sh /tmp/x  # CPU dry run
#   SERIAL=1 CAP=36000 GAMES=Asterix OPTIMIZERS=muon bash benchmarks/gpu_minatar.sh OUT_DIR  # CPU, 10M steps
# SERIAL=1 runs one job at a time: on a 2-core CPU side-by-side runs only share the cores.
set -uo pipefail
out=${1:?usage: gpu_minatar.sh OUT_DIR}
steps=${STEPS:-10000000}
cap=${CAP:-270}
read -r -a games <<< "${GAMES:-Asterix Breakout Freeway SpaceInvaders}"
read -r -a optimizers <<< "${OPTIMIZERS:-adam muon}"
read -r -a extra <<< "${EXTRA:-}"
# shellcheck source=benchmarks/gpu_lib.sh
source "$(dirname "$0")/gpu_lib.sh"

for game in "${games[@]}"; do
    for optimizer in "${optimizers[@]}"; do
        job "${game,,}_$optimizer" 64 "--gif none" -- --env "$game-MinAtar" --optimizer "$optimizer" \
            --num-seeds 4 --seed 0 --total-timesteps "$steps" --eval-freq 0 &
        [[ -n ${SERIAL:-} ]] && wait
    done
done
wait
say "done"
