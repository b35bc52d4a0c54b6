#!/usr/bin/env bash
# kiln developer entry point.
#   scripts/dev.sh demo    install what is missing, build, run the demo
#   scripts/dev.sh test    install what is missing, build (warnings as errors), run every test suite,
#                          the sanitizer build, the export/ABI checks and the install check
#   scripts/dev.sh bench   install what is missing, build optimised, run issue 10's suite: every workload
#                          in kiln and in PyTorch, interleaved, printed as one table (see cmd_bench)
# Builds are incremental: build/ (release), build-asan/ (ASan+UBSan), build-tsan/ (TSan, stress tests
# only), build-fuzz/ (clang libFuzzer targets, fuzz/; KILN_FUZZ_SECONDS per target, default 20),
# build-install-check/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${KILN_JOBS:-2}"
PY=/usr/bin/python3

# ocl-icd-opencl-dev: only a Recommends of libdnnl-dev, but dnnl-config.cmake requires OpenCL.
# libsleef-dev, libhwy-dev: vector math and runtime-dispatched SIMD for kiln's elementwise loops.
# nlohmann-json3-dev: the JSON value behind kiln_config (header-only, used inside the library only).
# libleveldb-dev: LevelDB tables, the .index files of TensorFlow-format checkpoints (src/io/bundle.cc).
# libpng-dev: the PNG images of TensorBoard image summaries (src/io/png.cc).
# libfarmhash-dev, libhighwayhash-dev: TF's string hashes (FarmHash's Fingerprint64, HighwayHash's SipHash)
# behind the Hashing layer and IntegerLookup's "farmhash" OOV buckets (src/layers/lookup_layers.cc).
# libopenmpi-dev, openmpi-bin: libkiln_mpi.so, data-parallel training over MPI (src/distributed), and
# mpirun for its tests and the distributed demo.
BUILD_PKGS=(cmake g++ make pkg-config ccache libdnnl-dev ocl-icd-opencl-dev libprotobuf-dev protobuf-compiler zlib1g-dev
  libsleef-dev libhwy-dev nlohmann-json3-dev libleveldb-dev libpng-dev libfarmhash-dev libhighwayhash-dev
  libopenmpi-dev openmpi-bin)
# dataset-fashion-mnist: the example tests train the demo briefly on it (they skip without it).
TEST_PKGS=(libgtest-dev libbenchmark-dev python3 python3-numpy abigail-tools binutils dataset-fashion-mnist)
# python3-torch and libtorch-dev: the PyTorch peers (libtorch-dev for W2's C++ peer).
BENCH_PKGS=(libbenchmark-dev python3 dataset-fashion-mnist python3-torch libtorch-dev)
# Fashion-MNIST for the demo (/usr/share/datasets/fashion-mnist); python3-numpy for its Python form.
DEMO_PKGS=(dataset-fashion-mnist python3 python3-numpy)
# The fuzz targets (fuzz/): clang 14 with libFuzzer and the sanitizer runtimes (libclang-rt-14-dev),
# and LLVM's OpenMP, which clang's -fopenmp needs (kiln's core uses OpenMP).
FUZZ_PKGS=(clang-14 libclang-rt-14-dev libomp-14-dev)

log() { printf '\n==> %s\n' "$*"; }

ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
  else
    echo "kiln needs these Debian packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

# ccache keeps rebuilds (and the sanitizer builds, which share sources) cheap; paths are
# made relative to the checkout so clones in other folders hit the same cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
# With -g (the sanitizer builds, the C ABI's boundary files) ccache also hashes the working
# directory, which differs in every clone; leave it out, so a fresh clone of CI hits the cache too
# (debug info then names the folder of the build that filled the cache).
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

# -D<option>=OFF for a build folder whose cache does not have the option yet, else nothing: the
# demo and the benchmarks leave the tests (and the demo the benchmarks) as an earlier command
# configured them, so that a plain `cmake --build build` afterwards still builds them (the
# packages they need are there, since that command installed them).
off_unless_cached() {  # off_unless_cached <dir> <option>
  grep -q "^$2:" "$1/CMakeCache.txt" 2>/dev/null || echo "-D$2=OFF"
}

configure() {  # configure <dir> [cmake args...]
  local dir="$1"
  shift
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "$@" >/dev/null
}

# scripts/dev.sh demo [cpp|c|python|cpp-tape|c-tape|python-tape|mpi|python-mpi] [--epochs N ...]: the
# Fashion-MNIST demo (examples/fashion_mnist), C++ with fit by default; the -tape forms train with a
# GradientTape loop; mpi and python-mpi run the fit demo data-parallel under `mpirun -np ${KILN_NP:-2}`.
cmd_demo() {
  local variant=cpp
  case "${1:-}" in cpp | c | python | cpp-tape | c-tape | python-tape | mpi | python-mpi) variant="$1"; shift ;; esac
  local mpirun=(mpirun --oversubscribe -np "${KILN_NP:-2}")
  [ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
  ensure_packages "${BUILD_PKGS[@]}" "${DEMO_PKGS[@]}"
  # shellcheck disable=SC2046  # each expands to one word or none
  configure build $(off_unless_cached build KILN_BUILD_TESTS) $(off_unless_cached build KILN_BUILD_BENCHMARKS) \
    -DKILN_BUILD_EXAMPLES=ON
  local target
  case "$variant" in
    cpp | mpi) target=kiln_demo ;;
    c) target=kiln_fashion_mnist_c ;;
    cpp-tape) target=kiln_fashion_mnist_tape ;;
    c-tape) target=kiln_fashion_mnist_tape_c ;;
    python-mpi) target=kiln_mpi ;;
    *) target=kiln ;;
  esac
  cmake --build build -j"$JOBS" --target "$target"
  log "demo ($variant): a conv net on Fashion-MNIST, trained on 54,000 images, validated on 6,000, tested on 10,000"
  case "$variant" in
    python | python-tape)
      local script=fashion_mnist.py
      [ "$variant" = python-tape ] && script=fashion_mnist_tape.py
      PYTHONPATH="$ROOT/bindings/python" KILN_LIBRARY="$ROOT/build/capi/libkiln.so" \
        "$PY" "examples/fashion_mnist/$script" "$@" ;;
    mpi) "${mpirun[@]}" ./build/examples/kiln_demo --distributed "$@" ;;
    python-mpi)
      "${mpirun[@]}" -x PYTHONPATH="$ROOT/bindings/python" -x KILN_LIBRARY="$ROOT/build/capi/libkiln.so" \
        -x KILN_MPI_LIBRARY="$ROOT/build/src/distributed/libkiln_mpi.so" \
        "$PY" examples/fashion_mnist/fashion_mnist.py --distributed "$@" ;;
    *) "./build/examples/$target" "$@" ;;
  esac
}

check_exports() {
  log "exported symbols: only kiln_*"
  local bad
  bad=$(nm -D --defined-only build/capi/libkiln.so | awk '{print $3}' | grep -v -e '^kiln_' -e '^KILN_1$' || true)
  if [ -n "$bad" ]; then
    echo "libkiln.so exports symbols outside the kiln_ namespace:" >&2
    echo "$bad" | head -20 >&2
    return 1
  fi
  readelf -d build/capi/libkiln.so | grep -q 'SONAME.*libkiln.so.1' || { echo "SONAME lacks the ABI major" >&2; return 1; }
  echo "ok: $(nm -D --defined-only build/capi/libkiln.so | grep -c ' kiln_') kiln_ symbols, SONAME libkiln.so.1"
  local mpi=build/src/distributed/libkiln_mpi.so
  bad=$(nm -D --defined-only "$mpi" | awk '{print $3}' | grep -v -e '^kiln_dist_' -e '^KILN_MPI_1$' || true)
  if [ -n "$bad" ]; then
    echo "libkiln_mpi.so exports symbols outside kiln_dist_*:" >&2
    echo "$bad" | head -20 >&2
    return 1
  fi
  # The core stays MPI-free: libkiln.so must not need libmpi.
  if readelf -d build/capi/libkiln.so | grep -q 'NEEDED.*libmpi'; then
    echo "libkiln.so links MPI; only libkiln_mpi.so may" >&2
    return 1
  fi
  echo "ok: libkiln_mpi.so exports $(nm -D --defined-only "$mpi" | grep -c ' kiln_dist_') kiln_dist_ symbols; libkiln.so needs no MPI"
}

abi_dump() {  # the exported C interface of build/capi/libkiln.so, as abidw XML
  abidw --no-corpus-path --no-show-locs --exported-interfaces-only --drop-private-types \
    --headers-dir include/kiln --headers-dir build/include/kiln build/capi/libkiln.so --out-file "$1"
}

check_abi() {
  log "ABI: abidiff against capi/abi/libkiln.abi"
  abi_dump build/libkiln.abi
  if ! abidiff capi/abi/libkiln.abi build/libkiln.abi; then
    echo "The ABI differs from the checked-in baseline. If that is on purpose, run" >&2
    echo "  scripts/dev.sh abi-baseline   and commit capi/abi/libkiln.abi with the reason." >&2
    return 1
  fi
  echo "ok: ABI matches the baseline"
}

check_install() {
  log "install: cmake --install, then build the C example against the installed tree"
  local prefix="$ROOT/build-install-check/prefix"
  rm -rf "$prefix"
  cmake --install build --prefix "$prefix" >/dev/null
  configure build-install-check/example -DCMAKE_PREFIX_PATH="$prefix" -S examples/installed
  cmake --build build-install-check/example -j"$JOBS" >/dev/null
  LD_LIBRARY_PATH="$prefix/lib" ./build-install-check/example/kiln_installed_example
  PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs kiln >/dev/null
  # The installed tool finds the installed libkiln.so through its RUNPATH ($ORIGIN/../lib).
  env -u LD_LIBRARY_PATH "$prefix/bin/kiln-inspect" --version >/dev/null
  echo "ok: find_package(kiln), pkg-config kiln and bin/kiln-inspect work from the installed tree"
}

cmd_test() {
  ensure_packages "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${FUZZ_PKGS[@]}"
  log "build (warnings as errors)"
  # Every option the suite needs is forced: build/ may have been configured by `demo`
  # with tests off, and a cached OFF would silently skip them.
  configure build -DKILN_WERROR=ON -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCHMARKS=ON -DKILN_BUILD_EXAMPLES=ON \
    -DKILN_BUILD_TOOLS=ON -DKILN_SANITIZE=OFF
  cmake --build build -j"$JOBS"
  log "tests: unit, C API, C++ API, Python"
  (cd build && ctest --output-on-failure --no-tests=error -j"$JOBS")
  log "benchmarks: a smoke run, every issue-10 workload once, briefly (W6 left out; speed never judged)"
  OMP_NUM_THREADS=2 "$PY" benchmarks/peer/compare_all.py --smoke --bench build/benchmarks/kiln_benchmarks
  log "benchmarks: a smoke run of the data-parallel ones under mpirun -np 2 (benchmarks/distributed)"
  OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun --oversubscribe --allow-run-as-root -np 2 \
    build/benchmarks/kiln_dist_benchmarks --threads=1 --benchmark_filter='BM_Allreduce.*/1024/|BM_W3DataParallelStep'
  check_exports
  check_abi
  check_install
  log "AddressSanitizer + UndefinedBehaviorSanitizer: unit and C API tests"
  configure build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON -DKILN_SANITIZE=ON \
    -DKILN_BUILD_BENCHMARKS=OFF -DKILN_BUILD_EXAMPLES=OFF
  cmake --build build-asan -j"$JOBS"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure --no-tests=error -j"$JOBS" -L 'unit|capi')
  log "ThreadSanitizer: thread stress tests"
  # libgomp is not TSan-instrumented: TSan cannot see its barriers, so with OpenMP teams it reports
  # false races between the workers of every parallel region. A suppression file for libgomp would
  # not help, as those reports name kiln's own loop bodies (the outlined OpenMP functions), and
  # suppressing them would hide real races in kiln's code too. So kernels run at one OpenMP thread
  # here (a region runs on its calling thread) and the races checked are those between the
  # application threads calling kiln at once, which is what the stress tests are for. oneDNN is not
  # instrumented either; its results are checked bit for bit against single-threaded runs instead.
  configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON -DKILN_SANITIZE=thread \
    -DKILN_BUILD_BENCHMARKS=OFF -DKILN_BUILD_EXAMPLES=OFF
  cmake --build build-tsan -j"$JOBS" --target kiln_stress_tests
  (cd build-tsan && OMP_NUM_THREADS=1 KILN_STRESS_ITERATIONS=3 KILN_STRESS_THREADS=4 \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tests/stress/tsan.supp" \
    ctest --output-on-failure --no-tests=error -j"$JOBS" -L stress)
  local fuzz_seconds="${KILN_FUZZ_SECONDS:-20}"
  log "libFuzzer + ASan/UBSan (clang-14): the checkpoint and event-file readers, ${fuzz_seconds} s per target"
  # Only the fuzz targets and what they link (src/core, src/io, train/checkpoint.cc) are built.
  configure build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DKILN_BUILD_FUZZERS=ON \
    -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_TOOLS=OFF -DKILN_BUILD_BENCHMARKS=OFF -DKILN_BUILD_EXAMPLES=OFF
  cmake --build build-fuzz -j"$JOBS" --target kiln_fuzzers
  fuzz/run.sh "$ROOT/build-fuzz" "$fuzz_seconds"
  log "all checks passed"
}

# Debian's torch calls whichever libblas.so.3 it finds; the fair peer gets Debian's OpenMP OpenBLAS,
# unpacked into <build>/openblas-omp rather than installed (the system's BLAS stays as it is). Sets
# TORCH_BLAS to its folder, or to "" (torch then runs on the system's BLAS) when it cannot be fetched.
fetch_openblas_omp() {  # fetch_openblas_omp <build dir>
  local dir
  dir="$(cd "$1" && pwd)/openblas-omp"
  TORCH_BLAS="$dir/usr/lib/$(gcc -print-multiarch)/openblas-openmp"
  [ -e "$TORCH_BLAS/libblas.so.3" ] && return 0
  log "fetching libopenblas0-openmp for the PyTorch peer"
  mkdir -p "$dir"
  rm -f "$dir"/libopenblas0-openmp_*.deb
  if ! (cd "$dir" && apt-get download libopenblas0-openmp && dpkg-deb -x libopenblas0-openmp_*.deb .) ||
    [ ! -e "$TORCH_BLAS/libblas.so.3" ]; then
    echo "could not fetch libopenblas0-openmp (apt-get update first?): PyTorch runs on the system's BLAS" >&2
    TORCH_BLAS=""
  fi
}

# scripts/dev.sh bench [--quick] [options]: issue 10's suite (benchmarks/README.md): every workload in
#   kiln and in PyTorch, interleaved over 3 rounds, printed as one table (kiln median [range], PyTorch
#   median [range], ratio, target, peak RSS) with the machine's FMA peak and raw oneDNN beside it
#   (benchmarks/peer/compare_all.py; --quick: 1 short round without W6; also --workloads w1,w3,
#   --rounds N, --steps N, --repetitions N, --min-time S; --help lists them). PyTorch runs as the fair
#   peer: 2 threads, Debian's OpenMP OpenBLAS, glibc's malloc thresholds raised; W2's peer is C++
#   against libtorch-dev, compiled into build/peer on first use.
# scripts/dev.sh bench training [options]: W3 and W6 only (compare_all.py --workloads w3,w6).
# scripts/dev.sh bench mpi: the data-parallel benchmarks (benchmarks/distributed/run.sh): allreduce
#   against raw MPI_Allreduce under mpirun -np 2, and the W3 step's scaling.
# scripts/dev.sh bench --raw [Google Benchmark flags]: kiln_benchmarks alone, e.g.
#   scripts/dev.sh bench --raw --benchmark_filter=Matmul   (a first argument --benchmark_* implies --raw).
# KILN_BENCH_BUILD=<dir> builds in <dir> instead of build/.
cmd_bench() {
  local build="${KILN_BENCH_BUILD:-build}"
  ensure_packages "${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}"
  # Benchmarks forced on: `demo` caches KILN_BUILD_BENCHMARKS=OFF in the same build/.
  # shellcheck disable=SC2046  # one word or none
  configure "$build" $(off_unless_cached "$build" KILN_BUILD_TESTS) -DKILN_BUILD_BENCHMARKS=ON
  cmake --build "$build" -j"$JOBS" --target kiln_benchmarks
  local bench="$build/benchmarks/kiln_benchmarks"
  case "${1:-}" in
    mpi)
      # issue 11: allreduce against raw MPI_Allreduce, and the W3 step data-parallel (run.sh).
      cmake --build "$build" -j"$JOBS" --target kiln_dist_benchmarks
      benchmarks/distributed/run.sh "$build"
      return ;;
    --raw) shift; "$bench" "$@"; return ;;
    --benchmark_*) "$bench" "$@"; return ;;
    training) shift; set -- --workloads w3,w6 "$@" ;;
  esac
  fetch_openblas_omp "$build"
  "$PY" benchmarks/peer/compare_all.py --bench "$bench" --torch-library-path "$TORCH_BLAS" "$@"
}

cmd_abi_baseline() {
  ensure_packages "${BUILD_PKGS[@]}" abigail-tools
  configure build
  cmake --build build -j"$JOBS" --target kiln
  mkdir -p capi/abi
  abi_dump capi/abi/libkiln.abi
  echo "wrote capi/abi/libkiln.abi"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  test) shift; cmd_test "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  abi-baseline) shift; cmd_abi_baseline "$@" ;;
  *) echo "usage: scripts/dev.sh demo|test|bench|abi-baseline" >&2; exit 2 ;;
esac
