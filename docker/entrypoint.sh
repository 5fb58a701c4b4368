#!/usr/bin/env bash
# `sweeper agent "$@"` after a pre-flight check. A container that cannot work (GPUs asked for
# but none visible, a store folder this uid cannot write, a PostgreSQL URL holding its password)
# says so in one line and exits 2, instead of training on the CPU by surprise or dying in a
# SQLite traceback.
set -euo pipefail

die() {
    echo "sweeper-agent: $*" >&2
    exit 2
}

sweep="" store="${SWEEPER_STORE:-.sweeper/sweeper.db}" gpus=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    arg="${args[i]}" next="${args[i + 1]:-}"
    case "$arg" in
        --store) store="$next" ;;
        --store=*) store="${arg#--store=}" ;;
        --gpus) gpus="$next" ;;
        --gpus=*) gpus="${arg#--gpus=}" ;;
        -h | --help) exec sweeper agent --help ;;
        --*) ;;
        *) if [[ -z "$sweep" ]]; then sweep="$arg"; fi ;;
    esac
    # Options of `sweeper agent` that take a value: skip the value.
    case "$arg" in
        --store | --gpus | --count | --wandb | --heartbeat-timeout | --grace | --threads | \
            --backend | --outage-limit | --trial-timeout)
            i=$((i + 1))
            ;;
    esac
done
[[ -n "$sweep" ]] || die "no sweep given: docker run IMAGE SWEEP [--gpus 0] [--backend wandb]"

if [[ -n "${gpus//[ ,]/}" ]]; then
    # The NVIDIA runtime mounts nvidia-smi and the device nodes; without it there is no GPU.
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
        die "--gpus $gpus: no NVIDIA GPU is visible in this container" \
            "(start it with \`docker run --gpus ...\` on a host with the NVIDIA Container Toolkit)"
    fi
fi

case "$store" in
    postgresql://* | postgres://*)
        # A database server: the password comes from PGPASSWORD (or ~/.pgpass), never the URL,
        # which `docker inspect` and the process list show.
        if [[ "${store#*://}" =~ ^[^/@]*:[^/@]*@ || "$store" =~ [?\&]password= ]]; then
            die "--store: a password in the URL; pass it as PGPASSWORD instead"
        fi
        # Run files and wandb folders go to ./.sweeper (mount a volume at $PWD/.sweeper).
        dir="$PWD/.sweeper"
        mkdir -p -- "$dir" 2>/dev/null || true
        [[ -w "$dir" ]] || die "run folder $dir is not writable by uid $(id -u) (mount a" \
            "volume there, owned by $(id -u))"
        ;;
    *)
        # Both backends write here: the local store, and every run's files and wandb folder.
        dir="$(dirname -- "$store")"
        [[ -d "$dir" ]] || die "store folder $dir does not exist (mount the store volume at $dir)"
        if [[ ! -w "$dir" || (-e "$store" && ! -w "$store") ]]; then
            die "store $store is not writable by uid $(id -u) (on the host: chown -R $(id -u)" \
                "on the volume, or run with --user matching its owner)"
        fi
        ;;
esac

exec sweeper agent "$@"
