#!/usr/bin/env bash
# Installs what sqz needs: Debian's packages, and onnxruntime-node from the npm registry into
# third_party/ (a peer of `sqz bench`). Idempotent: does nothing when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-pthread
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libutf8proc-dev libpcre2-dev
  libsentencepiece-dev libgtest-dev libbenchmark-dev
  python3-onnx python3-numpy
)
# Node.js runs ONNX Runtime (npm onnxruntime-node), a peer of `sqz bench`; Debian's if none is there.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
else
  echo "install_deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for `sqz bench`, project-local (third_party/, not committed). --ignore-scripts: the
# package's install script only fetches GPU providers from nuget.org, which these machines cannot
# reach; the CPU library ships in the package. Optional: the bench says so when it is absent.
ORT_VERSION=1.30.0
ORT_DIR=third_party/onnxruntime
if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ]; then
  echo "install_deps: installing onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  npm install --prefix "$ORT_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$ORT_VERSION" \
    || echo "install_deps: onnxruntime-node could not be installed; sqz bench will skip the ONNX Runtime peer"
fi
