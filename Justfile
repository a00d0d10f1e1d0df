# Longer recipes. `just` comes from npm: npm install -g rust-just
# Nothing required depends on it: every recipe is a plain command you can paste.

default:
    @just --list

# Build the binary into ./litcache
build:
    CGO_ENABLED=0 go build -o litcache ./cli/litcache

# The README's test command
test:
    go test ./...

# What CI runs (installs libopenblas0, libturbojpeg0, libnvrtc11.2 with apt when root)
ci:
    bash .ci/run

# Container image (Dockerfile): the static binary (-tags nonative) on distroless
# static, non-root. Push it where your cluster pulls from, e.g.
#   just docker registry.example.com/litcache:latest && docker push registry.example.com/litcache:latest
docker tag="litcache:latest":
    docker build -t {{tag}} --build-arg VERSION=$(git describe --always --dirty 2>/dev/null || echo dev) .

# The binary the Dockerfile builds, without docker: fully static, no native libraries
static:
    CGO_ENABLED=0 go build -trimpath -tags nonative -o litcache ./cli/litcache

# The whole flow on the embedded synthetic default
demo:
    go run ./cli/litcache demo

# Every figure of `litcache bench`, each with its same-run reference ratio
bench: build
    ./litcache bench

# Go micro-benchmarks of the hot paths
gobench:
    go test -run '^$' -bench . -benchmem ./internal/backend/ ./internal/tokenizer/ ./internal/imageproc/ ./store/

# Fuzz every parser of outside bytes for a while each
fuzz seconds="30":
    go test -run '^$' -fuzz FuzzOpen -fuzztime {{seconds}}s ./internal/safetensors/
    go test -run '^$' -fuzz FuzzTokenize -fuzztime {{seconds}}s ./internal/tokenizer/
    go test -run '^$' -fuzz FuzzDecode -fuzztime {{seconds}}s ./internal/imageproc/
    go test -run '^$' -fuzz FuzzReader -fuzztime {{seconds}}s ./internal/wds/
    go test -run '^$' -fuzz FuzzDamage -fuzztime {{seconds}}s ./internal/wds/
    go test -run '^$' -fuzz FuzzPart -fuzztime {{seconds}}s ./store/
    go test -run '^$' -fuzz FuzzMetadata -fuzztime {{seconds}}s ./store/
    go test -run '^$' -fuzz FuzzDecodeSample -fuzztime {{seconds}}s ./stages/extract/
    go test -run '^$' -fuzz FuzzGPUDecodable -fuzztime {{seconds}}s ./stages/extract/
    go test -run '^$' -fuzz FuzzFromBytes -fuzztime {{seconds}}s ./stages/bundle/
    go test -run '^$' -fuzz FuzzParseMeta -fuzztime {{seconds}}s ./stages/bundle/
    go test -run '^$' -fuzz FuzzWebPOrientation -fuzztime {{seconds}}s ./stages/bundle/
    go test -run '^$' -fuzz FuzzReadUpload -fuzztime {{seconds}}s ./stages/serve/

# GPU test binaries for a machine without Go (../shared/scripts/gpu-build.sh),
# plus the PyTorch peer, into .gpu/. On the GPU machine, in the repo root:
#   bash .gpu/run.sh                                  # parity tests
#   bash .gpu/run.sh -test.bench . -test.run '^$'     # GEMM ceiling, ViT-L/14
#   python3 .gpu/pytorch_peer.py                      # the peer, same GPU, same run
gpu:
    ../shared/scripts/gpu-build.sh ./cuda/...
    cp ../shared/peers/pytorch_peer.py .gpu/

# The prepared GPU check of issue 10: gzipped test binaries of ./cuda and
# ./cuda/towers, a static litcache, the report builder and the PyTorch peer
# into .gpu/ (about 30 MB), plus .gpu/check.sh. On the GPU machine, in the
# repository root (the device tool: carry [".gpu"], timeout 540):
#   bash .gpu/check.sh $OUT        # → $OUT/gpu-report.json, within 8 minutes
# Without a GPU the same command still writes the report, each GPU part failed
# with its reason (CHECK_SPECIES=2 CHECK_PER_SPECIES=20 keeps the data small).
# Build .gpu/ for the GPU check: then `bash .gpu/check.sh $OUT` on the GPU machine
gpu-check peer="../shared/peers/pytorch_peer.py":
    #!/usr/bin/env bash
    set -euo pipefail
    ex=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$ex")"
    grep -qxF '/.gpu/' "$ex" 2>/dev/null || echo '/.gpu/' >>"$ex"
    rm -rf .gpu && mkdir -p .gpu
    export CGO_ENABLED=0
    go test -c -ldflags='-s -w' -o .gpu/cuda.test ./cuda
    go test -c -ldflags='-s -w' -o .gpu/cuda_towers.test ./cuda/towers
    go test -c -ldflags='-s -w' -o .gpu/extract.test ./stages/extract
    go build -ldflags='-s -w' -o .gpu/litcache ./cli/litcache
    go build -ldflags='-s -w' -o .gpu/gpureport ./cuda/gpucheck
    gzip -9 .gpu/cuda.test .gpu/cuda_towers.test .gpu/extract.test .gpu/litcache .gpu/gpureport
    cp {{peer}} .gpu/pytorch_peer.py
    cp cuda/gpucheck/check.sh .gpu/check.sh
    du -sh .gpu && ls -l .gpu
    # The device call carries the working tree plus .gpu/, 64 MiB in all:
    # refuse well before that so a growing binary is noticed here, not there.
    tree=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s}')
    gpu=$(find .gpu -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
    total=$(( (tree + gpu) / 1048576 ))
    echo "device call carries ~${total} MiB (tree $((tree / 1048576)), .gpu $((gpu / 1048576))) of 64"
    [ "$total" -le 62 ] || { echo "gpu-check: ${total} MiB is too close to the device call's 64 MiB limit"; exit 1; }
