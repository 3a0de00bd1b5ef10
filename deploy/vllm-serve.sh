#!/usr/bin/env bash
# Serve the Bastion model with vLLM's OpenAI-compatible server on the GPU host (not the bot host).
# Reference deployment (SPEC §8): Qwen2.5-32B-Instruct fine-tune, tensor parallelism 4 on 4x 32 GB GPUs.
# Usage: MODEL=/models/bastion-32b-merged ./deploy/vllm-serve.sh   (extra args are passed to vLLM)
set -euo pipefail

MODEL="${MODEL:?set MODEL to the merged model directory or hub id}"
SERVED_NAME="${SERVED_NAME:-bastion}"        # must match BASTION_MODEL__ANALYST_MODEL / RISK_MODEL
PORT="${PORT:-8000}"
TP="${TP:-4}"

args=(
    "$MODEL"
    --served-model-name "$SERVED_NAME"
    --host 0.0.0.0 --port "$PORT"
    --tensor-parallel-size "$TP"
    --max-model-len 8192
    --gpu-memory-utilization 0.85
    --max-num-seqs 64
    --enable-auto-tool-choice --tool-call-parser hermes   # the analyst agent calls tools
    --dtype bfloat16
)
if [[ -n "${VLLM_API_KEY:-}" ]]; then
    args+=(--api-key "$VLLM_API_KEY")                     # then set BASTION_MODEL__API_KEY to the same
fi
exec vllm serve "${args[@]}" "$@"
