# A stand-in for the redis:7-bookworm image of docker-compose.yml where no
# container registry is reachable (deploy/check-image.sh builds it on the
# debian:bookworm-slim base it makes, and passes it as REDIS_IMAGE): Debian
# 12's redis-server 7.0, which the image runs as user redis in /data, with
# protected mode off, as the official image does (other containers on the
# Compose network are its clients; the network is the boundary).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data
WORKDIR /data
USER redis
# Compose's `command` replaces CMD; the entrypoint appends the option.
ENTRYPOINT ["sh", "-c", "exec \"$@\" --protected-mode no", "redis-entrypoint"]
CMD ["redis-server"]
EXPOSE 6379
