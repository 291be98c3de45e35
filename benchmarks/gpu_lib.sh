# Helpers shared by the time-boxed GPU study scripts (gpu_snake.sh, gpu_minatar.sh); sourced.
# Every run is time-boxed, for GPU time that comes in slots of a few minutes: SIGINT at the box
# makes the trainer finish its running chunk and save a checkpoint (exit 130), and `ppo-eval`
# scores the last checkpoint greedily. Several runs share the one GPU side by side: each alone is
# latency-bound and leaves it mostly idle.
#
# To keep the outputs as one file, run the scripts on a scratch folder and archive it, e.g.
#   (bash benchmarks/gpu_snake.sh /tmp/s/snake & bash benchmarks/gpu_minatar.sh /tmp/s/minatar & wait)
#   tar -C /tmp/s -cf study.tar .
#
# Expects: $out (the output folder), $cap (seconds of training per run), the array $extra
# (flags appended to every ppo-train, e.g. to shrink networks for a CPU dry run).

mkdir -p "$out/runs"
log="$out/log.txt"
say() { echo "== $(date +%T) $*" | tee -a "$log"; }
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # the side-by-side processes share the GPU's memory

# train NAME ARGS...: time-boxed ppo-train; fine when it left a checkpoint (0: finished,
# 130: stopped at the box, 137: killed in its last chunk, the chunk before is saved)
train() {
    local name=$1; shift
    say "train $name (time box ${cap}s): ppo-train $*"
    local t0=$SECONDS
    timeout --preserve-status -s INT -k 60 "$cap" ppo-train "$@" "${extra[@]}" --run-name "$name" \
        --run-dir "$out/runs" > "$out/runs/$name.log" 2>&1
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

pack() {  # PACK_MAX_KB: keep checkpoints up to this size (the wide networks' are tens of MB)
    local ckpt="$out/runs/$1/checkpoint.msgpack" keep=()
    if [[ -f $ckpt ]] && (( $(du -k "$ckpt" | cut -f1) > ${PACK_MAX_KB:-2048} )); then
        keep=(--exclude checkpoint.msgpack)
    fi
    tar -C "$out/runs" "${keep[@]}" -czf "$out/$1.tgz" "$1" && rm -rf "${out:?}/runs/$1"
}

job() {  # job NAME EPISODES EVAL_FLAGS -- TRAIN_ARGS...: train, evaluate, pack
    local name=$1 n=$2 flags=$3; shift 4
    # shellcheck disable=SC2086
    train "$name" "$@" && evaluate "$name" "$n" $flags
    pack "$name"
}
