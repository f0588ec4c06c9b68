#!/usr/bin/env bash
# Sets up SpikeCode Bench on a fresh machine: a virtual environment with the project installed,
# and Fashion-MNIST. Idempotent: a second run only checks. Usage: scripts/setup.sh [--test]
#   --test   also installs what the test suite needs beyond the package (pytest, pytest-benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating the virtual environment .venv"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed${extras}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
    echo "setup: installing spikecode-bench${extras} (torch ${extras:+and test tools}; several minutes the first time)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extras}"
    # The round-trip libraries of `spikecode export` (benchmark/deploy/roundtrip.py), without their
    # dependencies: spikingjelly declares torchaudio, tensorboard and SciencePlots, which its NIR import
    # never loads (loguru is the one it needs); norse builds from its sdist (pure Python).
    .venv/bin/python -m pip install --quiet --no-deps spikingjelly==2.0.0 norse==1.1.0 loguru==0.7.3
    if [[ -n "$extras" ]]; then
        # NeuroBench is the reference the op counter is cross-checked against; its own pins (an
        # older torch, torchaudio for its datasets) would clash, and the tests import only its metrics.
        .venv/bin/python -m pip install --quiet --no-deps neurobench==2.3.0
    fi
    touch "$stamp"
fi
if [[ -n "$extras" ]] && ! command -v chromium > /dev/null && command -v apt-get > /dev/null && [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing Debian's chromium (the site test opens the leaderboard in it)"
    (apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }) > /dev/null
fi

# Fashion-MNIST, in this order: files already placed, Debian's package, a torchvision download.
debian_dir=/usr/share/datasets/fashion-mnist
placed_dir=datasets/fashion-mnist/raw
have_placed() { compgen -G "$placed_dir/train-images-idx3-ubyte*" > /dev/null; }
if [[ -d "$debian_dir" ]] || have_placed; then
    :
elif command -v apt-get > /dev/null && [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing Debian's dataset-fashion-mnist"
    (apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }) > /dev/null
elif .venv/bin/spikecode prepare fashion-mnist --download > /dev/null 2>&1; then
    echo "setup: downloaded Fashion-MNIST with torchvision"
else
    cat >&2 <<MSG
setup: Fashion-MNIST not found. Do one of:
  - sudo apt-get install dataset-fashion-mnist          (Debian/Ubuntu; files in $debian_dir)
  - place train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
    t10k-labels-idx1-ubyte.gz in $placed_dir/
  - run with network access, so torchvision can download them
MSG
    exit 1
fi
echo "setup: ready (activate with: source .venv/bin/activate)"
