# The ccctl image: the static ccctl binary on an empty base. It needs no
# registry and no build tools inside docker. Build the binary first, then the
# image, from the repository's root (docs/containers.md):
#
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=v1.2.3" -o bin/ccctl ./cmd/ccctl
#   docker build -t ccctl .
#
# (-X main.version stamps the version ccctl version prints; .dockerignore
# keeps everything but bin/ccctl out of the build context.)
#
# Use it to copy ccctl into your own images:
#
#   COPY --from=ccctl /usr/local/bin/ccctl /usr/local/bin/ccctl
#   ENTRYPOINT ["ccctl", "run", "--"]
#
# or run its own commands, e.g. docker run --rm ccctl version.
FROM scratch
COPY bin/ccctl /usr/local/bin/ccctl
ENV PATH=/usr/local/bin:/usr/bin:/bin
ENTRYPOINT ["/usr/local/bin/ccctl"]
CMD ["--help"]
