#!/usr/bin/env bash
# Compile mmcv 2.1.0 with CUDA ops on the GPU machine from the source archive in .whl/ and install
# it into SITE (check.sh --build-mmcv). MAX_JOBS defaults to 16, TORCH_CUDA_ARCH_LIST to 9.0 (H200).
# torch >= 2.10 headers need C++20 while mmcv 2.1.0 asks for C++17: thin compiler wrappers upgrade
# the flag (the same fix tools/setup_env.sh applies).
set -Eeuo pipefail
SITE=$1
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-python3}
SRC=$(ls "$REPO"/.whl/mmcv-2.1.0.tar.gz)
BIN=$(mktemp -d)
for pair in "cxx20:${CXX:-c++}" "nvcc20:${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"; do
  name=${pair%%:*} real=${pair#*:}
  cat >"$BIN/$name" <<W
#!/usr/bin/env bash
args=()
for a in "\$@"; do case "\$a" in -std=c++14|-std=c++17) args+=("-std=c++20");; *) args+=("\$a");; esac; done
exec "$real" "\${args[@]}"
W
  chmod +x "$BIN/$name"
done
export CXX=$BIN/cxx20 PYTORCH_NVCC=$BIN/nvcc20 MMCV_WITH_OPS=1 FORCE_CUDA=1
export MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
"$PY" -m pip wheel -v --no-deps --no-build-isolation --no-index "$SRC" -w "$BIN/wheel"
"$PY" -m pip install --no-index --no-deps --target "$SITE" "$BIN"/wheel/mmcv-*.whl
