// libkiln_mpi.so: kiln's collectives over MPI (kiln/distributed.h), built on libkiln.so's public
// C API only, so the core never links MPI and one libkiln.so serves programs with and without it.
//
// Every collective runs on a duplicate of MPI_COMM_WORLD whose error handler returns codes, so an
// MPI error (ranks passing different sizes) becomes a status. A watchdog thread bounds the wait of
// each collective: past the timeout another rank has failed or stopped calling the same
// collectives, and the only way out of a blocked MPI call is to end the process; it says why on
// stderr and exits, and mpirun then ends the other ranks.
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kiln/distributed.h"

namespace {

// An error carrying a kiln status code, turned into a status at the entry point.
struct DistError : std::runtime_error {
  DistError(kiln_status_code c, const std::string &m) : std::runtime_error(m), code(c) {}
  kiln_status_code code;
};

[[noreturn]] void fail(kiln_status_code code, const std::string &message) { throw DistError(code, message); }

// A status from libkiln.so as an exception (its message after `where: `).
void check(kiln_status *st, const std::string &where) {
  if (!st) return;
  const kiln_status_code code = kiln_status_get_code(st);
  const std::string msg = kiln_status_get_message(st);
  kiln_status_free(st);
  fail(code, where + ": " + msg);
}

// Ends the process when a collective outlives the timeout. Arming costs a few atomic stores (no
// lock, no clock, no wake-up: a collective of a kilobyte takes about a microsecond); the thread,
// started by init, looks a few times per timeout at which collective is armed.
class Watchdog {
 public:
  void start(double timeout_seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    timeout_ = timeout_seconds;
    if (timeout_ > 0 && !thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // No clock read on the collective's path: arming numbers the collective, and the thread
  // measures how long one number stays armed.
  void arm(const char *what, size_t bytes, int rank, int size) {
    if (timeout_ <= 0) return;
    what_.store(what, std::memory_order_relaxed);
    bytes_.store(bytes, std::memory_order_relaxed);
    rank_.store(rank, std::memory_order_relaxed);
    size_.store(size, std::memory_order_relaxed);
    armed_.store(++count_, std::memory_order_release);
  }
  void disarm() { armed_.store(0, std::memory_order_release); }

 private:
  void run() {
    // Checked 8 times per timeout, at least every second and at most every 10 ms: a collective
    // stuck for the timeout is ended within 1/8 of it after.
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(std::min(1.0, std::max(0.01, timeout_ / 8))));
    const auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(timeout_));
    uint64_t seen = 0;  // the armed collective at the last check, and since when
    auto since = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return quit_; })) {
      const uint64_t armed = armed_.load(std::memory_order_acquire);
      const auto now = std::chrono::steady_clock::now();
      if (armed == 0 || armed != seen) {
        seen = armed;
        since = now;
        continue;
      }
      if (now - since < limit) continue;
      std::fprintf(stderr,
                   "kiln distributed: rank %d of %d: %s of %zu bytes did not complete within %.3g s: another "
                   "rank has failed or stopped calling the same collectives. Ending this process "
                   "(timeout_seconds of kiln_dist_init, or KILN_DIST_TIMEOUT_SECONDS, sets the limit).\n",
                   rank_.load(), size_.load(), what_.load(), bytes_.load(), timeout_);
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  double timeout_ = 0;  // set before the thread starts, read-only after
  bool quit_ = false;
  uint64_t count_ = 0;              // collectives armed so far (only under State::mu)
  std::atomic<uint64_t> armed_{0};  // the number of the armed collective; 0: none
  std::atomic<const char *> what_{""};
  std::atomic<size_t> bytes_{0};
  std::atomic<int> rank_{0}, size_{1};
};

struct State {
  std::mutex mu;  // serialises init, finalize and every collective
  bool initialized = false, finalized = false, owns_mpi = false;
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Op bf16_sum = MPI_OP_NULL;
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  Watchdog watchdog;
  // The communicator over MPI_COMM_WORLD, made once: every handle kiln_dist_communicator gives is
  // a clone of it, so they share one background thread for overlapped reductions. Kept after
  // finalize (a handle may outlive it; its collectives then fail).
  kiln_communicator *world = nullptr;
  int thread_level = MPI_THREAD_SERIALIZED;  // what MPI provides (a program may have started it)
};

State &state() {
  static State *s = new State;  // never destroyed: atexit finalize may run after statics die
  return *s;
}

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(len));
}

void check_mpi(int code, const char *what) {
  if (code != MPI_SUCCESS)
    fail(KILN_STATUS_INTERNAL,
         std::string(what) + ": MPI failed: " + mpi_error(code) +
             " (do all ranks call the same collectives with tensors of the same size?)");
}

State &require_init(const char *fn) {
  State &s = state();
  if (!s.initialized) fail(KILN_STATUS_FAILED_PRECONDITION, std::string(fn) + ": call kiln_dist_init first");
  return s;
}

// The watchdog armed for one collective.
class Guarded {
 public:
  Guarded(State &s, const char *what, size_t bytes) : s_(s) { s.watchdog.arm(what, bytes, s.rank, s.size); }
  ~Guarded() { s_.watchdog.disarm(); }
  Guarded(const Guarded &) = delete;
  Guarded &operator=(const Guarded &) = delete;

 private:
  State &s_;
};

float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Round to nearest even, NaN kept a NaN (as kiln's own conversion).
uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

void bf16_sum_op(void *in, void *inout, int *len, MPI_Datatype *) {
  const auto *a = static_cast<const uint16_t *>(in);
  auto *b = static_cast<uint16_t *>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

MPI_Datatype mpi_type(kiln_dtype dtype, const char *fn) {
  switch (dtype) {
    case KILN_DTYPE_FLOAT32:
      return MPI_FLOAT;
    case KILN_DTYPE_FLOAT64:
      return MPI_DOUBLE;
    case KILN_DTYPE_BFLOAT16:
      return MPI_UINT16_T;
    case KILN_DTYPE_INT32:
      return MPI_INT32_T;
    case KILN_DTYPE_INT64:
      return MPI_INT64_T;
    default:
      fail(KILN_STATUS_INVALID_ARGUMENT,
           std::string(fn) + ": dtype " + std::to_string(static_cast<int>(dtype)) +
               " cannot be summed; expected float32, float64, bfloat16, int32 or int64");
  }
}

size_t dtype_bytes(kiln_dtype dtype) {
  switch (dtype) {
    case KILN_DTYPE_FLOAT64:
    case KILN_DTYPE_INT64:
      return 8;
    case KILN_DTYPE_FLOAT32:
    case KILN_DTYPE_INT32:
      return 4;
    case KILN_DTYPE_BFLOAT16:
      return 2;
    default:
      return 1;
  }
}

// InvalidArgument unless dtype can be summed, and for "mean" averaged (a floating dtype).
void check_reducible(kiln_dtype dtype, bool mean, const char *fn) {
  mpi_type(dtype, fn);
  const bool floating =
      dtype == KILN_DTYPE_FLOAT32 || dtype == KILN_DTYPE_FLOAT64 || dtype == KILN_DTYPE_BFLOAT16;
  if (mean && !floating)
    fail(KILN_STATUS_INVALID_ARGUMENT,
         std::string(fn) +
             ": op \"mean\" needs a float32, float64 or bfloat16 tensor; use \"sum\" for integers");
}

// data[i] *= factor for count floating elements of dtype (the mean after the sum).
void scale_by(void *data, size_t count, kiln_dtype dtype, double factor) {
  if (dtype == KILN_DTYPE_FLOAT32) {
    auto *p = static_cast<float *>(data);
    for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(p[i] * factor);
  } else if (dtype == KILN_DTYPE_FLOAT64) {
    auto *p = static_cast<double *>(data);
    for (size_t i = 0; i < count; ++i) p[i] *= factor;
  } else if (dtype == KILN_DTYPE_BFLOAT16) {
    auto *p = static_cast<uint16_t *>(data);
    for (size_t i = 0; i < count; ++i) p[i] = float_to_bf16(static_cast<float>(bf16_to_float(p[i]) * factor));
  }
}

// The sum over the ranks of count elements at src into dst (dst == src: in place), in pieces of
// at most INT_MAX elements (MPI counts are int).
void allreduce_locked(State &s, const void *src, void *dst, size_t count, kiln_dtype dtype, const char *fn) {
  const MPI_Datatype type = mpi_type(dtype, fn);
  const MPI_Op op = dtype == KILN_DTYPE_BFLOAT16 ? s.bf16_sum : MPI_SUM;
  const size_t elem = dtype_bytes(dtype);
  Guarded g(s, "allreduce", count * elem);
  for (size_t at = 0; at < count;) {
    const int n = static_cast<int>(std::min<size_t>(count - at, INT_MAX));
    char *out = static_cast<char *>(dst) + at * elem;
    const void *in = src == dst ? MPI_IN_PLACE : static_cast<const char *>(src) + at * elem;
    check_mpi(MPI_Allreduce(in, out, n, type, op, s.comm), fn);
    at += static_cast<size_t>(n);
  }
}

void allreduce_locked(State &s, void *data, size_t count, kiln_dtype dtype, const char *fn) {
  allreduce_locked(s, data, data, count, dtype, fn);
}

void broadcast_locked(State &s, void *data, size_t bytes, int root, const char *fn) {
  if (root < 0 || root >= s.size)
    fail(KILN_STATUS_INVALID_ARGUMENT, std::string(fn) + ": root rank " + std::to_string(root) +
                                           " is outside [0, " + std::to_string(s.size) + ")");
  Guarded g(s, "broadcast", bytes);
  for (size_t at = 0; at < bytes;) {
    const int n = static_cast<int>(std::min<size_t>(bytes - at, INT_MAX));
    check_mpi(MPI_Bcast(static_cast<char *>(data) + at, n, MPI_BYTE, root, s.comm), fn);
    at += static_cast<size_t>(n);
  }
}

// Whether any rank passes true (so that all ranks fail alike).
bool any_rank_locked(State &s, bool flag, const char *fn) {
  int64_t v = flag ? 1 : 0;
  allreduce_locked(s, &v, 1, KILN_DTYPE_INT64, fn);
  return v != 0;
}

void finalize_locked(State &s) {
  if (!s.initialized) return;
  s.watchdog.stop();
  if (s.bf16_sum != MPI_OP_NULL) MPI_Op_free(&s.bf16_sum);
  if (s.comm != MPI_COMM_NULL) MPI_Comm_free(&s.comm);
  s.initialized = false;
  s.finalized = true;
  int done = 0;
  MPI_Finalized(&done);
  if (s.owns_mpi && !done) MPI_Finalize();
}

void finalize_at_exit() {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  finalize_locked(s);
}

double option_float(const kiln_config *options, const char *key, double def) {
  if (!options || !kiln_config_has(options, key)) return def;
  double v = 0;
  check(kiln_config_get_float(&v, options, key), std::string("kiln_dist_init: options[\"") + key + "\"]");
  return v;
}

// Processors this process may run on.
int usable_processors() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

kiln_status *status_of(const DistError &e) { return kiln_status_create(e.code, e.what()); }

template <typename F>
kiln_status *guarded(F &&f) {
  try {
    f();
    return nullptr;
  } catch (const DistError &e) {
    return status_of(e);
  } catch (const std::bad_alloc &) {
    return kiln_status_create(KILN_STATUS_RESOURCE_EXHAUSTED, "kiln distributed: out of memory");
  } catch (const std::exception &e) {
    return kiln_status_create(KILN_STATUS_INTERNAL, e.what());
  }
}

// The output buffers of kiln_dist_allreduce, kept for reuse when their tensors die: a fresh
// buffer of a megabyte or more comes from mmap and is page-faulted in on every call (17 us a page
// on a VM), which costs more than the collective. Buffers are 64-byte aligned, sized in 4 KiB
// steps; at most kMaxCachedBytes wait here. The deleter runs on any thread.
class BufferPool {
 public:
  static constexpr size_t kMaxCachedBytes = size_t{512} << 20;
  static size_t rounded(size_t bytes) { return std::max<size_t>(4096, (bytes + 4095) / 4096 * 4096); }
  void *get(size_t bytes) {
    const size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void *p = it->second.back();
        it->second.pop_back();  // keeps its capacity: a steady loop allocates nothing here
        cached_ -= size;
        return p;
      }
    }
    return std::aligned_alloc(64, size);
  }
  void put(void *p, size_t bytes) {
    const size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + size <= kMaxCachedBytes) {
        free_[size].push_back(p);
        cached_ += size;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void *>> free_;  // by rounded size
  size_t cached_ = 0;
};

BufferPool &buffer_pool() {
  static BufferPool *pool = new BufferPool;  // never destroyed: tensors may die after exit starts
  return *pool;
}

// kiln_tensor_create_from_buffer's deleter; user_data carries the byte size.
void free_buffer(void *data, void *bytes) { buffer_pool().put(data, reinterpret_cast<uintptr_t>(bytes)); }

// The new tensor of dtype and dims with bytes copied from data.
kiln_tensor *new_tensor(kiln_dtype dtype, const std::vector<int64_t> &dims, const void *data, size_t bytes,
                        const char *fn) {
  kiln_tensor *t = nullptr;
  check(kiln_tensor_create(&t, dtype, dims.data(), dims.size(), data, bytes), fn);
  return t;
}

void require(const void *p, const char *fn, const char *arg) {
  if (!p) fail(KILN_STATUS_INVALID_ARGUMENT, std::string(fn) + ": argument '" + arg + "' is NULL");
}

// Whether op is "mean" (else "sum"); InvalidArgument for anything else.
bool is_mean(const char *op, const char *fn) {
  require(op, fn, "op");
  const bool mean = std::strcmp(op, "mean") == 0;
  if (!mean && std::strcmp(op, "sum") != 0)
    fail(KILN_STATUS_INVALID_ARGUMENT, std::string(fn) + ": op is '" + op + "'; expected \"sum\" or \"mean\"");
  return mean;
}

std::vector<int64_t> dims_of(const kiln_tensor *t) {
  const int r = kiln_tensor_get_rank(t);
  const int64_t *d = kiln_tensor_get_dims(t);
  return std::vector<int64_t>(d, d + std::max(r, 0));
}

// The communicator table of kiln_dist_communicator: the same collectives on raw buffers.
// The communicator's collectives may run on kiln's background thread (overlapped gradient sums),
// which MPI allows from MPI_THREAD_SERIALIZED up (every call here holds State::mu).
void check_thread_level(const State &s, const char *fn) {
  if (s.thread_level >= MPI_THREAD_SERIALIZED) return;
  int main_thread = 0;
  MPI_Is_thread_main(&main_thread);
  if (!main_thread)
    fail(
        KILN_STATUS_FAILED_PRECONDITION,
        std::string(fn) +
            ": called from a thread other than MPI's main one, but the program started MPI at " +
            "thread level " + std::to_string(s.thread_level) +
            " (below MPI_THREAD_SERIALIZED); let kiln_dist_init start MPI, start it with MPI_Init_thread and "
            "MPI_THREAD_SERIALIZED, or turn off the overlap of gradient sums (option \"overlap\": false)");
}

kiln_status *table_allreduce(void *data, size_t count, kiln_dtype dtype, void *) {
  return guarded([&] {
    State &s = require_init("allreduce");
    std::lock_guard<std::mutex> lock(s.mu);
    check_thread_level(s, "allreduce");
    allreduce_locked(s, data, count, dtype, "allreduce");
  });
}

kiln_status *table_broadcast(void *data, size_t bytes, int root, void *) {
  return guarded([&] {
    State &s = require_init("broadcast");
    std::lock_guard<std::mutex> lock(s.mu);
    check_thread_level(s, "broadcast");
    broadcast_locked(s, data, bytes, root, "broadcast");
  });
}

}  // namespace

extern "C" {

kiln_status *kiln_dist_init(const kiln_config *options) {
  return guarded([&] {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.initialized) return;
    if (s.finalized)
      fail(KILN_STATUS_FAILED_PRECONDITION, "kiln_dist_init: MPI was finalized; it cannot start again");
    if (options) {
      for (size_t i = 0; i < kiln_config_get_size(options); ++i) {
        const char *key = nullptr;
        check(kiln_config_get_key(&key, options, i), "kiln_dist_init");
        if (std::strcmp(key, "timeout_seconds") != 0 && std::strcmp(key, "threads_per_process") != 0)
          fail(KILN_STATUS_INVALID_ARGUMENT, std::string("kiln_dist_init: unknown option '") + key +
                                                 "'; expected timeout_seconds or threads_per_process");
      }
    }
    double timeout = 300.0;
    if (const char *env = std::getenv("KILN_DIST_TIMEOUT_SECONDS")) {
      char *end = nullptr;
      const double v = std::strtod(env, &end);
      if (end == env || *end != '\0' || !(v >= 0))
        fail(KILN_STATUS_INVALID_ARGUMENT, std::string("kiln_dist_init: KILN_DIST_TIMEOUT_SECONDS is '") +
                                               env + "'; expected a number of seconds >= 0");
      timeout = v;
    }
    timeout = option_float(options, "timeout_seconds", timeout);
    if (!(timeout >= 0))
      fail(KILN_STATUS_INVALID_ARGUMENT,
           "kiln_dist_init: timeout_seconds is " + std::to_string(timeout) + "; expected >= 0 (0: no limit)");
    const double threads = option_float(options, "threads_per_process", 0);
    if (!(threads >= 0 && threads <= 4096) || threads != static_cast<int>(threads))
      fail(KILN_STATUS_INVALID_ARGUMENT, "kiln_dist_init: threads_per_process is " + std::to_string(threads) +
                                             "; expected 0 (auto) or a positive whole number");

    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
      int provided = 0;
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      if (rc != MPI_SUCCESS) fail(KILN_STATUS_INTERNAL, "kiln_dist_init: MPI_Init_thread failed");
      s.owns_mpi = true;
      std::atexit(finalize_at_exit);
    }
    check_mpi(MPI_Query_thread(&s.thread_level), "kiln_dist_init");
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm), "kiln_dist_init");
    check_mpi(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN), "kiln_dist_init");
    MPI_Comm_rank(s.comm, &s.rank);
    MPI_Comm_size(s.comm, &s.size);
    MPI_Comm local = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split_type(s.comm, MPI_COMM_TYPE_SHARED, s.rank, MPI_INFO_NULL, &local),
              "kiln_dist_init");
    MPI_Comm_rank(local, &s.local_rank);
    MPI_Comm_size(local, &s.local_size);
    MPI_Comm_free(&local);
    check_mpi(MPI_Op_create(bf16_sum_op, 1, &s.bf16_sum), "kiln_dist_init");
    s.watchdog.start(timeout);
    s.initialized = true;
    // Several processes on one machine: each gets its share of the processors for its kernels.
    int n = static_cast<int>(threads);
    if (n == 0 && !std::getenv("OMP_NUM_THREADS") && s.local_size > 1) {
      const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      n = std::max(1, std::min(usable_processors(), hw / s.local_size));
    }
    if (n > 0) check(kiln_set_num_threads(n), "kiln_dist_init");
  });
}

kiln_status *kiln_dist_finalize(void) {
  return guarded([&] {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    finalize_locked(s);
  });
}

bool kiln_dist_is_initialized(void) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.initialized;
}

void kiln_dist_abort(int code) {
  int started = 0, done = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&done);
  std::fflush(stdout);
  std::fflush(stderr);
  if (started && !done) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

kiln_status *kiln_dist_rank(int *out) {
  return guarded([&] {
    require(out, "kiln_dist_rank", "out");
    *out = require_init("kiln_dist_rank").rank;
  });
}

kiln_status *kiln_dist_size(int *out) {
  return guarded([&] {
    require(out, "kiln_dist_size", "out");
    *out = require_init("kiln_dist_size").size;
  });
}

kiln_status *kiln_dist_local_rank(int *out) {
  return guarded([&] {
    require(out, "kiln_dist_local_rank", "out");
    *out = require_init("kiln_dist_local_rank").local_rank;
  });
}

kiln_status *kiln_dist_local_size(int *out) {
  return guarded([&] {
    require(out, "kiln_dist_local_size", "out");
    *out = require_init("kiln_dist_local_size").local_size;
  });
}

kiln_status *kiln_dist_allreduce(kiln_tensor **out, const kiln_tensor *tensor, const char *op) {
  const char *fn = "kiln_dist_allreduce";
  return guarded([&] {
    require(out, fn, "out");
    *out = nullptr;
    require(tensor, fn, "tensor");
    const bool mean = is_mean(op, fn);
    State &s = require_init(fn);
    const kiln_dtype dtype = kiln_tensor_get_dtype(tensor);
    check_reducible(dtype, mean, fn);
    const size_t count = static_cast<size_t>(kiln_tensor_get_num_elements(tensor));
    const size_t bytes = kiln_tensor_get_byte_size(tensor);
    // MPI writes the sum straight into the new tensor's buffer (no copy of the input first).
    void *data = buffer_pool().get(bytes);
    if (!data) fail(KILN_STATUS_RESOURCE_EXHAUSTED, std::string(fn) + ": out of memory for the result");
    try {
      {
        std::lock_guard<std::mutex> lock(s.mu);
        allreduce_locked(s, kiln_tensor_get_data(tensor), data, count, dtype, fn);
      }
      if (mean) scale_by(data, count, dtype, 1.0 / s.size);
      check(kiln_tensor_create_from_buffer(out, dtype, kiln_tensor_get_dims(tensor),
                                           static_cast<size_t>(std::max(kiln_tensor_get_rank(tensor), 0)),
                                           data, bytes, free_buffer,
                                           reinterpret_cast<void *>(static_cast<uintptr_t>(bytes))),
            fn);
    } catch (...) {
      buffer_pool().put(data, bytes);
      throw;
    }
  });
}

kiln_status *kiln_dist_allreduce_variable(kiln_variable *variable, const char *op) {
  const char *fn = "kiln_dist_allreduce_variable";
  return guarded([&] {
    require(variable, fn, "variable");
    const bool mean = is_mean(op, fn);
    State &s = require_init(fn);
    // The sum lands in the variable's own buffer (MPI_IN_PLACE), as a raw MPI_Allreduce would.
    struct Update {
      State *s;
      bool mean;
      const char *fn;
    } u{&s, mean, fn};
    auto update = [](void *dst, const void *src, size_t bytes, kiln_dtype dtype,
                     void *user) -> kiln_status * {
      const Update &up = *static_cast<const Update *>(user);
      return guarded([&] {
        check_reducible(dtype, up.mean, up.fn);
        const size_t count = bytes / dtype_bytes(dtype);
        {
          std::lock_guard<std::mutex> lock(up.s->mu);
          allreduce_locked(*up.s, src, dst, count, dtype, up.fn);
        }
        if (up.mean) scale_by(dst, count, dtype, 1.0 / up.s->size);
      });
    };
    check(kiln_variable_update_in_place(variable, update, &u), fn);
  });
}

kiln_status *kiln_dist_broadcast(kiln_tensor **out, const kiln_tensor *tensor, int root) {
  const char *fn = "kiln_dist_broadcast";
  return guarded([&] {
    require(out, fn, "out");
    *out = nullptr;
    require(tensor, fn, "tensor");
    State &s = require_init(fn);
    const kiln_dtype dtype = kiln_tensor_get_dtype(tensor);
    const std::vector<int64_t> dims = dims_of(tensor);
    std::lock_guard<std::mutex> lock(s.mu);
    // Root's dtype and shape first: a rank whose tensor differs makes every rank fail.
    std::vector<int64_t> meta{static_cast<int64_t>(dtype), static_cast<int64_t>(dims.size())};
    meta.insert(meta.end(), dims.begin(), dims.end());
    meta.resize(2 + 8, 0);
    std::vector<int64_t> root_meta = meta;
    broadcast_locked(s, root_meta.data(), root_meta.size() * sizeof(int64_t), root, fn);
    if (any_rank_locked(s, root_meta != meta, fn))
      fail(KILN_STATUS_INVALID_ARGUMENT,
           std::string(fn) + ": the ranks' tensors differ in dtype or shape from root " +
               std::to_string(root) + "'s; every rank passes a tensor like root's");
    kiln_tensor *t =
        new_tensor(dtype, dims, kiln_tensor_get_data(tensor), kiln_tensor_get_byte_size(tensor), fn);
    try {
      broadcast_locked(s, const_cast<void *>(kiln_tensor_get_data(t)), kiln_tensor_get_byte_size(t), root,
                       fn);
    } catch (...) {
      kiln_tensor_free(t);
      throw;
    }
    *out = t;
  });
}

kiln_status *kiln_dist_allgather(kiln_tensor **out, const kiln_tensor *tensor) {
  const char *fn = "kiln_dist_allgather";
  return guarded([&] {
    require(out, fn, "out");
    *out = nullptr;
    require(tensor, fn, "tensor");
    State &s = require_init(fn);
    const kiln_dtype dtype = kiln_tensor_get_dtype(tensor);
    std::vector<int64_t> dims = dims_of(tensor);
    if (dims.empty()) dims.push_back(1);
    if (dims.size() > 8) fail(KILN_STATUS_INVALID_ARGUMENT, std::string(fn) + ": rank above 8");
    // Each rank's row count, and its dtype and trailing shape to compare with rank 0's.
    std::vector<int64_t> mine{static_cast<int64_t>(dtype), static_cast<int64_t>(dims.size())};
    mine.insert(mine.end(), dims.begin() + 1, dims.end());
    mine.resize(10, 0);
    const size_t n = static_cast<size_t>(s.size);
    std::vector<int64_t> rows(n), all(n * mine.size());
    int64_t my_rows = dims[0];
    std::lock_guard<std::mutex> lock(s.mu);
    {
      Guarded g(s, "allgather", sizeof(int64_t) * (1 + mine.size()));
      check_mpi(MPI_Allgather(&my_rows, 1, MPI_INT64_T, rows.data(), 1, MPI_INT64_T, s.comm), fn);
      check_mpi(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(),
                              static_cast<int>(mine.size()), MPI_INT64_T, s.comm),
                fn);
    }
    for (size_t r = 0; r < n; ++r)
      if (!std::equal(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(r * mine.size())))
        fail(KILN_STATUS_INVALID_ARGUMENT, std::string(fn) + ": rank " + std::to_string(r) +
                                               "'s tensor differs in dtype or in the shape after the first "
                                               "dimension from this rank's; they must agree");
    size_t row_bytes = dtype_bytes(dtype);
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= static_cast<size_t>(dims[i]);
    std::vector<int> counts(n), displs(n);
    int64_t total_rows = 0;
    size_t total_bytes = 0;
    for (size_t r = 0; r < n; ++r) {
      const size_t b = static_cast<size_t>(rows[r]) * row_bytes;
      if (b > INT_MAX || total_bytes + b > INT_MAX)
        fail(KILN_STATUS_INVALID_ARGUMENT, std::string(fn) + ": the gathered tensor exceeds 2 GiB");
      counts[r] = static_cast<int>(b);
      displs[r] = static_cast<int>(total_bytes);
      total_bytes += b;
      total_rows += rows[r];
    }
    std::vector<unsigned char> buffer(total_bytes);
    {
      Guarded g(s, "allgather", total_bytes);
      check_mpi(MPI_Allgatherv(kiln_tensor_get_data(tensor), counts[static_cast<size_t>(s.rank)], MPI_BYTE,
                               buffer.data(), counts.data(), displs.data(), MPI_BYTE, s.comm),
                fn);
    }
    dims[0] = total_rows;
    *out = new_tensor(dtype, dims, buffer.data(), buffer.size(), fn);
  });
}

kiln_status *kiln_dist_barrier(void) {
  return guarded([&] {
    State &s = require_init("kiln_dist_barrier");
    std::lock_guard<std::mutex> lock(s.mu);
    Guarded g(s, "barrier", 0);
    check_mpi(MPI_Barrier(s.comm), "kiln_dist_barrier");
  });
}

kiln_status *kiln_dist_communicator(kiln_communicator **out) {
  return guarded([&] {
    require(out, "kiln_dist_communicator", "out");
    *out = nullptr;
    State &s = require_init("kiln_dist_communicator");
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.world) {
      kiln_communicator_table table{};
      table.struct_size = sizeof table;
      table.allreduce_sum = table_allreduce;
      table.broadcast = table_broadcast;
      check(kiln_communicator_create(&s.world, s.rank, s.size, &table, nullptr), "kiln_dist_communicator");
    }
    check(kiln_communicator_clone(out, s.world), "kiln_dist_communicator");
  });
}

}  // extern "C"
