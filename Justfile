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
