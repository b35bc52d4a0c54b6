// Library-level entry points: version, status objects, seeds, threads, counters.
#include <cstring>

#include "capi/handles.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/engine.h"

namespace kiln::capi {

kiln_status *make_status(Code code, const std::string &message) noexcept {
  try {
    return new kiln_status{static_cast<kiln_status_code>(code), message};
  } catch (...) {
    // Out of memory while reporting an error: a static status would be freed by the
    // caller, so report with the smallest allocation we can make.
    return new (std::nothrow) kiln_status{KILN_STATUS_RESOURCE_EXHAUSTED, {}};
  }
}

void check_foreign(kiln_status *st, const std::string &where) {
  if (!st) return;
  kiln_status_code code = kiln_status_get_code(st);
  const std::string msg = kiln_status_get_message(st);
  kiln_status_free(st);
  if (code <= KILN_STATUS_OK || code > KILN_STATUS_INTERNAL) code = KILN_STATUS_INTERNAL;
  if (where.empty()) fail(static_cast<Code>(code), msg);
  fail(static_cast<Code>(code), where, ": ", msg);
}

kiln_status *status_from_error(Code code, const char *message, const char *fn) noexcept {
  const size_t n = std::strlen(fn);
  // Out-of-memory and internal errors come from below the entry point and may not name it.
  if ((code != Code::kResourceExhausted && code != Code::kInternal) || std::strncmp(message, fn, n) == 0)
    return make_status(code, message);
  try {
    return make_status(code, std::string(fn) + ": " + message);
  } catch (...) {
    return make_status(code, message);
  }
}

DType dtype_from_c(int dtype, const char *fn) {
  if (!dtype_valid(dtype))
    fail(Code::kInvalidArgument, fn, ": dtype ", dtype, " is not a kiln_dtype; expected 1 (float32) to 7 (float64)");
  return static_cast<DType>(dtype);
}

Shape shape_from_c(const int64_t *dims, size_t rank, const char *fn) {
  if (rank > KILN_MAX_RANK)
    fail(Code::kInvalidArgument, fn, ": rank ", rank, " is larger than KILN_MAX_RANK (", KILN_MAX_RANK, ")");
  try {
    return Shape(dims, static_cast<int>(rank));
  } catch (const Error &e) {
    fail(e.code(), fn, ": ", e.what());
  }
}

}  // namespace kiln::capi

extern "C" {

const char *kiln_version(void) { return KILN_VERSION_STRING; }
int kiln_abi_version(void) { return KILN_ABI_VERSION; }

kiln_status_code kiln_status_get_code(const kiln_status *status) {
  return status ? status->code : KILN_STATUS_OK;
}
const char *kiln_status_get_message(const kiln_status *status) {
  return status ? status->message.c_str() : "";
}
void kiln_status_free(kiln_status *status) { delete status; }

kiln_status *kiln_status_create(kiln_status_code code, const char *message) {
  const int c = static_cast<int>(code);
  if (c <= KILN_STATUS_OK || c > KILN_STATUS_INTERNAL)
    return kiln::capi::make_status(kiln::Code::kInvalidArgument,
                                   "kiln_status_create: code " + std::to_string(c) +
                                       " is not an error code; expected 1 (INVALID_ARGUMENT) to 8 (INTERNAL)" +
                                       (message ? std::string(" (message: ") + message + ")" : std::string()));
  return kiln::capi::make_status(static_cast<kiln::Code>(c), message ? message : "");
}

void kiln_set_seed(uint64_t seed) { kiln::set_global_seed(seed); }

kiln_status *kiln_set_num_threads(int num_threads) {
  KILN_CAPI_BEGIN
  kiln::set_num_threads(num_threads);
  KILN_CAPI_END
}

int kiln_get_num_threads(void) { return kiln::num_threads(); }

kiln_status *kiln_set_num_threads_for_this_thread(int num_threads) {
  KILN_CAPI_BEGIN
  kiln::set_num_threads_for_this_thread(num_threads);
  KILN_CAPI_END
}

int kiln_get_num_threads_for_this_thread(void) { return kiln::num_threads_for_this_thread(); }

void kiln_primitive_cache_stats(int64_t *hits, int64_t *misses, int64_t *size) {
  kiln::kernels::PrimitiveCacheStats s = kiln::kernels::primitive_cache_stats();
  if (hits) *hits = s.hits;
  if (misses) *misses = s.misses;
  if (size) *size = s.size;
}

size_t kiln_allocator_release_cached(void) { return static_cast<size_t>(kiln::allocator_release_cached()); }

void kiln_allocator_stats(int64_t *system_allocs, int64_t *cache_hits) {
  kiln::AllocatorStats s = kiln::allocator_stats();
  if (system_allocs) *system_allocs = s.system_allocs;
  if (cache_hits) *cache_hits = s.cache_hits;
}

}  // extern "C"
