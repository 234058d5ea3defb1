#!/usr/bin/env bash
# Build llama.cpp's own server, `llama-server` (OpenAI-compatible, requests queued or batched over parallel slots),
# into .venv/bin, from the llama.cpp sources that PyPI's llama-cpp-python sdist ships (PyPI is the only network this
# needs). About 5 minutes on 2 cores, once; a working binary already there is kept.
# The native build crashes on these CPUs (its AMX code paths), so the instruction sets are named from what this
# CPU has instead of -march=native.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}   # pinned: the server's build is part of a served model's identity
target=.venv/bin/llama-server
stamp="$target.source"   # which sdist it was built from: another pin rebuilds it
[ -x .venv/bin/python ] || { echo "llama-server.sh: no .venv (run scripts/setup.sh)" >&2; exit 1; }
if [ -x "$target" ] && "$target" --version >/dev/null 2>&1 && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq cmake g++ make >/dev/null
  else echo "llama-server.sh: cmake, g++ and make are needed (sudo apt-get install cmake g++ make)" >&2; exit 1; fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "llama-server.sh: building llama.cpp's llama-server $VERSION into $target (once; about 5 minutes on 2 free cores)"
run_step "downloading the llama-cpp-python $VERSION sources from PyPI" "$work/download.log" \
  .venv/bin/python -m pip download --disable-pip-version-check --no-deps \
  --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d "$work"
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
cpu=(-DGGML_NATIVE=OFF)
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C avx512f:AVX512 avx512_vnni:AVX512_VNNI avx_vnni:AVX_VNNI; do
  if [[ " $flags " == *" ${pair%%:*} "* ]]; then cpu+=("-DGGML_${pair#*:}=ON"); fi
done
run_step "configuring (cmake; ${cpu[*]})" "$work/cmake.log" \
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release "${cpu[@]}" -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF
run_step "compiling llama-server with $(nproc) jobs (the long part: minutes; longer on a busy machine)" \
  "$work/build.log" cmake --build "$work/build" --target llama-server -j "$(nproc)"
install -m 0755 "$work/build/bin/llama-server" "$target"
echo "$VERSION" >"$stamp"
version=$("$target" --version 2>&1 || true)
printf 'llama-server: %s\n' "$(printf '%s\n' "$version" | grep '^version' | head -n 1 || true)"
