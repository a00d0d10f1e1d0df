#!/bin/bash
# litcache's prepared GPU check (issue 10): `just gpu-check` builds .gpu/ and
# copies this script there. On the GPU machine (CUDA, nvcc, PyTorch; no Go),
# in the repository root:
#
#     bash .gpu/check.sh [OUTDIR]        # writes OUTDIR/gpu-report.json (default: .)
#                                        # and OUTDIR/gpu-logs.tar.gz (every part's log)
#
# Parts, each time-boxed and each run whatever happened to the others:
#   card          nvidia-smi: the GPU, driver, memory
#   e2e_data      (in the background from the start, CPU only) synthetic 500 px
#                 iNat-like JPEG shards made by `litcache caption --synthetic`
#   cuda_tests    every test of ./cuda on the GPU (parity of every op in float32
#                 and bf16, self-check at ViT-L shapes, attention, nvJPEG, NVRTC)
#   towers_tests  ./cuda/towers: clip-tiny image tower against the fixture, text
#                 gradients against the CPU, the DINOv2 and Swin fixtures' pooled
#                 embeddings (bf16 within 2e-2); the GPU LiT trainer (issue 11,
#                 TestTrain*): trajectory parity with the training fixture
#                 (float32 1e-4 per tensor, the bf16 loss curve 1e-2), agreement
#                 with the CPU trainer, memory after step 10 = after step 2,
#                 CUDA graphs against direct launches, out-of-memory errors
#   extract_tests ./stages/extract's GPU tests on the GPU: the key-correspondence
#                 check in bf16 through both GPU paths (issue 17.1), --decode gpu
#                 against --decode cpu with PNG/CMYK/cut images, --decode choices
#   benchmarks    GEMM ceiling (random data), ViT-L/14 tower (fused, unfused
#                 ablation, host pixels), attention flash vs GEMM path,
#                 DINOv2-B/14 and Swin-T towers (BenchmarkTowerGPU)
#   train_bench   the LiT step (issue 11, BenchmarkLiT): 12×512 text tower,
#                 batch 4096, bf16, iNat-like captions, token rows of 32 and 77,
#                 CUDA graphs on/off and trimming off (ablations), batch 16384
#                 (must fit); samples/s, TFLOP/s, peak device memory
#   peer          the PyTorch peer (GEMM, HF ViT-L/14 eager and torch.compile,
#                 LiT step, zero-shot) on the same GPU in the same run
#   e2e_extract_gpu, e2e_extract_cpu
#                 litcache extract --device cuda over the synthetic shards with
#                 --decode gpu (nvJPEG), then --decode cpu (uint8 views uploaded):
#                 images/s over the wall and over the pipeline (without start-up)
# then .gpu/gpureport turns the logs into one JSON report. The time boxes
# sum to under 8 minutes (CAP_* variables override them): 10 + 175 (e2e_data's
# 140 in the background under cuda_tests 85 + towers_tests 75 + extract_tests
# 15) + 90 + 50 + 105 + 25 + 25 = 480 s. Each extract part needs ≈ 5 s to build
# random ViT-L weights, then 12,000 images at 2,500–3,400 images/s. To add a
# part: one `part NAME CAP command...` line below,
# and its comparisons in cuda/gpucheck/report.go.
set -u
root=$(pwd)
g="$root/.gpu"
out=${1:-.}
mkdir -p "$out" && out=$(cd "$out" && pwd)
work=${LITCACHE_CHECK_WORK:-/tmp/litcache-gpucheck}
rm -rf "$work" && mkdir -p "$work/logs" "$work/bin"
: "${CAP_CARD:=10}" "${CAP_DATA:=140}" "${CAP_CUDA_TESTS:=85}" "${CAP_TOWERS_TESTS:=75}" "${CAP_EXTRACT_TESTS:=15}"
: "${CAP_BENCHMARKS:=90}" "${CAP_TRAIN_BENCH:=50}" "${CAP_PEER:=105}" "${CAP_EXTRACT_GPU:=25}" "${CAP_EXTRACT_CPU:=25}"
: "${CHECK_SPECIES:=12}" "${CHECK_PER_SPECIES:=1000}"
printf 'start\t%s\n' "$(date +%s%N)" >"$work/parts.tsv"

# The binaries travel gzipped (the whole of .gpu/ stays small).
for f in "$g"/*.gz; do
  [ -e "$f" ] || continue
  b="$work/bin/$(basename "$f" .gz)"
  gunzip -c "$f" >"$b" && chmod +x "$b"
done
export LITCACHE_CUBIN_CACHE="$work/cubin" LITCACHE_REQUIRE_GPU=1 PYTHONUNBUFFERED=1

# part NAME CAP COMMAND...: run COMMAND with a time box of CAP seconds,
# output to logs/NAME.log, and a line "NAME rc milliseconds cap" in parts.tsv.
part() {
  local name=$1 cap=$2
  shift 2
  local t0 t1
  t0=$(date +%s%N)
  echo "== $name (time box ${cap}s): $*" >&2
  timeout -k 5 "$cap" "$@" >"$work/logs/$name.log" 2>&1
  local rc=$?
  t1=$(date +%s%N)
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(((t1 - t0) / 1000000))" "$cap" >>"$work/parts.tsv"
  echo "   $name: exit $rc" >&2
}

part card "$CAP_CARD" nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader

syn="$work/syn"
part e2e_data "$CAP_DATA" "$work/bin/litcache" caption --synthetic "$syn" --species "$CHECK_SPECIES" \
  --train-per-species "$CHECK_PER_SPECIES" --val-per-species 1 --image-size 500 --out "$syn/shards/train" \
  --per-shard 1000 &
data_pid=$!

part cuda_tests "$CAP_CUDA_TESTS" bash -c "cd '$root/cuda' && exec '$work/bin/cuda.test' -test.v -test.count=1"
part towers_tests "$CAP_TOWERS_TESTS" bash -c "cd '$root/cuda/towers' && exec '$work/bin/cuda_towers.test' -test.v -test.count=1 -test.run Test"
part extract_tests "$CAP_EXTRACT_TESTS" bash -c "cd '$root/stages/extract' && exec '$work/bin/extract.test' -test.v -test.count=1 -test.run '^(TestGPU|TestRowsAreTheirImagesGPU|TestDecodeChoice)'"
wait "$data_pid" # the benchmarks get the CPU to themselves

part benchmarks "$CAP_BENCHMARKS" bash -c "cd '$root/cuda/towers' && exec '$work/bin/cuda_towers.test' -test.run '^\$' -test.bench 'GEMMBF16|ViTL14|TowerGPU' -test.benchtime 1s -test.v"
part train_bench "$CAP_TRAIN_BENCH" bash -c "cd '$root/cuda/towers' && exec '$work/bin/cuda_towers.test' -test.run '^\$' -test.bench '^BenchmarkLiT\$' -test.benchtime 1x -test.v"
part peer "$CAP_PEER" env OUT="$work" COMPILE=1 python3 "$g/pytorch_peer.py"
# extract over all the shards, decoding on the GPU, then on the CPU; each
# prints its steady rate (the pipeline, without start-up) beside the wall's.
# Batches of 256, as BenchmarkViTL14 and the peer measure the tower.
all=$(ls "$syn/shards/train/"*.tar 2>/dev/null | paste -sd, -)
for dec in gpu cpu; do
  cap=CAP_EXTRACT_${dec^^}
  part "e2e_extract_$dec" "${!cap}" "$work/bin/litcache" extract --shards "${all:-$syn/none.tar}" \
    --model ViT-L-14 --weights random:1 --cache "$work/cache-$dec" --device cuda --decode "$dec" --batch-size 256 --quiet
done

printf 'end\t%s\n' "$(date +%s%N)" >>"$work/parts.tsv"
if ! "$work/bin/gpureport" -work "$work" -out "$out/gpu-report.json"; then
  # gpureport itself is missing or broke: still one well-formed report
  printf '{"schema":1,"error":"gpureport failed or is missing; logs in %s","parts":{}}\n' "$work" >"$out/gpu-report.json"
fi
# the raw logs beside the report, for when a part failed
tar -czf "$out/gpu-logs.tar.gz" -C "$work" logs parts.tsv $(cd "$work" && ls baseline.json 2>/dev/null) 2>/dev/null
echo "report: $out/gpu-report.json (logs: $out/gpu-logs.tar.gz)" >&2
