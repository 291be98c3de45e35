#!/usr/bin/env bash
# The GPU Snake study of docs/results.md, as one time-boxed script (one GPU lease of ~5 minutes).
# Four runs share the one GPU side by side (each alone is latency-bound and leaves it mostly idle):
#   wide_muon / wide_adam: 10x10, a wide recipe (MLP 512x3, 256 envs, food shaping that fades by
#       half a board, flip augmentation), 3 vmapped seeds, up to 30M env steps per seed, Muon and
#       Adam with the same steps and seeds: who reaches 90% greedy wins first;
#   master_adam: the snake-master preset with Adam, 30M steps, 3 seeds (its Muon twin ran in
#       round 1);
#   snake20: 20x20, the snake-master network (MLP 128x2, 128 envs) with food-distance shaping,
#       2 seeds, 40M steps or as far as its time box goes.
# Round 1 (commit 6d27596: master_muon, a 512x3 20x20 run, and the wide runs with the
# augmentation that diverged) is in git history; `ROUND=1` is not kept, the table in
# docs/results.md lists both rounds' commands.
# Each training run is stopped by SIGINT at its time box (the trainer finishes the running chunk
# and saves a checkpoint, exit code 130), then `ppo-eval` scores the last checkpoint greedily.
#
#   bash benchmarks/gpu_snake.sh OUT_DIR            # the reported run (H100/H200)
#   STEPS10=65536 STEPS20=65536 CAP=60 EPISODES=16 \
#     EXTRA="--hidden-size 32 --num-envs 32 --save-freq 2 --eval-freq 4" bash benchmarks/gpu_snake.sh /tmp/x  # CPU dry run
set -uo pipefail
out=${1:?usage: gpu_snake.sh OUT_DIR}
mkdir -p "$out/runs"
steps10=${STEPS10:-30000000}
steps20=${STEPS20:-40000000}
cap=${CAP:-270}          # seconds of training per run (all four run at once)
episodes=${EPISODES:-1024}
read -r -a extra <<< "${EXTRA:-}"  # flags appended to every run (a CPU dry run shrinks the nets)
log="$out/log.txt"
say() { echo "== $(date +%T) $*" | tee -a "$log"; }

python3 -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$log"

wide10=(--preset snake-master --hidden-size 512 --num-hidden-layers 3 --num-envs 256
        --num-minibatches 8 --env-params food_shaping=0.5,food_shaping_decay=2
        --augment-symmetry --num-seeds 3 --total-timesteps "$steps10"
        --save-freq 46 --eval-freq 92 --run-dir "$out/runs")

# train NAME CAP ARGS...: time-boxed ppo-train; fine when it left a checkpoint (0: finished,
# 130: stopped at the box, 137: killed in its last chunk, the chunk before is saved)
train() {
    local name=$1 cap=$2; shift 2
    say "train $name (time box ${cap}s): ppo-train $*"
    local t0=$SECONDS
    timeout --preserve-status -s INT -k 60 "$cap" ppo-train "$@" "${extra[@]}" --run-name "$name" \
        > "$out/runs/$name.log" 2>&1
    local rc=$?
    mkdir -p "$out/runs/$name" && mv "$out/runs/$name.log" "$out/runs/$name/train.log"
    say "train $name: exit $rc after $((SECONDS - t0)) s; last line: $(grep '^update' "$out/runs/$name/train.log" | tail -1)"
    echo "$((SECONDS - t0))" > "$out/runs/$name/wall_clock_s.txt"
    [[ -f "$out/runs/$name/checkpoint.msgpack" ]]
}

evaluate() {  # evaluate NAME EPISODES [ppo-eval flags]
    local name=$1 n=$2; shift 2
    say "eval $name: ppo-eval --episodes $n $*"
    ppo-eval "$out/runs/$name" --episodes "$n" --json "$out/runs/$name/eval$n.json" "$@" \
        2>&1 | tee -a "$log" > "$out/runs/$name/eval.log"
}

pack() {  # everything but the checkpoint (tens of MB for the wide network)
    tar -C "$out/runs" --exclude checkpoint.msgpack -czf "$out/$1.tgz" "$1" && rm -rf "${out:?}/runs/$1"
}

job() {  # job NAME EPISODES EVAL_FLAGS -- TRAIN_ARGS...: train, evaluate, pack
    local name=$1 n=$2 flags=$3; shift 4
    # shellcheck disable=SC2086
    train "$name" "$cap" "$@" && evaluate "$name" "$n" $flags
    pack "$name"
}

export XLA_PYTHON_CLIENT_PREALLOCATE=false  # four processes share the GPU's memory
job wide_muon "$episodes" "" -- "${wide10[@]}" --optimizer muon &
job wide_adam "$episodes" "--gif none" -- "${wide10[@]}" --optimizer adam &
job master_adam "$episodes" "--gif none" -- --preset snake-master --optimizer adam --num-seeds 3 \
    --total-timesteps "$steps10" --run-dir "$out/runs" &
job snake20 64 "--gif none" -- --preset snake-master --env-kwargs width=20,height=20 \
    --env-params food_shaping=0.5,food_shaping_decay=1 --num-seeds 2 \
    --total-timesteps "$steps20" --eval-freq 0 --run-dir "$out/runs" &
wait
say "done"
