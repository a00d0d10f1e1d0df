# litcache in a container: one fully static binary on distroless static,
# running as a non-root user. Build it with `just docker` or
#
#   docker build -t litcache:latest --build-arg VERSION=$(git describe --always --dirty) .
#
# -tags nonative leaves out the run-time loading of native libraries (purego),
# which needs the system's libc and dynamic loader; without it the binary links
# nothing and runs on an image with no libc. The image therefore runs the
# pure-Go paths: litcache's own AVX-512/AVX2 GEMM, the pure-Go JPEG decoder and
# the CPU backend (no OpenBLAS, libjpeg-turbo or GPU; `litcache doctor` in the
# container says so).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -tags nonative \
      -ldflags "-s -w -X github.com/litcache/litcache/cli.Version=${VERSION}" \
      -o /out/litcache ./cli/litcache

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/litcache /usr/local/bin/litcache
# distroless's nonroot user (uid 65532); give it write access to the volumes
# (Kubernetes: securityContext.fsGroup: 65532).
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/litcache"]
CMD ["--help"]
