# The image deploy/kubernetes runs (prewarm:0.1.0). Build the binary first,
# on a machine like the image (Debian 13, glibc):
#   cargo build --profile dist -p prewarm
#   docker build -t prewarm:0.1.0 .
# rclone lists the sources; ffmpeg/ffprobe are there for the media commands.
FROM debian:trixie-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates rclone ffmpeg \
 && rm -rf /var/lib/apt/lists/*
COPY target/dist/prewarm /usr/local/bin/prewarm
# A fixed non-root user, as the manifests' runAsUser.
USER 65532:65532
ENV PREWARM_CACHE_DIR=/tmp/prewarm-cache HOME=/tmp
ENTRYPOINT ["prewarm"]
CMD ["--help"]
