#!/usr/bin/env bash
# Install TinyGo for the device-subset tests (scripts/tinygo-test.sh).
#
# TinyGo is not packaged in Debian 12, and its release tarballs live on GitHub.
# This script uses only the Go module proxy and Debian packages: it downloads
# the pinned TinyGo module zip, builds the compiler against Debian's LLVM, and
# seeds TinyGo's library cache with Debian's prebuilt C libraries (the module
# zip lacks TinyGo's lib/ submodules: musl, picolibc, wasi-libc, compiler-rt,
# bdwgc). Takes ~3 minutes on 2 cores.
#
# Works for: host linux/amd64 (with -gc=precise; the default boehm GC needs
# lib/bdwgc sources), -target=wasip1 (runs under node >= 20 via a WASI runner
# installed here as target "wasip1-node"), wasm, wasm-unknown and
# cortex-m-qemu (tests run under qemu-system-arm).
#
# Never run `tinygo clean`: it deletes the seeded libraries.
#
# Usage: PREFIX=/opt/tinygo bash scripts/install-tinygo.sh [--no-arm]
# Adapted from the recipe in the team notes (shared/tools/install-tinygo.sh).
set -euo pipefail
TINYGO_VERSION=${TINYGO_VERSION:-v0.41.1}   # supports Go 1.19..1.26, LLVM 15..20
LLVM=${LLVM:-19}                             # Debian 12 ships llvm 14/15/16/19
PREFIX=${PREFIX:-/opt/tinygo}
WITH_ARM=1; [[ "${1:-}" == "--no-arm" ]] && WITH_ARM=0
# The caller's GOFLAGS (e.g. -mod=mod from the Makefile) must not leak into
# TinyGo's own module build.
unset GOFLAGS
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

SUDO=; [[ "$(id -u)" -ne 0 ]] && SUDO=sudo

installed() {
  [[ -x "$PREFIX/bin/tinygo" ]] || return 1
  "$PREFIX/bin/tinygo" version 2>/dev/null | grep -q " ${TINYGO_VERSION#v} " || return 1
  local c; c=$("$PREFIX/bin/tinygo" env GOCACHE) || return 1
  [[ -f "$c/musl-x86_64-unknown-linux-musleabihf-x86-64-v3/lib.a" ]] || return 1
  [[ -f "$c/wasi-libc-wasm32-unknown-wasi-generic/lib.a" ]] || return 1
  [[ -f "$PREFIX/targets/wasip1-node.json" ]] || return 1
  if ((WITH_ARM)); then
    [[ -f "$c/picolibc-thumbv7m-unknown-unknown-eabi-cortex-m3/lib.a" ]] || return 1
    command -v qemu-system-arm >/dev/null || return 1
  fi
}
if installed; then
  echo "tinygo ${TINYGO_VERSION} already installed in $PREFIX"; exit 0
fi

pkgs=(llvm-$LLVM-dev libclang-$LLVM-dev clang-$LLVM lld-$LLVM
      musl-dev wasi-libc libclang-rt-$LLVM-dev libclang-rt-$LLVM-dev-wasm32 binaryen)
((WITH_ARM)) && pkgs+=(picolibc-arm-none-eabi gcc-arm-none-eabi qemu-system-arm)
command -v node >/dev/null || pkgs+=(nodejs)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-tinygo: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# `go install pkg@version` fails: the proxy answers 403 for the module's
# version list (deprecation lookup), so download the pinned zip and build it
# in its own module (its go.mod/go.sum pin deps that the proxy serves).
go mod download "github.com/tinygo-org/tinygo@$TINYGO_VERSION"
src=$(go env GOMODCACHE)/github.com/tinygo-org/tinygo@$TINYGO_VERSION
$SUDO mkdir -p "$(dirname "$PREFIX")"
stage="$PREFIX.tmp.$$"
$SUDO rm -rf "$stage"; $SUDO mkdir -p "$stage"; $SUDO chown "$(id -u):$(id -g)" "$stage"
trap 'rm -rf "$stage"' EXIT
cp -r "$src/." "$stage/"; chmod -R u+w "$stage"
mkdir -p "$stage/bin" "$stage/src/net"      # src/net is a submodule (TinyGo's net fork); empty dir is enough unless you import net
(cd "$stage" && go build -tags="llvm$LLVM" -o "$stage/bin/tinygo" .)

# Emulator wrappers (no wasmtime here): node runs wasip1 and js/wasm binaries.
cat > "$stage/targets/run-wasip1-node.mjs" <<'EOF'
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
const wasi = new WASI({ version: 'preview1', args: process.argv.slice(2), env: {}, preopens: {} });
const mod = await WebAssembly.compile(await readFile(process.argv[2]));
process.exitCode = wasi.start(await WebAssembly.instantiate(mod, wasi.getImportObject()));
EOF
cat > "$stage/targets/run-wasm-node.cjs" <<'EOF'
globalThis.require = require; globalThis.fs = require("fs");
require(require("path").join(__dirname, "wasm_exec.js"));
const go = new Go();
WebAssembly.instantiate(fs.readFileSync(process.argv[2]), go.importObject)
  .then((r) => go.run(r.instance)).catch((e) => { console.error(e); process.exit(1); });
EOF
# features: drop +bulk-memory-opt/+call-indirect-overlong, which LLVM 19 doesn't know (warning spam)
F='"features":"+bulk-memory,+mutable-globals,+nontrapping-fptoint,+sign-ext,-multivalue,-reference-types"'
echo '{"inherits":["wasip1"],'"$F"',"emulator":"node --no-warnings {root}/targets/run-wasip1-node.mjs {}"}' > "$stage/targets/wasip1-node.json"
echo '{"inherits":["wasm"],'"$F"',"emulator":"node {root}/targets/run-wasm-node.cjs {}"}' > "$stage/targets/wasm-node.json"

$SUDO rm -rf "$PREFIX"; $SUDO mv "$stage" "$PREFIX"; trap - EXIT

# Seed TinyGo's library cache (names are compileopts.Config.LibraryPath for
# this TinyGo version: <lib>-<triple>-<cpu>[-v<libversion>]).
C=$("$PREFIX/bin/tinygo" env GOCACHE)
RT=/usr/lib/llvm-$LLVM/lib/clang/$LLVM/lib
seed() { mkdir -p "$C/$1"; cp "$2" "$C/$1/lib.a"; }
# host linux/amd64: Debian musl 1.2.3 + compiler-rt builtins
seed musl-x86_64-unknown-linux-musleabihf-x86-64-v3 /usr/lib/x86_64-linux-musl/libc.a
cp /usr/lib/x86_64-linux-musl/crt1.o "$C/musl-x86_64-unknown-linux-musleabihf-x86-64-v3/crt1.o"
ln -sfn /usr/include/x86_64-linux-musl "$C/musl-x86_64-unknown-linux-musleabihf-x86-64-v3/include"
seed compiler-rt-x86_64-unknown-linux-musleabihf-x86-64 "$RT/linux/libclang_rt.builtins-x86_64.a"
# wasip1 / wasm(js): Debian wasi-libc (2022) + wasm32 builtins
seed wasi-libc-wasm32-unknown-wasi-generic /usr/lib/wasm32-wasi/libc.a
ln -sfn /usr/include/wasm32-wasi "$C/wasi-libc-wasm32-unknown-wasi-generic/include"
seed compiler-rt-wasm32-unknown-wasi-generic "$RT/wasi/libclang_rt.builtins-wasm32.a"
# wasm-unknown: mem* from wasi-libc's libc.a, builtins as above
seed wasmbuiltins-wasm32-unknown-unknown-mvp /usr/lib/wasm32-wasi/libc.a
seed compiler-rt-wasm32-unknown-unknown-mvp "$RT/wasi/libclang_rt.builtins-wasm32.a"
if ((WITH_ARM)); then
  # cortex-m3 (cortex-m-qemu): Debian picolibc + arm-none-eabi libgcc. Debug info
  # must go (TinyGo's stack-size analysis can't parse .debug_frame v1), and
  # libgcc's unwinder must go (needs __exidx_* which TinyGo's linker script lacks).
  P=$C/picolibc-thumbv7m-unknown-unknown-eabi-cortex-m3; mkdir -p "$P"
  llvm-strip-$LLVM --strip-debug -o "$P/lib.a" /usr/lib/picolibc/arm-none-eabi/lib/release/thumb/v7-m/nofp/libc.a
  ln -sfn /usr/lib/picolibc/arm-none-eabi/include "$P/include"   # only matters for cgo
  R=$C/compiler-rt-thumbv7m-unknown-unknown-eabi-cortex-m3; mkdir -p "$R"
  llvm-strip-$LLVM --strip-debug -o "$R/lib.a" "$(ls /usr/lib/gcc/arm-none-eabi/*/thumb/v7-m/nofp/libgcc.a | head -1)"
  llvm-ar-$LLVM d "$R/lib.a" unwind-arm.o libunwind.o pr-support.o
fi
"$PREFIX/bin/tinygo" version
