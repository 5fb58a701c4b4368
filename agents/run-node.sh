#!/usr/bin/env bash
# One sweeper agent container per GPU of this node, each pinned to its GPU.
#
#   agents/run-node.sh SWEEP [--image IMG] [--gpus 0,1,...] [--cpu N] [--store VOL_OR_DIR]
#                            [--data DIR] [--name PREFIX] [-- extra `sweeper agent` options]
#
# SWEEP: entity/project/sweep_id (W&B; WANDB_API_KEY is passed from this shell's environment)
# or a local sweep id whose store is the --store volume, or a PostgreSQL server every node
# shares: --store postgresql://USER@HOST:PORT/DB (PGPASSWORD is passed from this shell's
# environment, never in the URL; run files go to the volume PREFIX-runs). GPUs: --gpus, else
# every GPU that `nvidia-smi -L` lists; --cpu N starts N GPU-less agents instead (CPU nodes).
# Restart policy on-failure:3: a bad sweep id or store exits 2 and stays down, visibly.
set -euo pipefail

usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,3\}//' >&2
    exit 2
}
die() {
    echo "run-node.sh: $*" >&2
    exit 2
}

[[ $# -ge 1 && "$1" != -* ]] || usage
sweep="$1"
shift
image="${SWEEPER_IMAGE:-sweeper-agent:latest}" gpus="" cpu=0 store="sweeper-store" data=""
prefix="sweeper"
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --image) image="${2:?--image needs a value}" && shift ;;
        --gpus) gpus="${2:?--gpus needs a value}" && shift ;;
        --cpu) cpu="${2:?--cpu needs a value}" && shift ;;
        --store) store="${2:?--store needs a value}" && shift ;;
        --data) data="${2:?--data needs a value}" && shift ;;
        --name) prefix="${2:?--name needs a value}" && shift ;;
        --) shift && extra=("$@") && break ;;
        *) usage ;;
    esac
    shift
done
[[ "$cpu" =~ ^[0-9]+$ ]] || die "--cpu: expected a number of agents, got '$cpu'"

if [[ "$cpu" -eq 0 && -z "$gpus" ]]; then
    command -v nvidia-smi >/dev/null || die "no nvidia-smi on this node: pass --gpus 0,1 or --cpu N"
    gpus="$(nvidia-smi -L | sed -n 's/^GPU \([0-9]\+\):.*/\1/p' | paste -sd, -)"
    [[ -n "$gpus" ]] || die "nvidia-smi -L lists no GPU: pass --gpus 0,1 or --cpu N"
fi

common=(
    --detach --init --restart on-failure:3 --stop-timeout 30
    --env WANDB_API_KEY --env WANDB_BASE_URL --env WANDB_ENTITY --env WANDB_PROJECT
)
case "$store" in
    postgresql://* | postgres://*)
        # `docker inspect` shows a container's environment: the password travels as PGPASSWORD.
        if [[ "${store#*://}" =~ ^[^/@]*:[^/@]*@ || "$store" =~ [?\&]password= ]]; then
            die "--store: a password in the URL; pass it as PGPASSWORD instead"
        fi
        common+=(--env "SWEEPER_STORE=$store" --env PGPASSWORD)
        common+=(--volume "$prefix-runs:/work/.sweeper")
        ;;
    *)
        # A path is bind-mounted (it must be writable by the image's uid 10001); a name is a
        # volume.
        [[ "$store" == */* ]] && store="$(realpath -- "$store")"
        common+=(--volume "$store:/store")
        ;;
esac
[[ -n "$data" ]] && common+=(--volume "$(realpath -- "$data"):/work/data:ro")
tag="$(printf '%s' "$sweep" | tr -c 'a-zA-Z0-9_.-' '-' | tail -c 40)"

start() { # name, docker options..., then -- and the agent's options
    local name="$1" id
    shift
    local opts=()
    while [[ "$1" != -- ]]; do opts+=("$1") && shift; done
    shift
    id="$(docker run "${common[@]}" "${opts[@]}" --name "$name" "$image" "$sweep" "$@" "${extra[@]}")"
    echo "started $name (${id:0:12})"
}

if [[ "$cpu" -gt 0 ]]; then
    for ((i = 0; i < cpu; i++)); do
        start "$prefix-$tag-cpu$i" -- --gpus ""
        echo "  agent $i on CPU, sweep $sweep, store $store"
    done
else
    IFS=, read -ra ids <<<"$gpus"
    for gpu in "${ids[@]}"; do
        # The container sees only its GPU, as device 0.
        start "$prefix-$tag-gpu$gpu" --gpus "device=$gpu" -- --gpus 0
        echo "  agent on GPU $gpu, sweep $sweep, store $store"
    done
fi
echo "logs: docker logs -f NAME; stop (trials are requeued): docker stop NAMES"
