// kiln.hpp — header-only C++ API over the C API in kiln.h (compiled into your program,
// so no C++ type crosses the library boundary).
//
// Example:
//
//     #include <kiln/kiln.hpp>
//     kiln::Tensor x = kiln::Tensor::from_vector({1.f, 2.f, 3.f}, {3});
//     kiln::GradientTape tape;
//     tape.watch(x);
//     kiln::Tensor loss = kiln::sum(x * x);
//     tape.stop();
//     kiln::Tensor grad = tape.gradient(loss, {x})[0];   // [2, 4, 6]
//     std::vector<float> g = grad.to_vector<float>();
//
// Errors: every failing call throws kiln::Error (code() and what()).
// Ownership: every object owns its C handle and frees it in its destructor. Tensor copies
// share the same immutable value. Thread-safety: as kiln.h.
#ifndef KILN_HPP
#define KILN_HPP

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "kiln/distributed.h"
#include "kiln/kiln.h"

namespace kiln {

using Dims = std::vector<int64_t>;

enum class DType : int {
  float32 = KILN_DTYPE_FLOAT32,
  bfloat16 = KILN_DTYPE_BFLOAT16,
  int32 = KILN_DTYPE_INT32,
  int64 = KILN_DTYPE_INT64,
  uint8 = KILN_DTYPE_UINT8,
  boolean = KILN_DTYPE_BOOL,
  float64 = KILN_DTYPE_FLOAT64,
};

enum class Padding : int { valid = KILN_PADDING_VALID, same = KILN_PADDING_SAME };

/// What GradientTape::gradient gives for a source the target does not depend on.
enum class Unconnected : int { none = KILN_UNCONNECTED_NONE, zero = KILN_UNCONNECTED_ZERO };

/// What a failing kiln call throws. code() is the C status code.
class Error : public std::runtime_error {
 public:
  Error(kiln_status_code code, const std::string &message) : std::runtime_error(message), code_(code) {}
  kiln_status_code code() const noexcept { return code_; }

 private:
  kiln_status_code code_;
};

/// A bfloat16 value: the upper 16 bits of a float32. From float it rounds to nearest even
/// (as kiln's cast does); NaN stays a quiet NaN.
struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  explicit bfloat16(float f) noexcept {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = static_cast<uint16_t>((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  explicit operator float() const noexcept {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static bfloat16 from_bits(uint16_t b) noexcept {
    bfloat16 v;
    v.bits = b;
    return v;
  }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 must be two bytes, as kiln stores it");

namespace detail {
/// Throws kiln::Error for a non-NULL status and frees it.
inline void check(kiln_status *status) {
  if (status) {
    kiln_status_code code = kiln_status_get_code(status);
    std::string message = kiln_status_get_message(status);
    kiln_status_free(status);
    throw Error(code, message);
  }
}
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::float32; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::bfloat16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::int64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::uint8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <> struct dtype_of<double> { static constexpr DType value = DType::float64; };
// A C getter's borrowed string (a name), which is NULL for an empty handle: INVALID_ARGUMENT
// naming the method then, as an empty Tensor's methods give, not a std::string made from NULL.
inline std::string handle_string(const char *s, const char *what) {
  if (!s) throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string(what) + ": the handle is empty");
  return s;
}
inline const char *dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::bfloat16: return "bfloat16";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::uint8: return "uint8";
    case DType::boolean: return "bool";
    case DType::float64: return "float64";
  }
  return "invalid";
}
// The C enums. A value outside a C enum's range is undefined behaviour in C++, so an
// invalid one is refused here, before it is converted.
template <typename C, typename E>
C checked_enum(E e, int lo, int hi, const char *op, const char *what, const char *expected) {
  const int v = static_cast<int>(e);
  if (v < lo || v > hi)
    throw Error(KILN_STATUS_INVALID_ARGUMENT,
                std::string(op) + ": " + what + " " + std::to_string(v) + " is not valid; expected " + expected);
  return static_cast<C>(v);
}
inline kiln_dtype to_c(DType d, const char *op) {
  return checked_enum<kiln_dtype>(d, KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT64, op, "dtype", "1 (float32) to 7 (float64)");
}
inline kiln_padding to_c(Padding p, const char *op) {
  return checked_enum<kiln_padding>(p, KILN_PADDING_VALID, KILN_PADDING_SAME, op, "padding", "valid or same");
}
inline kiln_unconnected to_c(Unconnected u, const char *op) {
  return checked_enum<kiln_unconnected>(u, KILN_UNCONNECTED_NONE, KILN_UNCONNECTED_ZERO, op, "unconnected",
                                        "none or zero");
}

/// How each C handle type is freed and, where the C API can, cloned (a new handle to the
/// same object). One specialisation per handle type; handle<T> below does the rest.
template <typename T>
struct handle_traits;
template <>
struct handle_traits<kiln_tensor> {
  static void destroy(kiln_tensor *h) noexcept { kiln_tensor_free(h); }
  static kiln_status *clone(kiln_tensor **out, const kiln_tensor *h) { return kiln_tensor_clone(out, h); }
};
template <>
struct handle_traits<kiln_variable> {
  static void destroy(kiln_variable *h) noexcept { kiln_variable_free(h); }
  static kiln_status *clone(kiln_variable **out, const kiln_variable *h) { return kiln_variable_clone(out, h); }
};
template <>
struct handle_traits<kiln_config> {
  static void destroy(kiln_config *h) noexcept { kiln_config_free(h); }
  static kiln_status *clone(kiln_config **out, const kiln_config *h) { return kiln_config_clone(out, h); }
};
template <>
struct handle_traits<kiln_layer> {
  static void destroy(kiln_layer *h) noexcept { kiln_layer_free(h); }
  static kiln_status *clone(kiln_layer **out, const kiln_layer *h) { return kiln_layer_clone(out, h); }
};
template <>
struct handle_traits<kiln_tensor_list> {
  static void destroy(kiln_tensor_list *h) noexcept { kiln_tensor_list_free(h); }
};
template <>
struct handle_traits<kiln_summary_writer> {
  static void destroy(kiln_summary_writer *h) noexcept { kiln_summary_writer_free(h); }
  static kiln_status *clone(kiln_summary_writer **out, const kiln_summary_writer *h) {
    return kiln_summary_writer_clone(out, h);
  }
};
template <>
struct handle_traits<kiln_tape> {
  static void destroy(kiln_tape *h) noexcept { kiln_tape_free(h); }
  // No clone: a tape is one recording, owned by one object (move-only).
};

/// The one owning wrapper of a C handle (as dnnl.hpp's handle<T, traits>): frees it on
/// destruction; copying makes a new C handle to the same object (Traits::clone), so every
/// copy owns exactly one handle; types without clone are move-only.
template <typename T, typename Traits = handle_traits<T>>
class handle {
 public:
  handle() = default;
  /// Takes ownership of a C handle.
  explicit handle(T *h) noexcept : h_(h) {}
  handle(const handle &o) : h_(nullptr) {
    if (o.h_) check(Traits::clone(&h_, o.h_));
  }
  handle(handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  handle &operator=(const handle &o) {
    if (this != &o) *this = handle(o);
    return *this;
  }
  /// Leaves o empty, as the move constructor does.
  handle &operator=(handle &&o) noexcept {
    if (this != &o) {
      Traits::destroy(h_);
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~handle() { Traits::destroy(h_); }

  bool valid() const noexcept { return h_ != nullptr; }
  /// The C handle, still owned by this object.
  T *get() const noexcept { return h_; }
  /// Gives up ownership of the C handle.
  T *release() noexcept { return std::exchange(h_, nullptr); }

 private:
  T *h_ = nullptr;
};
}  // namespace detail

/// An immutable tensor value. Copies are cheap and share the value.
class Tensor : public detail::handle<kiln_tensor> {
 public:
  /// An empty (null) tensor; valid() is false.
  Tensor() = default;
  /// Takes ownership of a C handle.
  explicit Tensor(kiln_tensor *h) noexcept : handle(h) {}

  /// A tensor holding a copy of raw row-major data.
  static Tensor from_data(DType dtype, const Dims &dims, const void *data, size_t num_bytes) {
    kiln_tensor *h = nullptr;
    detail::check(kiln_tensor_create(&h, detail::to_c(dtype, "Tensor::from_data"), dims.data(),
                                     dims.size(), data, num_bytes));
    return Tensor(h);
  }
  /// A tensor over the caller's buffer, without a copy (kiln_tensor_create_from_buffer): kiln
  /// reads data until the last reference goes, then calls release once, on some thread. The
  /// caller must not change the buffer meanwhile. On failure this throws and release is not
  /// called: the buffer stays the caller's.
  static Tensor from_buffer(DType dtype, const Dims &dims, void *data, size_t num_bytes,
                            std::function<void()> release = nullptr) {
    auto *holder = new std::function<void()>(std::move(release));
    kiln_tensor *h = nullptr;
    kiln_status *st = nullptr;
    try {
      st = kiln_tensor_create_from_buffer(&h, detail::to_c(dtype, "Tensor::from_buffer"), dims.data(),
                                          dims.size(), data, num_bytes, &Tensor::release_buffer, holder);
    } catch (...) {
      delete holder;
      throw;
    }
    if (st) delete holder;
    detail::check(st);
    return Tensor(h);
  }
  /// A tensor that takes over `values` without a copy (the vector lives until the tensor goes).
  template <typename T, typename = std::enable_if_t<!std::is_same_v<T, bool>>>
  static Tensor from_vector(std::vector<T> &&values, const Dims &dims) {
    auto owned = std::make_shared<std::vector<T>>(std::move(values));
    return from_buffer(detail::dtype_of<T>::value, dims, owned->data(), owned->size() * sizeof(T),
                       [owned]() mutable { owned.reset(); });
  }
  /// A tensor holding a copy of `values` with shape `dims`.
  template <typename T>
  static Tensor from_vector(const std::vector<T> &values, const Dims &dims) {
    if constexpr (std::is_same_v<T, bool>) {
      std::vector<uint8_t> bytes(values.begin(), values.end());
      return from_data(DType::boolean, dims, bytes.data(), bytes.size());
    } else {
      return from_data(detail::dtype_of<T>::value, dims, values.data(), values.size() * sizeof(T));
    }
  }
  /// As above, for a braced list: from_vector({1.f, 2.f}, {2}).
  template <typename T>
  static Tensor from_vector(std::initializer_list<T> values, const Dims &dims) {
    return from_vector(std::vector<T>(values), dims);
  }
  /// A scalar.
  template <typename T>
  static Tensor scalar(T value) {
    return from_vector(std::vector<T>{value}, {});
  }

  DType dtype() const { return static_cast<DType>(kiln_tensor_get_dtype(require())); }
  /// The deleter from_buffer gives C (public for C linkage's sake; not for callers).
  static void release_buffer(void *, void *user_data) noexcept {
    std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()> *>(user_data));
    try {
      if (*f) (*f)();
    } catch (...) {  // it runs inside kiln, on any thread: an exception has nowhere to go
    }
  }
  /// Keras's _keras_mask: the mask a masking layer (Embedding with mask_zero, Masking, ...) gave
  /// this output, which the next layer called on it, the compiled loss and the metrics use; an
  /// empty Tensor when there is none.
  Tensor keras_mask() const {
    kiln_tensor *m = nullptr;
    detail::check(kiln_tensor_get_keras_mask(&m, require()));
    return Tensor(m);
  }
  /// The same value carrying `mask` (an empty Tensor: none), as setting _keras_mask in Keras.
  Tensor with_keras_mask(const Tensor &mask) const {
    kiln_tensor *t = nullptr;
    detail::check(kiln_tensor_with_keras_mask(&t, require(), mask.get()));
    return Tensor(t);
  }
  int rank() const { return kiln_tensor_get_rank(require()); }
  Dims shape() const {
    const int64_t *d = kiln_tensor_get_dims(require());
    return Dims(d, d + rank());
  }
  int64_t num_elements() const { return kiln_tensor_get_num_elements(require()); }
  size_t byte_size() const { return kiln_tensor_get_byte_size(require()); }
  /// Borrowed pointer to the data, valid while this Tensor lives.
  template <typename T>
  const T *data() const {
    return static_cast<const T *>(kiln_tensor_get_data(require()));
  }
  /// A copy of the data. T must be the dtype's type (float, bfloat16, int32_t, int64_t,
  /// uint8_t, bool); a bool tensor may also be read as uint8_t (0 or 1).
  template <typename T>
  std::vector<T> to_vector() const {
    if constexpr (std::is_same_v<T, bool>) {
      require_dtype(DType::boolean, "bool");
      std::vector<uint8_t> bytes = to_vector<uint8_t>();
      return std::vector<bool>(bytes.begin(), bytes.end());
    } else {
      if (!(std::is_same_v<T, uint8_t> && dtype() == DType::boolean))
        require_dtype(detail::dtype_of<T>::value, detail::dtype_name(detail::dtype_of<T>::value));
      std::vector<T> out(static_cast<size_t>(num_elements()));
      if (!out.empty()) detail::check(kiln_tensor_copy_to(get(), out.data(), byte_size()));
      return out;
    }
  }
  /// The single value of a one-element tensor.
  template <typename T>
  T item() const {
    std::vector<T> v = to_vector<T>();
    if (v.size() != 1) throw Error(KILN_STATUS_INVALID_ARGUMENT, "Tensor::item: tensor has " +
                                                                     std::to_string(v.size()) + " elements; expected 1");
    return v[0];
  }

 private:
  const kiln_tensor *require() const {
    if (!valid()) throw Error(KILN_STATUS_INVALID_ARGUMENT, "kiln::Tensor: the tensor is empty");
    return get();
  }
  void require_dtype(DType want, const char *type) const {
    if (dtype() != want)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string("Tensor::to_vector: the tensor is ") +
                                                    detail::dtype_name(dtype()) + "; cannot read it as " + type);
  }
};

namespace detail {
template <typename F, typename... Args>
inline Tensor make(F fn, Args... args) {
  kiln_tensor *out = nullptr;
  check(fn(&out, args...));
  return Tensor(out);
}
inline std::vector<const kiln_tensor *> handles(const std::vector<Tensor> &ts) {
  std::vector<const kiln_tensor *> hs;
  hs.reserve(ts.size());
  for (const Tensor &t : ts) hs.push_back(t.get());
  return hs;
}
inline size_t rank_of(const Dims &d) { return d.size(); }
}  // namespace detail

// ---- library ----
/// The library version string.
inline std::string version() { return kiln_version(); }
/// The ABI major version of the loaded library (compare with KILN_ABI_VERSION).
inline int abi_version() { return kiln_abi_version(); }
/// Sets the global seed (tf.random.set_seed).
inline void set_seed(uint64_t seed) { kiln_set_seed(seed); }
/// Sets the kernel thread count.
inline void set_num_threads(int n) { detail::check(kiln_set_num_threads(n)); }
/// This thread's kernel thread count: its override, else the global count (1 where it forked, in a child).
inline int num_threads() { return kiln_get_num_threads(); }
/// Overrides the kernel thread count for the calling thread only (0 removes the override), e.g.
/// input-pipeline workers at 1 thread beside a training thread using every core (OpenMP teams are
/// per calling thread). Throws kiln::Error (INVALID_ARGUMENT) outside 0..max(64, 4 x processors).
inline void set_num_threads_for_this_thread(int n) { detail::check(kiln_set_num_threads_for_this_thread(n)); }
/// The calling thread's override; 0 when it has none.
inline int num_threads_for_this_thread() { return kiln_get_num_threads_for_this_thread(); }
/// Sets the calling thread's kernel thread count for its lifetime and restores the previous
/// override (or none) on destruction. Use it on the thread that created it.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int n) : previous_(num_threads_for_this_thread()) { set_num_threads_for_this_thread(n); }
  ~ThreadCountScope() { kiln_status_free(kiln_set_num_threads_for_this_thread(previous_)); }
  ThreadCountScope(const ThreadCountScope &) = delete;
  ThreadCountScope &operator=(const ThreadCountScope &) = delete;

 private:
  int previous_;
};

struct PrimitiveCacheStats {
  int64_t hits = 0, misses = 0, size = 0;
};
/// oneDNN primitive cache counters.
inline PrimitiveCacheStats primitive_cache_stats() {
  PrimitiveCacheStats s;
  kiln_primitive_cache_stats(&s.hits, &s.misses, &s.size);
  return s;
}
struct AllocatorStats {
  int64_t system_allocs = 0, cache_hits = 0;
};
/// Tensor buffer allocator counters.
inline AllocatorStats allocator_stats() {
  AllocatorStats s;
  kiln_allocator_stats(&s.system_allocs, &s.cache_hits);
  return s;
}
/// Returns every cached free tensor buffer to the system (torch.cuda.empty_cache); returns the
/// bytes released.
inline size_t allocator_release_cached() { return kiln_allocator_release_cached(); }

// ---- creation ----
inline Tensor zeros(const Dims &d, DType t = DType::float32) {
  return detail::make(kiln_zeros, d.data(), detail::rank_of(d), detail::to_c(t, "zeros"));
}
inline Tensor ones(const Dims &d, DType t = DType::float32) {
  return detail::make(kiln_ones, d.data(), detail::rank_of(d), detail::to_c(t, "ones"));
}
inline Tensor fill(const Dims &d, double value, DType t = DType::float32) {
  return detail::make(kiln_fill, d.data(), detail::rank_of(d), value, detail::to_c(t, "fill"));
}
inline Tensor range(double start, double limit, double delta = 1, DType t = DType::float32) {
  return detail::make(kiln_range, start, limit, delta, detail::to_c(t, "range"));
}
/// fill and range over exact 64-bit integers (beyond 2^53, where double rounds).
inline Tensor fill_int64(const Dims &d, int64_t value, DType t = DType::int64) {
  return detail::make(kiln_fill_int64, d.data(), detail::rank_of(d), value, detail::to_c(t, "fill_int64"));
}
inline Tensor range_int64(int64_t start, int64_t limit, int64_t delta = 1, DType t = DType::int64) {
  return detail::make(kiln_range_int64, start, limit, delta, detail::to_c(t, "range_int64"));
}
inline Tensor random_uniform(const Dims &d, float minval = 0, float maxval = 1, int64_t seed = -1) {
  return detail::make(kiln_random_uniform, d.data(), detail::rank_of(d), minval, maxval, seed);
}
/// tf.random.uniform with a floating dtype (float32, bfloat16, float64); kiln_random_uniform_float.
inline Tensor random_uniform(const Dims &d, DType t, double minval = 0, double maxval = 1,
                             int64_t seed = -1) {
  return detail::make(kiln_random_uniform_float, d.data(), detail::rank_of(d), minval, maxval,
                      detail::to_c(t, "random_uniform"), seed);
}
/// tf.random.uniform with an integer dtype (int32, int64): values in [minval, maxval);
/// kiln_random_uniform_int.
inline Tensor random_uniform_int(const Dims &d, DType t, int64_t minval, int64_t maxval, int64_t seed = -1) {
  return detail::make(kiln_random_uniform_int, d.data(), detail::rank_of(d), minval, maxval,
                      detail::to_c(t, "random_uniform_int"), seed);
}
inline Tensor random_normal(const Dims &d, float mean = 0, float stddev = 1, int64_t seed = -1) {
  return detail::make(kiln_random_normal, d.data(), detail::rank_of(d), mean, stddev, seed);
}
/// tf.random.gamma: Gamma(alpha) values divided by the rate beta.
inline Tensor random_gamma(const Dims &d, double alpha, double beta = 1.0, int64_t seed = -1) {
  return detail::make(kiln_random_gamma, d.data(), detail::rank_of(d), alpha, beta, seed);
}
/// keras.random.beta: Beta(alpha, beta) values.
inline Tensor random_beta(const Dims &d, double alpha, double beta, int64_t seed = -1) {
  return detail::make(kiln_random_beta, d.data(), detail::rank_of(d), alpha, beta, seed);
}
/// keras.random.shuffle: x's slices along axis in a random order (tf.random.shuffle: axis 0).
inline Tensor random_shuffle(const Tensor &x, int64_t axis = 0, int64_t seed = -1) {
  return detail::make(kiln_random_shuffle, x.get(), axis, seed);
}
inline Tensor truncated_normal(const Dims &d, float mean = 0, float stddev = 1, int64_t seed = -1) {
  return detail::make(kiln_truncated_normal, d.data(), detail::rank_of(d), mean, stddev, seed);
}

// ---- elementwise ----
#define KILN_HPP_BINARY(name) \
  inline Tensor name(const Tensor &a, const Tensor &b) { return detail::make(kiln_##name, a.get(), b.get()); }
#define KILN_HPP_UNARY(name) \
  inline Tensor name(const Tensor &x) { return detail::make(kiln_##name, x.get()); }
KILN_HPP_BINARY(add)
KILN_HPP_BINARY(sub)
KILN_HPP_BINARY(mul)
KILN_HPP_BINARY(div)
KILN_HPP_BINARY(truediv)
KILN_HPP_BINARY(maximum)
KILN_HPP_BINARY(minimum)
KILN_HPP_BINARY(pow)
KILN_HPP_BINARY(equal)
KILN_HPP_BINARY(not_equal)
KILN_HPP_BINARY(greater)
KILN_HPP_BINARY(greater_equal)
KILN_HPP_BINARY(less)
KILN_HPP_BINARY(less_equal)
KILN_HPP_BINARY(logical_and)
KILN_HPP_BINARY(logical_or)
KILN_HPP_BINARY(logical_xor)
KILN_HPP_UNARY(neg)
KILN_HPP_UNARY(abs)
KILN_HPP_UNARY(exp)
KILN_HPP_UNARY(log)
KILN_HPP_UNARY(sqrt)
KILN_HPP_UNARY(rsqrt)
KILN_HPP_UNARY(square)
KILN_HPP_UNARY(tanh)
KILN_HPP_UNARY(sigmoid)
KILN_HPP_UNARY(relu)
KILN_HPP_UNARY(softplus)
KILN_HPP_UNARY(swish)
KILN_HPP_UNARY(logical_not)
KILN_HPP_UNARY(stop_gradient)
KILN_HPP_UNARY(log1p)
KILN_HPP_UNARY(expm1)
KILN_HPP_UNARY(floor)
KILN_HPP_UNARY(round)
KILN_HPP_UNARY(sign)
KILN_HPP_UNARY(sin)
KILN_HPP_UNARY(cos)
KILN_HPP_UNARY(relu6)
KILN_HPP_UNARY(selu)
#undef KILN_HPP_BINARY
#undef KILN_HPP_UNARY

inline Tensor gelu(const Tensor &x, bool approximate = false) { return detail::make(kiln_gelu, x.get(), approximate); }
inline Tensor elu(const Tensor &x, float alpha = 1.0f) { return detail::make(kiln_elu, x.get(), alpha); }
inline Tensor leaky_relu(const Tensor &x, float alpha = 0.2f) { return detail::make(kiln_leaky_relu, x.get(), alpha); }
inline Tensor where(const Tensor &c, const Tensor &x, const Tensor &y) {
  return detail::make(kiln_where, c.get(), x.get(), y.get());
}
inline Tensor cast(const Tensor &x, DType t) { return detail::make(kiln_cast, x.get(), detail::to_c(t, "cast")); }
/// Number bounds, converted to x's dtype as TF does (a float64 x keeps them in float64).
inline Tensor clip_by_value(const Tensor &x, double lo, double hi) {
  if (x.valid() && x.dtype() == DType::float64)
    return detail::make(kiln_clip_by_value_tensor, x.get(), Tensor::scalar<double>(lo).get(),
                        Tensor::scalar<double>(hi).get());
  return detail::make(kiln_clip_by_value, x.get(), static_cast<float>(lo), static_cast<float>(hi));
}
/// tf.clip_by_value with tensor bounds of x's dtype that broadcast to x's shape (see
/// kiln_clip_by_value_tensor); differentiable in x and the bounds.
inline Tensor clip_by_value(const Tensor &x, const Tensor &lo, const Tensor &hi) {
  return detail::make(kiln_clip_by_value_tensor, x.get(), lo.get(), hi.get());
}
/// Integer bounds: for an int32 or int64 x, as TF, the bounds in x's dtype exactly (float bounds
/// round past 2^24); INVALID_ARGUMENT for a bound outside x's range. Otherwise the float form.
template <typename I, typename = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
inline Tensor clip_by_value(const Tensor &x, I lo, I hi) {
  const DType d = x.valid() ? x.dtype() : DType::float32;
  if (d != DType::int32 && d != DType::int64)
    return clip_by_value(x, static_cast<double>(lo), static_cast<double>(hi));
  auto bound = [d](I v, const char *what) {
    const bool fits =
        !(std::is_unsigned_v<I> && static_cast<uint64_t>(v) > static_cast<uint64_t>(INT64_MAX)) &&
        (d == DType::int64 || (static_cast<int64_t>(v) >= INT32_MIN && static_cast<int64_t>(v) <= INT32_MAX));
    if (!fits)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string("clip_by_value: argument '") + what + "' is " +
                                                    std::to_string(v) +
                                                    "; expected a whole number in the range of x's dtype " +
                                                    (d == DType::int32 ? "int32" : "int64"));
    return d == DType::int32 ? Tensor::scalar<int32_t>(static_cast<int32_t>(v))
                             : Tensor::scalar<int64_t>(static_cast<int64_t>(v));
  };
  return clip_by_value(x, bound(lo, "clip_value_min"), bound(hi, "clip_value_max"));
}

namespace detail {
template <typename S>
using if_scalar = std::enable_if_t<std::is_arithmetic<S>::value && !std::is_same<S, bool>::value, int>;

// A C++ number beside a tensor, as a Python number beside a tf.Tensor: it takes a floating
// tensor's dtype (a double beside a float64 tensor keeps every bit), and an integer beside an
// integer tensor takes that tensor's dtype (a value it cannot hold is INVALID_ARGUMENT). A
// floating number beside an integer tensor is a float32 scalar, which the op refuses, naming both
// dtypes, as TF refuses int32 + 0.5.
template <typename S>
Tensor scalar_beside(S v, const Tensor &t) {
  const DType d = t.valid() ? t.dtype() : DType::float32;  // an empty t fails in the op, naming it
  if (d == DType::float64 || d == DType::bfloat16) return fill({}, static_cast<double>(v), d);
  if (std::is_integral<S>::value && d != DType::float32 && d != DType::boolean) {
    if (std::is_unsigned<S>::value && static_cast<uint64_t>(v) > static_cast<uint64_t>(INT64_MAX))
      throw Error(KILN_STATUS_INVALID_ARGUMENT, "scalar " + std::to_string(v) + " beside a " +
                                                    std::string(dtype_name(d)) +
                                                    " tensor: int64 cannot hold it");
    return fill_int64({}, static_cast<int64_t>(v), d);
  }
  return Tensor::scalar(static_cast<float>(v));
}
}  // namespace detail

inline Tensor operator+(const Tensor &a, const Tensor &b) { return add(a, b); }
inline Tensor operator-(const Tensor &a, const Tensor &b) { return sub(a, b); }
inline Tensor operator*(const Tensor &a, const Tensor &b) { return mul(a, b); }
/// Python's / (tf.math.truediv): int32 / int32 and int64 / int64 give float64.
inline Tensor operator/(const Tensor &a, const Tensor &b) { return truediv(a, b); }
inline Tensor operator-(const Tensor &x) { return neg(x); }
/// A number beside a tensor, as a Python number beside a tf.Tensor (detail::scalar_beside):
/// x * 0.5 keeps a float64 x's precision, i + 1 stays an int32 i's dtype.
template <typename S, detail::if_scalar<S> = 0>
Tensor operator+(const Tensor &a, S b) {
  return add(a, detail::scalar_beside(b, a));
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator-(const Tensor &a, S b) {
  return sub(a, detail::scalar_beside(b, a));
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator*(const Tensor &a, S b) {
  return mul(a, detail::scalar_beside(b, a));
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator/(const Tensor &a, S b) {
  return truediv(a, detail::scalar_beside(b, a));
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator+(S a, const Tensor &b) {
  return add(detail::scalar_beside(a, b), b);
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator-(S a, const Tensor &b) {
  return sub(detail::scalar_beside(a, b), b);
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator*(S a, const Tensor &b) {
  return mul(detail::scalar_beside(a, b), b);
}
template <typename S, detail::if_scalar<S> = 0>
Tensor operator/(S a, const Tensor &b) {
  return truediv(detail::scalar_beside(a, b), b);
}

/// Comparisons, elementwise with broadcasting, give a bool tensor, as tf.Tensor's (and
/// libtorch's): (x > 0.5), (labels == predictions). A number beside a tensor as above.
#define KILN_HPP_COMPARE(op, fn)                                                   \
  inline Tensor operator op(const Tensor &a, const Tensor &b) { return fn(a, b); } \
  template <typename S, detail::if_scalar<S> = 0>                                  \
  Tensor operator op(const Tensor &a, S b) {                                       \
    return fn(a, detail::scalar_beside(b, a));                                     \
  }                                                                                \
  template <typename S, detail::if_scalar<S> = 0>                                  \
  Tensor operator op(S a, const Tensor &b) {                                       \
    return fn(detail::scalar_beside(a, b), b);                                     \
  }
KILN_HPP_COMPARE(==, equal)
KILN_HPP_COMPARE(!=, not_equal)
KILN_HPP_COMPARE(<, less)
KILN_HPP_COMPARE(<=, less_equal)
KILN_HPP_COMPARE(>, greater)
KILN_HPP_COMPARE(>=, greater_equal)
#undef KILN_HPP_COMPARE
/// Logical operators on bool tensors, as tf.Tensor's &, |, ^ and ~ (other dtypes are
/// INVALID_ARGUMENT, naming the dtype).
inline Tensor operator&(const Tensor &a, const Tensor &b) { return logical_and(a, b); }
inline Tensor operator|(const Tensor &a, const Tensor &b) { return logical_or(a, b); }
inline Tensor operator^(const Tensor &a, const Tensor &b) { return logical_xor(a, b); }
inline Tensor operator~(const Tensor &x) { return logical_not(x); }

// ---- matmul, reductions, softmax ----
inline Tensor matmul(const Tensor &a, const Tensor &b, bool transpose_a = false, bool transpose_b = false) {
  return detail::make(kiln_matmul, a.get(), b.get(), transpose_a, transpose_b);
}
#define KILN_HPP_REDUCE(name)                                                               \
  inline Tensor name(const Tensor &x, const Dims &axes = {}, bool keepdims = false) {       \
    return detail::make(kiln_##name, x.get(), axes.data(), axes.size(), keepdims);          \
  }
KILN_HPP_REDUCE(sum)
KILN_HPP_REDUCE(mean)
KILN_HPP_REDUCE(max)
KILN_HPP_REDUCE(min)
#undef KILN_HPP_REDUCE
/// tf.math.argmax: the index of the largest value along axis (default 0, as TF's), int64; the first on ties.
inline Tensor argmax(const Tensor &x, int64_t axis = 0) { return detail::make(kiln_argmax, x.get(), axis); }
inline Tensor softmax(const Tensor &x, int64_t axis = -1) { return detail::make(kiln_softmax, x.get(), axis); }
inline Tensor log_softmax(const Tensor &x, int64_t axis = -1) {
  return detail::make(kiln_log_softmax, x.get(), axis);
}

// ---- normalisation, convolution, pooling ----
/// Normalises over `axes`, the trailing axes of x (default: the last); gamma and beta have their shape.
inline Tensor layer_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, float epsilon = 1e-3f,
                         const Dims &axes = {-1}) {
  return detail::make(kiln_layer_norm, x.get(), gamma.get(), beta.get(), axes.data(), axes.size(), epsilon);
}
struct BatchNormResult {
  Tensor y, mean, variance;
};
/// training: batch statistics (mean/variance may be empty Tensors); inference: the given ones.
inline BatchNormResult batch_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, const Tensor &mean,
                                  const Tensor &variance, bool training, float epsilon = 1e-3f) {
  kiln_tensor *y = nullptr, *m = nullptr, *v = nullptr;
  detail::check(kiln_batch_norm(&y, &m, &v, x.get(), gamma.get(), beta.get(), mean.get(), variance.get(), training,
                                epsilon));
  return {Tensor(y), Tensor(m), Tensor(v)};
}
/// Options of the convolutions, keyword style: Conv2dOptions().with_strides({2, 2}).with_padding(Padding::same).
/// Defaults: strides {1, 1}, dilations {1, 1}, VALID padding.
struct Conv2dOptions {
  Dims strides{1, 1};
  Dims dilations{1, 1};
  Padding padding = Padding::valid;
  Conv2dOptions &with_strides(const Dims &s) { strides = s; return *this; }
  Conv2dOptions &with_dilations(const Dims &d) { dilations = d; return *this; }
  Conv2dOptions &with_padding(Padding p) { padding = p; return *this; }
  /// The C struct; throws when strides or dilations do not hold 2 values.
  kiln_conv2d_options to_c(const char *op) const {
    if (strides.size() != 2 || dilations.size() != 2)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string(op) + ": strides and dilations need 2 values each");
    kiln_conv2d_options o;
    detail::check(kiln_conv2d_options_init(&o, sizeof o));
    o.strides[0] = strides[0], o.strides[1] = strides[1];
    o.dilations[0] = dilations[0], o.dilations[1] = dilations[1];
    o.padding = detail::to_c(padding, op);
    return o;
  }
};
/// Options of the poolings. Defaults: ksize {2, 2}, strides {2, 2}, VALID padding (Keras' MaxPool2D).
struct Pool2dOptions {
  Dims ksize{2, 2};
  Dims strides{2, 2};
  Padding padding = Padding::valid;
  Pool2dOptions &with_ksize(const Dims &k) { ksize = k; return *this; }
  Pool2dOptions &with_strides(const Dims &s) { strides = s; return *this; }
  Pool2dOptions &with_padding(Padding p) { padding = p; return *this; }
  /// The C struct; throws when ksize or strides do not hold 2 values.
  kiln_pool2d_options to_c(const char *op) const {
    if (ksize.size() != 2 || strides.size() != 2)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string(op) + ": ksize and strides need 2 values each");
    kiln_pool2d_options o;
    detail::check(kiln_pool2d_options_init(&o, sizeof o));
    o.ksize[0] = ksize[0], o.ksize[1] = ksize[1];
    o.strides[0] = strides[0], o.strides[1] = strides[1];
    o.padding = detail::to_c(padding, op);
    return o;
  }
};
inline Tensor conv2d(const Tensor &x, const Tensor &filter, const Conv2dOptions &options = {}) {
  const kiln_conv2d_options o = options.to_c("conv2d");
  return detail::make(kiln_conv2d, x.get(), filter.get(), &o);
}
/// Positional form, as tf.nn.conv2d(x, filter, strides, padding, dilations) without the [1, h, w, 1] form.
inline Tensor conv2d(const Tensor &x, const Tensor &filter, const Dims &strides, const Dims &dilations = {1, 1},
                     Padding padding = Padding::valid) {
  return conv2d(x, filter, Conv2dOptions{strides, dilations, padding});
}
/// tf.nn.conv2d_transpose: filter [KH, KW, O, C], output_shape [N, OH, OW, O].
inline Tensor conv2d_transpose(const Tensor &x, const Tensor &filter, const Dims &output_shape,
                               const Conv2dOptions &options = {}) {
  const kiln_conv2d_options o = options.to_c("conv2d_transpose");
  return detail::make(kiln_conv2d_transpose, x.get(), filter.get(), output_shape.data(), output_shape.size(), &o);
}
/// tf.nn.depthwise_conv2d: filter [KH, KW, C, M] -> C * M channels.
inline Tensor depthwise_conv2d(const Tensor &x, const Tensor &filter, const Conv2dOptions &options = {}) {
  const kiln_conv2d_options o = options.to_c("depthwise_conv2d");
  return detail::make(kiln_depthwise_conv2d, x.get(), filter.get(), &o);
}
/// tf.nn.conv1d: x [N, W, C], filter [KW, C, O].
inline Tensor conv1d(const Tensor &x, const Tensor &filter, int64_t stride = 1, Padding padding = Padding::valid,
                     int64_t dilation = 1) {
  const kiln_conv2d_options o = Conv2dOptions{{stride, 1}, {dilation, 1}, padding}.to_c("conv1d");
  return detail::make(kiln_conv1d, x.get(), filter.get(), &o);
}
inline Tensor max_pool2d(const Tensor &x, const Pool2dOptions &options = {}) {
  const kiln_pool2d_options o = options.to_c("max_pool2d");
  return detail::make(kiln_max_pool2d, x.get(), &o);
}
inline Tensor max_pool2d(const Tensor &x, const Dims &ksize, const Dims &strides, Padding padding = Padding::valid) {
  return max_pool2d(x, Pool2dOptions{ksize, strides, padding});
}
inline Tensor avg_pool2d(const Tensor &x, const Pool2dOptions &options = {}) {
  const kiln_pool2d_options o = options.to_c("avg_pool2d");
  return detail::make(kiln_avg_pool2d, x.get(), &o);
}
inline Tensor avg_pool2d(const Tensor &x, const Dims &ksize, const Dims &strides, Padding padding = Padding::valid) {
  return avg_pool2d(x, Pool2dOptions{ksize, strides, padding});
}

/// Options of the 3-D convolutions. Defaults: strides {1, 1, 1}, dilations {1, 1, 1}, VALID padding.
struct Conv3dOptions {
  Dims strides{1, 1, 1};
  Dims dilations{1, 1, 1};
  Padding padding = Padding::valid;
  Conv3dOptions &with_strides(const Dims &s) {
    strides = s;
    return *this;
  }
  Conv3dOptions &with_dilations(const Dims &d) {
    dilations = d;
    return *this;
  }
  Conv3dOptions &with_padding(Padding p) {
    padding = p;
    return *this;
  }
  /// The C struct; throws when strides or dilations do not hold 3 values.
  kiln_conv3d_options to_c(const char *op) const {
    if (strides.size() != 3 || dilations.size() != 3)
      throw Error(KILN_STATUS_INVALID_ARGUMENT,
                  std::string(op) + ": strides and dilations need 3 values each");
    kiln_conv3d_options o;
    detail::check(kiln_conv3d_options_init(&o, sizeof o));
    for (size_t i = 0; i < 3; ++i) o.strides[i] = strides[i], o.dilations[i] = dilations[i];
    o.padding = detail::to_c(padding, op);
    return o;
  }
};
/// Options of the 3-D poolings. Defaults: ksize {2, 2, 2}, strides {2, 2, 2}, VALID padding.
struct Pool3dOptions {
  Dims ksize{2, 2, 2};
  Dims strides{2, 2, 2};
  Padding padding = Padding::valid;
  Pool3dOptions &with_ksize(const Dims &k) {
    ksize = k;
    return *this;
  }
  Pool3dOptions &with_strides(const Dims &s) {
    strides = s;
    return *this;
  }
  Pool3dOptions &with_padding(Padding p) {
    padding = p;
    return *this;
  }
  /// The C struct; throws when ksize or strides do not hold 3 values.
  kiln_pool3d_options to_c(const char *op) const {
    if (ksize.size() != 3 || strides.size() != 3)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string(op) + ": ksize and strides need 3 values each");
    kiln_pool3d_options o;
    detail::check(kiln_pool3d_options_init(&o, sizeof o));
    for (size_t i = 0; i < 3; ++i) o.ksize[i] = ksize[i], o.strides[i] = strides[i];
    o.padding = detail::to_c(padding, op);
    return o;
  }
};
/// tf.nn.conv3d: x [N, D, H, W, C], filter [KD, KH, KW, C, O].
inline Tensor conv3d(const Tensor &x, const Tensor &filter, const Conv3dOptions &options = {}) {
  const kiln_conv3d_options o = options.to_c("conv3d");
  return detail::make(kiln_conv3d, x.get(), filter.get(), &o);
}
/// tf.nn.conv3d_transpose: filter [KD, KH, KW, O, C], output_shape [N, OD, OH, OW, O].
inline Tensor conv3d_transpose(const Tensor &x, const Tensor &filter, const Dims &output_shape,
                               const Conv3dOptions &options = {}) {
  const kiln_conv3d_options o = options.to_c("conv3d_transpose");
  return detail::make(kiln_conv3d_transpose, x.get(), filter.get(), output_shape.data(), output_shape.size(),
                      &o);
}
/// tf.nn.max_pool3d over [N, D, H, W, C].
inline Tensor max_pool3d(const Tensor &x, const Pool3dOptions &options = {}) {
  const kiln_pool3d_options o = options.to_c("max_pool3d");
  return detail::make(kiln_max_pool3d, x.get(), &o);
}
/// tf.nn.avg_pool3d over [N, D, H, W, C] (padding not averaged in).
inline Tensor avg_pool3d(const Tensor &x, const Pool3dOptions &options = {}) {
  const kiln_pool3d_options o = options.to_c("avg_pool3d");
  return detail::make(kiln_avg_pool3d, x.get(), &o);
}

// ---- shape and indexing ----
inline Tensor reshape(const Tensor &x, const Dims &d) {
  return detail::make(kiln_reshape, x.get(), d.data(), detail::rank_of(d));
}
inline Tensor transpose(const Tensor &x, const Dims &perm = {}) {
  return detail::make(kiln_transpose, x.get(), perm.data(), perm.size());
}
inline Tensor concat(const std::vector<Tensor> &values, int64_t axis) {
  auto hs = detail::handles(values);
  return detail::make(kiln_concat, hs.data(), hs.size(), axis);
}
inline Tensor stack(const std::vector<Tensor> &values, int64_t axis = 0) {
  auto hs = detail::handles(values);
  return detail::make(kiln_stack, hs.data(), hs.size(), axis);
}

// ---- gradient clipping, as tf.clip_by_norm / tf.linalg.global_norm / tf.clip_by_global_norm ----
namespace detail {
inline Tensor scalar_of(double v, DType t) { return cast(Tensor::scalar<double>(v), t); }
}  // namespace detail
/// t * clip_norm / max(||t||, clip_norm), the L2 norm over axes (all when empty), as TF computes it.
inline Tensor clip_by_norm(const Tensor &t, double clip_norm, const Dims &axes = {}) {
  const Tensor l2sum = sum(t * t, axes, true);
  const Tensor positive = greater(l2sum, detail::scalar_of(0, t.dtype()));
  const Tensor l2norm = where(positive, sqrt(where(positive, l2sum, detail::scalar_of(1, t.dtype()))), l2sum);
  const Tensor c = detail::scalar_of(clip_norm, t.dtype());
  return t * c / maximum(l2norm, c);
}
/// sqrt(sum of every tensor's squares), as TF sums them (each tensor's half sum of squares, then
/// those); invalid (empty) Tensors in the list are skipped.
inline Tensor global_norm(const std::vector<Tensor> &tensors) {
  std::vector<Tensor> halves;
  for (const Tensor &t : tensors)
    if (t.valid()) halves.push_back(sum(t * t) * detail::scalar_of(0.5, t.dtype()));
  if (halves.empty()) throw Error(KILN_STATUS_INVALID_ARGUMENT, "global_norm: no tensors in the list");
  const Tensor total = sum(stack(halves));
  return sqrt(total * detail::scalar_of(2.0, total.dtype()));
}
/// The tensors scaled by clip_norm / max(global norm, clip_norm), and the global norm (use_norm
/// when given); a non-finite norm makes every value NaN, as TF. Invalid Tensors stay invalid.
inline std::pair<std::vector<Tensor>, Tensor> clip_by_global_norm(const std::vector<Tensor> &tensors,
                                                                  double clip_norm,
                                                                  Tensor use_norm = Tensor()) {
  if (!use_norm.valid()) use_norm = global_norm(tensors);
  const Tensor one = detail::scalar_of(1, use_norm.dtype()),
               c = detail::scalar_of(clip_norm, use_norm.dtype());
  const Tensor scale = c * minimum(one / use_norm, one / c) + (use_norm - use_norm);
  std::vector<Tensor> out;
  for (const Tensor &t : tensors) out.push_back(t.valid() ? t * cast(scale, t.dtype()) : Tensor());
  return {out, use_norm};
}
/// Equal parts when sizes is empty (num_splits of them), otherwise one part per size.
inline std::vector<Tensor> split(const Tensor &x, const Dims &sizes, int64_t axis = 0, size_t num_splits = 0) {
  size_t n = sizes.empty() ? num_splits : sizes.size();
  if (n == 0) throw Error(KILN_STATUS_INVALID_ARGUMENT, "split: give sizes or num_splits >= 1");
  std::vector<kiln_tensor *> outs(n, nullptr);
  std::vector<Tensor> result;
  result.reserve(n);
  detail::check(kiln_split(outs.data(), n, x.get(), sizes.empty() ? nullptr : sizes.data(), axis));
  for (kiln_tensor *h : outs) result.emplace_back(h);
  return result;
}
inline Tensor slice(const Tensor &x, const Dims &begin, const Dims &size) {
  if (begin.size() != size.size()) throw Error(KILN_STATUS_INVALID_ARGUMENT, "slice: begin and size differ in length");
  return detail::make(kiln_slice, x.get(), begin.data(), size.data(), begin.size());
}
inline Tensor expand_dims(const Tensor &x, int64_t axis) { return detail::make(kiln_expand_dims, x.get(), axis); }
inline Tensor squeeze(const Tensor &x, const Dims &axes = {}) {
  return detail::make(kiln_squeeze, x.get(), axes.data(), axes.size());
}
inline Tensor broadcast_to(const Tensor &x, const Dims &d) {
  return detail::make(kiln_broadcast_to, x.get(), d.data(), detail::rank_of(d));
}
inline Tensor tile(const Tensor &x, const Dims &multiples) {
  return detail::make(kiln_tile, x.get(), multiples.data(), multiples.size());
}

// ---- indexing and padding (TF semantics) ----
/// tf.gather; batch_dims leading dims of params and indices are batch dims (axis >= batch_dims).
inline Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis = 0, int64_t batch_dims = 0) {
  return detail::make(kiln_gather, params.get(), indices.get(), axis, batch_dims);
}
/// tf.gather_nd: indices [..., K] address K dims of params after its batch_dims batch dims.
inline Tensor gather_nd(const Tensor &params, const Tensor &indices, int64_t batch_dims = 0) {
  return detail::make(kiln_gather_nd, params.get(), indices.get(), batch_dims);
}
/// tf.scatter_nd: zeros of shape with updates added at indices (duplicates accumulate).
inline Tensor scatter_nd(const Tensor &indices, const Tensor &updates, const Dims &shape) {
  return detail::make(kiln_scatter_nd, indices.get(), updates.get(), shape.data(), detail::rank_of(shape));
}
/// tf.tensor_scatter_nd_add: tensor + scatter_nd(indices, updates, tensor.shape()).
inline Tensor tensor_scatter_nd_add(const Tensor &tensor, const Tensor &indices, const Tensor &updates) {
  return detail::make(kiln_tensor_scatter_nd_add, tensor.get(), indices.get(), updates.get());
}
/// tf.boolean_mask: entries of tensor where mask (bool, covering dims axis..) is true.
inline Tensor boolean_mask(const Tensor &tensor, const Tensor &mask, int64_t axis = 0) {
  return detail::make(kiln_boolean_mask, tensor.get(), mask.get(), axis);
}
/// tf.one_hot: depth axis at axis (-1: last), values of dtype.
inline Tensor one_hot(const Tensor &indices, int64_t depth, double on_value = 1, double off_value = 0,
                      int64_t axis = -1, DType dtype = DType::float32) {
  return detail::make(kiln_one_hot, indices.get(), depth, on_value, off_value, axis, detail::to_c(dtype, "one_hot"));
}
enum class PadMode : int { constant = KILN_PAD_MODE_CONSTANT, reflect = KILN_PAD_MODE_REFLECT, symmetric = KILN_PAD_MODE_SYMMETRIC };
/// tf.pad: paddings {{before, after}, ...}, one pair per dim of x.
inline Tensor pad(const Tensor &x, const std::vector<std::pair<int64_t, int64_t>> &paddings,
                  PadMode mode = PadMode::constant, double constant_value = 0) {
  Dims flat;
  for (const auto &p : paddings) flat.insert(flat.end(), {p.first, p.second});
  const kiln_pad_mode m = detail::checked_enum<kiln_pad_mode>(mode, KILN_PAD_MODE_CONSTANT, KILN_PAD_MODE_SYMMETRIC, "pad",
                                                              "mode", "constant, reflect or symmetric");
  return detail::make(kiln_pad, x.get(), flat.data(), paddings.size(), m, constant_value);
}
/// tf.image.ResizeMethod's BILINEAR and NEAREST_NEIGHBOR.
enum class ResizeMethod : int { bilinear = KILN_RESIZE_BILINEAR, nearest = KILN_RESIZE_NEAREST };
/// tf.image.resize(images, {height, width}, method) without antialiasing: [N, H, W, C] or [H, W, C].
inline Tensor image_resize(const Tensor &images, const Dims &size,
                           ResizeMethod method = ResizeMethod::bilinear) {
  if (size.size() != 2)
    throw Error(KILN_STATUS_INVALID_ARGUMENT, "image_resize: size needs 2 values {height, width}");
  const kiln_resize_method m = detail::checked_enum<kiln_resize_method>(
      method, KILN_RESIZE_BILINEAR, KILN_RESIZE_NEAREST, "image_resize", "method", "bilinear or nearest");
  return detail::make(kiln_image_resize, images.get(), size[0], size[1], m);
}
/// TF's ImageProjectiveTransformV3 fill modes.
enum class FillMode : int {
  reflect = KILN_FILL_REFLECT,
  wrap = KILN_FILL_WRAP,
  constant = KILN_FILL_CONSTANT,
  nearest = KILN_FILL_NEAREST
};
/// keras.ops.image.affine_transform: images [N, H, W, C] or [H, W, C] resampled through transform [N, 8]
/// or [8] (output (x, y) reads ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1).
inline Tensor image_affine_transform(const Tensor &images, const Tensor &transform,
                                     ResizeMethod interpolation = ResizeMethod::bilinear,
                                     FillMode fill_mode = FillMode::constant, double fill_value = 0.0) {
  const kiln_resize_method m = detail::checked_enum<kiln_resize_method>(
      interpolation, KILN_RESIZE_BILINEAR, KILN_RESIZE_NEAREST, "image_affine_transform", "interpolation",
      "bilinear or nearest");
  const kiln_fill_mode f = detail::checked_enum<kiln_fill_mode>(
      fill_mode, KILN_FILL_REFLECT, KILN_FILL_NEAREST, "image_affine_transform", "fill_mode",
      "reflect, wrap, constant or nearest");
  return detail::make(kiln_image_affine_transform, images.get(), transform.get(), m, f, fill_value);
}
/// keras.ops.image.perspective_transform: images resampled through the homography taking start_points to
/// end_points ([4, 2] for every image or [N, 4, 2], (x, y) each), points outside reading fill_value.
inline Tensor image_perspective_transform(const Tensor &images, const Tensor &start_points,
                                          const Tensor &end_points,
                                          ResizeMethod interpolation = ResizeMethod::bilinear,
                                          double fill_value = 0.0) {
  const kiln_resize_method m = detail::checked_enum<kiln_resize_method>(
      interpolation, KILN_RESIZE_BILINEAR, KILN_RESIZE_NEAREST, "image_perspective_transform",
      "interpolation", "bilinear or nearest");
  return detail::make(kiln_image_perspective_transform, images.get(), start_points.get(), end_points.get(), m,
                      fill_value);
}
/// tf.image.rgb_to_hsv: the last axis (r, g, b) of floating images becomes (hue, saturation, value).
inline Tensor image_rgb_to_hsv(const Tensor &images) {
  return detail::make(kiln_image_rgb_to_hsv, images.get());
}
/// tf.image.hsv_to_rgb: (hue, saturation, value) in the last axis back to (r, g, b).
inline Tensor image_hsv_to_rgb(const Tensor &images) {
  return detail::make(kiln_image_hsv_to_rgb, images.get());
}
/// tf.image.rgb_to_grayscale: 0.2989 r + 0.5870 g + 0.1140 b, the last axis kept as 1.
inline Tensor image_rgb_to_grayscale(const Tensor &images) {
  return detail::make(kiln_image_rgb_to_grayscale, images.get());
}
inline Tensor dropout(const Tensor &x, float rate, bool training, int64_t seed = -1) {
  return detail::make(kiln_dropout, x.get(), rate, training, seed);
}
/// tf.nn.dropout with noise_shape: the mask is drawn in noise_shape (-1: x's dim) and broadcast over x.
inline Tensor dropout(const Tensor &x, float rate, bool training, int64_t seed, const Dims &noise_shape) {
  kiln_dropout_options o;
  kiln_dropout_options_init(&o);
  o.rate = rate;
  o.training = training;
  o.seed = seed;
  o.noise_shape = noise_shape.data();
  o.noise_rank = noise_shape.size();
  return detail::make(kiln_dropout_with_options, x.get(), static_cast<const kiln_dropout_options *>(&o));
}

// ---- stateless randomness: the same seed pair gives the same values on every call and thread ----
/// TF's `seed=[a, b]` of the stateless random ops.
using SeedPair = std::array<int64_t, 2>;
inline Tensor stateless_random_uniform(const Dims &d, SeedPair seed, float minval = 0, float maxval = 1) {
  return detail::make(kiln_stateless_random_uniform, d.data(), detail::rank_of(d), minval, maxval, seed[0],
                      seed[1]);
}
/// stateless_random_uniform with a floating dtype (float32, bfloat16, float64).
inline Tensor stateless_random_uniform(const Dims &d, SeedPair seed, DType t, double minval = 0,
                                       double maxval = 1) {
  return detail::make(kiln_stateless_random_uniform_float, d.data(), detail::rank_of(d), minval, maxval,
                      detail::to_c(t, "stateless_random_uniform"), seed[0], seed[1]);
}
/// stateless_random_uniform with an integer dtype (int32, int64): values in [minval, maxval).
inline Tensor stateless_random_uniform_int(const Dims &d, SeedPair seed, DType t, int64_t minval,
                                           int64_t maxval) {
  return detail::make(kiln_stateless_random_uniform_int, d.data(), detail::rank_of(d), minval, maxval,
                      detail::to_c(t, "stateless_random_uniform_int"), seed[0], seed[1]);
}
inline Tensor stateless_random_normal(const Dims &d, SeedPair seed, float mean = 0, float stddev = 1) {
  return detail::make(kiln_stateless_random_normal, d.data(), detail::rank_of(d), mean, stddev, seed[0],
                      seed[1]);
}
inline Tensor stateless_truncated_normal(const Dims &d, SeedPair seed, float mean = 0, float stddev = 1) {
  return detail::make(kiln_stateless_truncated_normal, d.data(), detail::rank_of(d), mean, stddev, seed[0],
                      seed[1]);
}
/// tf.nn.experimental.stateless_dropout: always drops (no training flag), mask from the seed pair.
inline Tensor stateless_dropout(const Tensor &x, float rate, SeedPair seed, const Dims &noise_shape = {}) {
  kiln_dropout_options o;
  kiln_dropout_options_init(&o);
  o.rate = rate;
  o.stateless = true;
  o.stateless_seed[0] = seed[0];
  o.stateless_seed[1] = seed[1];
  o.noise_shape = noise_shape.data();
  o.noise_rank = noise_shape.size();
  return detail::make(kiln_dropout_with_options, x.get(), static_cast<const kiln_dropout_options *>(&o));
}

// ---- losses (per-example, fused and stable) ----
inline Tensor sparse_softmax_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits) {
  return detail::make(kiln_sparse_softmax_cross_entropy_with_logits, labels.get(), logits.get());
}
inline Tensor softmax_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits, int64_t axis = -1) {
  return detail::make(kiln_softmax_cross_entropy_with_logits, labels.get(), logits.get(), axis);
}
inline Tensor sigmoid_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits) {
  return detail::make(kiln_sigmoid_cross_entropy_with_logits, labels.get(), logits.get());
}
/// tf.nn.ctc_loss with dense labels: per-sample -log p(labels | logits); see kiln_ctc_loss.
inline Tensor ctc_loss(const Tensor &labels, const Tensor &logits, const Tensor &label_length,
                       const Tensor &logit_length, bool logits_time_major = true, int64_t blank_index = 0) {
  return detail::make(kiln_ctc_loss, labels.get(), logits.get(), label_length.get(), logit_length.get(),
                      logits_time_major, blank_index);
}
/// keras.ops.ctc_decode: {decoded int32 [paths, batch, frames] padded with -1, scores [batch, paths]};
/// strategy "greedy" or "beam_search". See kiln_ctc_decode.
inline std::pair<Tensor, Tensor> ctc_decode(const Tensor &inputs, const Tensor &sequence_lengths,
                                            const std::string &strategy = "greedy", int64_t beam_width = 100,
                                            int64_t top_paths = 1, bool merge_repeated = true,
                                            int64_t mask_index = 0) {
  kiln_tensor *decoded = nullptr, *scores = nullptr;
  detail::check(kiln_ctc_decode(&decoded, &scores, inputs.get(), sequence_lengths.get(), strategy.c_str(),
                                beam_width, top_paths, merge_repeated, mask_index));
  return {Tensor(decoded), Tensor(scores)};
}

// ---- more reductions, scans, helpers ----
#define KILN_HPP_REDUCE(name)                                                               \
  inline Tensor name(const Tensor &x, const Dims &axes = {}, bool keepdims = false) {       \
    return detail::make(kiln_##name, x.get(), axes.data(), axes.size(), keepdims);          \
  }
KILN_HPP_REDUCE(reduce_prod)
KILN_HPP_REDUCE(reduce_any)
KILN_HPP_REDUCE(reduce_all)
KILN_HPP_REDUCE(reduce_logsumexp)
#undef KILN_HPP_REDUCE
/// tf.math.argmin: the index of the smallest value along axis (default 0, as TF's), int64; the first on ties.
inline Tensor argmin(const Tensor &x, int64_t axis = 0) { return detail::make(kiln_argmin, x.get(), axis); }
inline Tensor bias_add(const Tensor &value, const Tensor &bias) {
  return detail::make(kiln_bias_add, value.get(), bias.get());
}
struct Moments {
  Tensor mean, variance;
};
inline Moments moments(const Tensor &x, const Dims &axes, bool keepdims = false) {
  kiln_tensor *m = nullptr, *v = nullptr;
  detail::check(kiln_moments(&m, &v, x.get(), axes.data(), axes.size(), keepdims));
  return {Tensor(m), Tensor(v)};
}
/// Empty axes: all axes (TF's axis=None).
inline Tensor l2_normalize(const Tensor &x, const Dims &axes = {}, float epsilon = 1e-12f) {
  return detail::make(kiln_l2_normalize, x.get(), axes.data(), axes.size(), epsilon);
}
inline Tensor cumsum(const Tensor &x, int64_t axis = 0, bool exclusive = false, bool reverse = false) {
  return detail::make(kiln_cumsum, x.get(), axis, exclusive, reverse);
}
/// tf.math.cumprod: the cumulative product along axis.
inline Tensor cumprod(const Tensor &x, int64_t axis = 0, bool exclusive = false, bool reverse = false) {
  return detail::make(kiln_cumprod, x.get(), axis, exclusive, reverse);
}
struct TopK {
  Tensor values, indices;
};
inline TopK top_k(const Tensor &x, int64_t k = 1, bool sorted = true) {
  kiln_tensor *v = nullptr, *i = nullptr;
  detail::check(kiln_top_k(&v, &i, x.get(), k, sorted));
  return {Tensor(v), Tensor(i)};
}

// ---- floor division (Python's // and %) ----
inline Tensor floordiv(const Tensor &a, const Tensor &b) { return detail::make(kiln_floordiv, a.get(), b.get()); }
inline Tensor floormod(const Tensor &a, const Tensor &b) { return detail::make(kiln_floormod, a.get(), b.get()); }
inline Tensor operator%(const Tensor &a, const Tensor &b) { return floormod(a, b); }

// ---- einsum (one or two operands) ----
inline Tensor einsum(const std::string &equation, const std::vector<Tensor> &inputs) {
  auto hs = detail::handles(inputs);
  return detail::make(kiln_einsum, equation.c_str(), hs.data(), hs.size());
}

// ---- variables ----
/// A named, mutable holder of a tensor value, starting from a copy of `initial`.
/// Copies are new handles to the same variable.
class Variable : public detail::handle<kiln_variable> {
 public:
  /// An empty handle (valid() is false), e.g. a layer member set later by add_weight.
  Variable() = default;
  explicit Variable(const Tensor &initial, const std::string &name = "Variable", bool trainable = true) {
    kiln_variable *v = nullptr;
    detail::check(kiln_variable_create(&v, name.c_str(), initial.get(), trainable));
    *this = Variable(v);
  }
  /// Takes ownership of a C handle.
  explicit Variable(kiln_variable *h) noexcept : handle(h) {}
  std::string name() const {
    return detail::handle_string(kiln_variable_get_name(get()), "kiln::Variable::name");
  }
  bool trainable() const { return kiln_variable_get_trainable(get()); }
  /// The variable's identity: fixed for its life, shared with no other variable or tensor.
  uint64_t id() const { return kiln_variable_get_id(get()); }
  /// The current value (watched by recording tapes when trainable).
  Tensor value() const { return detail::make(kiln_variable_read, get()); }
  operator Tensor() const { return value(); }
  void assign(const Tensor &v) { detail::check(kiln_variable_assign(get(), v.get())); }
  void assign_add(const Tensor &d) { detail::check(kiln_variable_assign_add(get(), d.get())); }
  void assign_sub(const Tensor &d) { detail::check(kiln_variable_assign_sub(get(), d.get())); }
  /// Updates the value with f(dst, src, num_bytes) (kiln_variable_update_in_place): in place when
  /// no earlier read is alive. f must write every byte of dst and not use the variable.
  void update_in_place(const std::function<void(void *dst, const void *src, size_t num_bytes)> &f) {
    auto call = [](void *dst, const void *src, size_t n, kiln_dtype, void *user) -> kiln_status * {
      try {
        (*static_cast<const std::function<void(void *, const void *, size_t)> *>(user))(dst, src, n);
        return nullptr;
      } catch (const std::exception &e) {
        return kiln_status_create(KILN_STATUS_INTERNAL, e.what());
      }
    };
    detail::check(
        kiln_variable_update_in_place(get(), call, const_cast<void *>(static_cast<const void *>(&f))));
  }
};

namespace detail {
// A C getter of handles called twice, get(out, capacity, out_count): the count, then the new
// handles, each owned by a T (Variable, Metric).
template <typename T, typename H, typename Get>
std::vector<T> handles_from(Get get) {
  size_t n = 0;
  check(get(nullptr, 0, &n));
  std::vector<H *> hs(n, nullptr);
  size_t m = 0;
  check(get(hs.data(), hs.size(), &m));
  std::vector<T> out;
  for (size_t i = 0; i < std::min(n, m); ++i) out.emplace_back(hs[i]);
  return out;
}
template <typename Get>
std::vector<Variable> variables_from(Get get) {
  return handles_from<Variable, kiln_variable>(get);
}
}  // namespace detail

class Communicator;

/// tf.GradientTape: records from construction until stop() (or destruction).
/// Belongs to the thread that created it.
class GradientTape : public detail::handle<kiln_tape> {
 public:
  explicit GradientTape(bool persistent = false, bool watch_accessed_variables = true) {
    kiln_tape *t = nullptr;
    detail::check(kiln_tape_create(&t, persistent, watch_accessed_variables));
    *this = GradientTape(t);
  }
  /// Takes ownership of a C handle.
  explicit GradientTape(kiln_tape *h) noexcept : handle(h) {}
  void watch(const Tensor &t) { detail::check(kiln_tape_watch(get(), t.get())); }
  void watch(const Variable &v) { detail::check(kiln_tape_watch_variable(get(), v.get())); }
  void stop() { detail::check(kiln_tape_stop(get())); }
  void start() { detail::check(kiln_tape_start(get())); }
  /// Horovod's DistributedGradientTape on this tape: gradient() gives the "mean" (or "sum") over
  /// comm's ranks, summed in buckets during the backward pass (kiln_tape_set_distributed); use a
  /// plain optimizer with it. An empty Communicator turns it off. Defined after Communicator.
  void set_distributed(const Communicator &comm, const std::string &op = "mean",
                       int64_t fusion_threshold_bytes = int64_t{64} << 20, bool overlap = true);

  /// Gradients of sum(target) for each source; an empty Tensor where unconnected (none).
  std::vector<Tensor> gradient(const Tensor &target, const std::vector<Tensor> &sources,
                               Unconnected unconnected = Unconnected::none, const Tensor &output_gradient = Tensor()) {
    auto hs = detail::handles(sources);
    std::vector<kiln_tensor *> outs(sources.size(), nullptr);
    const kiln_unconnected u = detail::to_c(unconnected, "GradientTape::gradient");
    detail::check(kiln_tape_gradient_with_output(outs.data(), get(), target.get(), output_gradient.get(),
                                                 hs.data(), hs.size(), u));
    return wrap(outs);
  }
  /// A braced list of sources, gradient(loss, {x}), gives a vector too (not the overload below).
  std::vector<Tensor> gradient(const Tensor &target, std::initializer_list<Tensor> sources,
                               Unconnected unconnected = Unconnected::none, const Tensor &output_gradient = Tensor()) {
    return gradient(target, std::vector<Tensor>(sources), unconnected, output_gradient);
  }
  Tensor gradient(const Tensor &target, const Tensor &source, Unconnected unconnected = Unconnected::none) {
    return gradient(target, std::vector<Tensor>{source}, unconnected)[0];
  }
  std::vector<Tensor> gradient(const Tensor &target, const std::vector<Variable> &variables,
                               Unconnected unconnected = Unconnected::none) {
    std::vector<const kiln_variable *> vs;
    for (const Variable &v : variables) vs.push_back(v.get());
    std::vector<kiln_tensor *> outs(vs.size(), nullptr);
    detail::check(kiln_tape_gradient_variables(outs.data(), get(), target.get(), vs.data(), vs.size(),
                                               detail::to_c(unconnected, "GradientTape::gradient")));
    return wrap(outs);
  }
  std::vector<Tensor> gradient(const Tensor &target, std::initializer_list<Variable> variables,
                               Unconnected unconnected = Unconnected::none) {
    return gradient(target, std::vector<Variable>(variables), unconnected);
  }
  /// tape.gradient([t1, t2], vars): the targets' gradients are summed (output_gradients: empty, or
  /// one per target, an empty Tensor meaning ones).
  std::vector<Tensor> gradient(const std::vector<Tensor> &targets, const std::vector<Variable> &variables,
                               Unconnected unconnected = Unconnected::none,
                               const std::vector<Tensor> &output_gradients = {}) {
    std::vector<const kiln_variable *> vs;
    for (const Variable &v : variables) vs.push_back(v.get());
    return multi(targets, output_gradients, std::vector<const kiln_tensor *>(vs.size(), nullptr), vs,
                 unconnected);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor> &targets, std::initializer_list<Variable> variables,
                               Unconnected unconnected = Unconnected::none,
                               const std::vector<Tensor> &output_gradients = {}) {
    return gradient(targets, std::vector<Variable>(variables), unconnected, output_gradients);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor> &targets, std::initializer_list<Tensor> sources,
                               Unconnected unconnected = Unconnected::none,
                               const std::vector<Tensor> &output_gradients = {}) {
    return gradient(targets, std::vector<Tensor>(sources), unconnected, output_gradients);
  }
  /// As above, with tensor sources.
  std::vector<Tensor> gradient(const std::vector<Tensor> &targets, const std::vector<Tensor> &sources,
                               Unconnected unconnected = Unconnected::none,
                               const std::vector<Tensor> &output_gradients = {}) {
    std::vector<const kiln_tensor *> ss;
    for (const Tensor &t : sources) ss.push_back(t.get());
    return multi(targets, output_gradients, ss, std::vector<const kiln_variable *>(ss.size(), nullptr),
                 unconnected);
  }

  /// tf.GradientTape.jacobian: for each source, J[t..., s...] = d target[t...] / d source[s...], of
  /// shape target.shape + source.shape (an empty Tensor where unconnected, with none). One backward
  /// walk per element of target; a non-persistent tape allows it once.
  std::vector<Tensor> jacobian(const Tensor &target, const std::vector<Tensor> &sources,
                               Unconnected unconnected = Unconnected::none) {
    std::vector<const kiln_tensor *> ss;
    for (const Tensor &t : sources) ss.push_back(t.get());
    return jacobians(target, ss, std::vector<const kiln_variable *>(ss.size(), nullptr), unconnected);
  }
  std::vector<Tensor> jacobian(const Tensor &target, const std::vector<Variable> &variables,
                               Unconnected unconnected = Unconnected::none) {
    std::vector<const kiln_variable *> vs;
    for (const Variable &v : variables) vs.push_back(v.get());
    return jacobians(target, std::vector<const kiln_tensor *>(vs.size(), nullptr), vs, unconnected);
  }
  Tensor jacobian(const Tensor &target, const Tensor &source, Unconnected unconnected = Unconnected::none) {
    return jacobian(target, std::vector<Tensor>{source}, unconnected)[0];
  }
  Tensor jacobian(const Tensor &target, const Variable &variable,
                  Unconnected unconnected = Unconnected::none) {
    return jacobian(target, std::vector<Variable>{variable}, unconnected)[0];
  }
  /// tf.GradientTape.batch_jacobian: target [b, y...], source [b, x...] with target[i] depending on
  /// source[i] only; J[i, y..., x...] of shape target.shape + source.shape[1:].
  Tensor batch_jacobian(const Tensor &target, const Tensor &source,
                        Unconnected unconnected = Unconnected::none) {
    kiln_tensor *out = nullptr;
    detail::check(kiln_tape_batch_jacobian(&out, get(), target.get(), source.get(),
                                           detail::to_c(unconnected, "GradientTape::batch_jacobian")));
    return Tensor(out);
  }
  /// tf.GradientTape.reset: forgets what the tape recorded and watched; it goes on recording if it was.
  void reset() { detail::check(kiln_tape_reset(get())); }
  /// tf.GradientTape.watched_variables(): the watched variables still alive, in the order watched.
  std::vector<Variable> watched_variables() const {
    return detail::variables_from([this](kiln_variable **out, size_t capacity, size_t *count) {
      return kiln_tape_get_watched_variables(out, capacity, count, get());
    });
  }

  /// tf.GradientTape.stop_recording: while the returned guard lives, the tape records nothing.
  ///   { auto paused = tape.stop_recording(); y = expensive(x); }
  class Paused {
   public:
    explicit Paused(GradientTape &t) : tape_(&t) { t.stop(); }
    Paused(Paused &&o) noexcept : tape_(o.tape_) { o.tape_ = nullptr; }
    Paused(const Paused &) = delete;
    Paused &operator=(const Paused &) = delete;
    Paused &operator=(Paused &&) = delete;
    ~Paused() {
      if (tape_) kiln_status_free(kiln_tape_start(tape_->get()));
    }

   private:
    GradientTape *tape_;
  };
  [[nodiscard]] Paused stop_recording() { return Paused(*this); }

 private:
  std::vector<Tensor> multi(const std::vector<Tensor> &targets, const std::vector<Tensor> &output_gradients,
                            const std::vector<const kiln_tensor *> &sources,
                            const std::vector<const kiln_variable *> &variables, Unconnected unconnected) {
    return run(kiln_tape_gradient_multi, targets, output_gradients, sources, variables, unconnected,
               "GradientTape::gradient");
  }
  std::vector<Tensor> jacobians(const Tensor &target, const std::vector<const kiln_tensor *> &sources,
                                const std::vector<const kiln_variable *> &variables,
                                Unconnected unconnected) {
    return run(kiln_tape_jacobian, {target}, {}, sources, variables, unconnected, "GradientTape::jacobian");
  }
  // fn (kiln_tape_gradient_multi or kiln_tape_jacobian) on a kiln_tape_gradient_options.
  std::vector<Tensor> run(kiln_status *(*fn)(kiln_tensor **, kiln_tape *, const kiln_tape_gradient_options *),
                          const std::vector<Tensor> &targets, const std::vector<Tensor> &output_gradients,
                          const std::vector<const kiln_tensor *> &sources,
                          const std::vector<const kiln_variable *> &variables, Unconnected unconnected,
                          const char *what) {
    std::vector<const kiln_tensor *> ts, gs;
    for (const Tensor &t : targets) ts.push_back(t.get());
    for (const Tensor &g : output_gradients) gs.push_back(g.get());
    kiln_tape_gradient_options o;
    kiln_tape_gradient_options_init(&o);
    o.targets = ts.data();
    o.num_targets = ts.size();
    o.output_gradients = gs.empty() ? nullptr : gs.data();
    o.sources = sources.data();
    o.variables = variables.data();
    o.num_sources = sources.size();
    o.unconnected = detail::to_c(unconnected, what);
    std::vector<kiln_tensor *> outs(sources.size(), nullptr);
    detail::check(fn(outs.data(), get(), &o));
    return wrap(outs);
  }
  static std::vector<Tensor> wrap(const std::vector<kiln_tensor *> &outs) {
    std::vector<Tensor> r;
    r.reserve(outs.size());
    for (kiln_tensor *h : outs) r.emplace_back(h);
    return r;
  }
};

/// The typed key-value settings of layers and other objects (Keras's get_config dict): an
/// ordered map from keys to null, bool, int, float, string, lists and nested configs. A value
/// type: copies are deep.
///
///   kiln::Config c;
///   c.set("units", 64).set("activation", "relu").set("use_bias", true);
///   int64_t units = c.get_int("units");
class Config : public detail::handle<kiln_config> {
 public:
  enum class Type : int {
    null = KILN_CONFIG_NULL,
    boolean = KILN_CONFIG_BOOL,
    integer = KILN_CONFIG_INT,
    floating = KILN_CONFIG_FLOAT,
    string = KILN_CONFIG_STRING,
    list = KILN_CONFIG_LIST,
    config = KILN_CONFIG_CONFIG,
  };

  /// An empty config.
  Config() : handle(make()) {}
  /// Takes ownership of a C handle.
  explicit Config(kiln_config *h) noexcept : handle(h) {}
  /// From JSON text whose top level is an object.
  static Config from_json(const std::string &json) {
    kiln_config *h = nullptr;
    detail::check(kiln_config_from_json(&h, json.c_str()));
    return Config(h);
  }
  /// Compact JSON (indent < 0) or indented.
  std::string to_json(int indent = -1) const {
    char *s = nullptr;
    detail::check(kiln_config_to_json(&s, get(), indent));
    std::string r(s);
    kiln_string_free(s);
    return r;
  }

  size_t size() const noexcept { return kiln_config_get_size(get()); }
  bool has(const std::string &key) const noexcept { return kiln_config_has(get(), key.c_str()); }
  /// The keys in insertion order.
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (size_t i = 0; i < size(); ++i) {
      const char *s = nullptr;
      detail::check(kiln_config_get_key(&s, get(), i));
      k.emplace_back(s);
    }
    return k;
  }
  Type type(const std::string &key) const {
    kiln_config_type t = KILN_CONFIG_NULL;
    detail::check(kiln_config_get_type(&t, get(), key.c_str()));
    return static_cast<Type>(t);
  }
  Config &remove(const std::string &key) {
    detail::check(kiln_config_remove(get(), key.c_str()));
    return *this;
  }

  Config &set_null(const std::string &key) {
    detail::check(kiln_config_set_null(get(), key.c_str()));
    return *this;
  }
  Config &set(const std::string &key, bool v) {
    detail::check(kiln_config_set_bool(get(), key.c_str(), v));
    return *this;
  }
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  Config &set(const std::string &key, T v) {
    detail::check(kiln_config_set_int(get(), key.c_str(), static_cast<int64_t>(v)));
    return *this;
  }
  Config &set(const std::string &key, double v) {
    detail::check(kiln_config_set_float(get(), key.c_str(), v));
    return *this;
  }
  Config &set(const std::string &key, const char *v) {
    detail::check(kiln_config_set_string(get(), key.c_str(), v));
    return *this;
  }
  Config &set(const std::string &key, const std::string &v) { return set(key, v.c_str()); }
  Config &set(const std::string &key, const std::vector<int64_t> &v) {
    detail::check(kiln_config_set_int_list(get(), key.c_str(), v.data(), v.size()));
    return *this;
  }
  Config &set(const std::string &key, const std::vector<double> &v) {
    detail::check(kiln_config_set_float_list(get(), key.c_str(), v.data(), v.size()));
    return *this;
  }
  Config &set(const std::string &key, const std::vector<std::string> &v) {
    std::vector<const char *> p;
    for (const std::string &s : v) p.push_back(s.c_str());
    detail::check(kiln_config_set_string_list(get(), key.c_str(), p.data(), p.size()));
    return *this;
  }
  Config &set(const std::string &key, const Config &v) {
    detail::check(kiln_config_set_config(get(), key.c_str(), v.get()));
    return *this;
  }
  /// Python's dict.update: every key of src, set here (replacing a value already here).
  Config &update(const Config &src) {
    detail::check(kiln_config_update(get(), src.get()));
    return *this;
  }
  Config &set(const std::string &key, const std::vector<Config> &v) {
    std::vector<const kiln_config *> p;
    for (const Config &c : v) p.push_back(c.get());
    detail::check(kiln_config_set_config_list(get(), key.c_str(), p.data(), p.size()));
    return *this;
  }

  bool get_bool(const std::string &key) const { return scalar<bool>(kiln_config_get_bool, key); }
  int64_t get_int(const std::string &key) const { return scalar<int64_t>(kiln_config_get_int, key); }
  double get_float(const std::string &key) const { return scalar<double>(kiln_config_get_float, key); }
  std::string get_string(const std::string &key) const {
    return std::string(scalar<const char *>(kiln_config_get_string, key));
  }
  std::vector<int64_t> get_int_list(const std::string &key) const {
    return list<int64_t>(kiln_config_get_int_list, key);
  }
  std::vector<double> get_float_list(const std::string &key) const {
    return list<double>(kiln_config_get_float_list, key);
  }
  std::vector<std::string> get_string_list(const std::string &key) const {
    std::vector<std::string> r;
    for (size_t i = 0, n = list_size(key); i < n; ++i) {
      const char *s = nullptr;
      detail::check(kiln_config_get_string_at(&s, get(), key.c_str(), i));
      r.emplace_back(s);
    }
    return r;
  }
  Config get_config(const std::string &key) const {
    kiln_config *h = nullptr;
    detail::check(kiln_config_get_config(&h, get(), key.c_str()));
    return Config(h);
  }
  std::vector<Config> get_config_list(const std::string &key) const {
    std::vector<Config> r;
    for (size_t i = 0, n = list_size(key); i < n; ++i) {
      kiln_config *h = nullptr;
      detail::check(kiln_config_get_config_at(&h, get(), key.c_str(), i));
      r.emplace_back(h);
    }
    return r;
  }

  /// Same keys with equal values (key order aside).
  bool operator==(const Config &o) const noexcept { return kiln_config_equal(get(), o.get()); }
  bool operator!=(const Config &o) const noexcept { return !(*this == o); }

 private:
  static kiln_config *make() {
    kiln_config *h = nullptr;
    detail::check(kiln_config_create(&h));
    return h;
  }
  template <typename T, typename F>
  T scalar(F fn, const std::string &key) const {
    T v{};
    detail::check(fn(&v, get(), key.c_str()));
    return v;
  }
  size_t list_size(const std::string &key) const {
    size_t n = 0;
    detail::check(kiln_config_get_list_size(&n, get(), key.c_str()));
    return n;
  }
  template <typename T, typename F>
  std::vector<T> list(F fn, const std::string &key) const {
    size_t n = 0;
    detail::check(fn(&n, nullptr, 0, get(), key.c_str()));
    std::vector<T> v(n);
    detail::check(fn(&n, v.data(), v.size(), get(), key.c_str()));
    return v;
  }
};

namespace detail {
/// An owned kiln_tensor_list holding tensors (shared, not copied); an empty Tensor is an empty slot.
inline handle<kiln_tensor_list> to_list(const std::vector<Tensor> &tensors) {
  kiln_tensor_list *h = nullptr;
  check(kiln_tensor_list_create(&h));
  handle<kiln_tensor_list> list(h);
  for (const Tensor &t : tensors) check(kiln_tensor_list_append(h, t.get()));
  return list;
}
/// The tensors of a list; an empty slot gives an empty Tensor (valid() false).
inline std::vector<Tensor> from_list(const kiln_tensor_list *list) {
  std::vector<Tensor> out;
  for (size_t i = 0, n = kiln_tensor_list_get_size(list); i < n; ++i) {
    kiln_tensor *t = nullptr;
    check(kiln_tensor_list_get(&t, list, i));
    out.emplace_back(t);
  }
  return out;
}
inline std::string take_string(char *s) {
  std::string r(s);
  kiln_string_free(s);
  return r;
}
}  // namespace detail

/// keras.backend.clear_session(): layer name counters start again.
inline void clear_session() { kiln_clear_session(); }

/// Runs a Keras initializer given by name ("glorot_uniform", "he_normal", ...) or by its
/// serialized config ({"class_name": "RandomNormal", "config": {"stddev": 0.1, "seed": 3}}).
inline Tensor initialize(const Config &initializer, const Dims &shape, DType dtype = DType::float32) {
  kiln_tensor *t = nullptr;
  detail::check(kiln_initializer_call(&t, initializer.get(), shape.data(), shape.size(),
                                      detail::to_c(dtype, "initialize")));
  return Tensor(t);
}
inline Tensor initialize(const std::string &name, const Dims &shape, DType dtype = DType::float32) {
  Config c;
  c.set("class_name", name);
  return initialize(c, shape, dtype);
}

namespace detail {
// Runs fn for a callback from C: an exception becomes a status of its code (C++ exceptions
// must not cross the C boundary).
template <typename F>
kiln_status *status_of(F &&fn) noexcept {
  try {
    fn();
    return nullptr;
  } catch (const Error &e) {
    return kiln_status_create(e.code(), e.what());
  } catch (const std::exception &e) {
    return kiln_status_create(KILN_STATUS_INTERNAL, e.what());
  } catch (...) {
    return kiln_status_create(KILN_STATUS_INTERNAL, "unknown C++ exception");
  }
}

// A Config over a borrowed kiln_config (released, not freed, when it goes).
struct BorrowedConfig {
  Config c;
  explicit BorrowedConfig(const kiln_config *h) : c(const_cast<kiln_config *>(h)) {}
  ~BorrowedConfig() { c.release(); }
};
}  // namespace detail

/// Keras's call arguments beyond the inputs: training and mask= (one mask per input, an empty
/// Tensor where an input has none; empty: no masks). A mask has its input's leading dims.
/// training unset (Keras's training=None): inside another layer's call on this thread, that
/// call's training (Keras's call context); outside any call, false.
struct CallOptions {
  std::optional<bool> training;
  std::vector<Tensor> masks;
};

/// A call's outputs and their masks (Keras's output._keras_mask): one mask per output, an empty
/// Tensor where an output has none.
struct CallResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> masks;
};

/// A Keras layer (or model): a handle to a built-in layer, and the base class of custom layers
/// and models.
///
/// Built-in layers come from kiln::layers (kiln::layers::Dense(64, {"relu"})) or by class name
/// and config (Layer::create("Dense", config)); copies are handles to the same layer.
///
/// A custom layer subclasses Layer (a custom model subclasses Model), creates weights with
/// add_weight in its constructor or in build, tracks sub-layers with track, and overrides the
/// hooks build(input_shapes) and call(inputs, training), as in Keras. kiln calls the hooks
/// through a callback table: build once, from the first call's input shapes (or from
/// build_for(shapes)), then call. A subclass object is the layer: keep it alive while anything
/// (a parent layer) uses it, and do not copy it; a kiln::Layer copy of it is a handle to it. A
/// call that reaches the layer after the object is destroyed fails (FAILED_PRECONDITION); one
/// that runs on another thread while it is destroyed is a data race, as for any C++ object: let
/// those calls return first.
///
///   class MyDense : public kiln::Layer {
///    public:
///     MyDense(int64_t in, int64_t out) : Layer("MyDense") {
///       w_ = add_weight("kernel", {in, out});
///       b_ = add_weight("bias", {out}, "zeros");
///     }
///    protected:
///     std::vector<kiln::Tensor> call(const std::vector<kiln::Tensor> &x, bool) override {
///       return {kiln::matmul(x[0], w_.value()) + b_.value()};
///     }
///    private:
///     kiln::Variable w_, b_;
///   };
namespace mixed_precision {
class DTypePolicy;
}  // namespace mixed_precision
namespace data {
class Dataset;
}  // namespace data

namespace detail {
// Move-assignment of a subclass object (Layer, Model, Callback) whose C object's callbacks reach
// it through a link (link->self): between objects of one dynamic type the target takes o's link;
// its own link, if any, then reports its object gone. move_handle moves the rest.
template <typename Self, typename Link, typename MoveHandle>
void move_assign_linked(Self &self, Self &o, Link *Self::*link, MoveHandle &&move_handle) {
  const bool take = o.*link && typeid(self) == typeid(o);
  if (take && self.*link) std::exchange(self.*link, nullptr)->self = nullptr;
  move_handle();
  if (take) {
    self.*link = std::exchange(o.*link, nullptr);
    (self.*link)->self = &self;
  }
}
}  // namespace detail

class Layer : public detail::handle<kiln_layer> {
 public:
  /// An empty handle.
  Layer() = default;
  /// Takes ownership of a C handle.
  explicit Layer(kiln_layer *h) noexcept : handle(h) {}
  /// Copies share the layer (the handle). A copy of a subclass object is a plain handle to the
  /// same layer, whose callbacks still reach the original object.
  Layer(const Layer &o) : handle(o), link_(nullptr) {}
  /// Takes o's layer. A subclass object assigned to goes on serving its own layer's callbacks
  /// while that layer lives on in other handles (a model that tracks it).
  Layer &operator=(const Layer &o) {
    handle::operator=(o);
    return *this;
  }
  Layer(Layer &&o) noexcept : handle(std::move(o)), link_(std::exchange(o.link_, nullptr)) {
    if (link_) link_->self = this;
  }
  /// Takes o's layer and leaves o empty. Between objects of one subclass the object moved into
  /// also takes over serving o's layer's callbacks; the layer it served before then reports its
  /// object gone.
  Layer &operator=(Layer &&o) noexcept {
    if (this != &o)
      detail::move_assign_linked(*this, o, &Layer::link_, [&] { handle::operator=(std::move(o)); });
    return *this;
  }
  virtual ~Layer() {
    if (link_) link_->self = nullptr;  // callbacks arriving after this report the object gone
  }

  /// A built-in layer from its Keras class name and config ("Dense", {"units": 64}).
  static Layer create(const std::string &class_name, const Config &config = Config()) {
    kiln_layer *h = nullptr;
    detail::check(kiln_layer_create(&h, class_name.c_str(), config.get()));
    return Layer(h);
  }
  /// A built-in layer made around these layer objects, not copies (kiln_layer_create_around):
  /// "RNN" (its cell; several are stacked) and "StackedRNNCells".
  static Layer create_around(const std::string &class_name, const std::vector<Layer> &layers,
                             const Config &config = Config()) {
    std::vector<kiln_layer *> hs;
    for (const Layer &l : layers) hs.push_back(l.get());
    kiln_layer *h = nullptr;
    detail::check(kiln_layer_create_around(&h, class_name.c_str(), config.get(), hs.data(), hs.size()));
    return Layer(h);
  }
  /// From Keras's serialized form {"class_name": ..., "config": {...}}.
  static Layer deserialize(const Config &serialized) {
    kiln_layer *h = nullptr;
    detail::check(kiln_layer_deserialize(&h, serialized.get()));
    return Layer(h);
  }
  Config serialize() const { return config_call(kiln_layer_serialize); }
  Config get_config() const { return config_call(kiln_layer_get_config); }

  std::string name() const { return detail::handle_string(kiln_layer_get_name(get()), "kiln::Layer::name"); }
  std::string class_name() const {
    return detail::handle_string(kiln_layer_get_class_name(get()), "kiln::Layer::class_name");
  }
  uint64_t id() const noexcept { return kiln_layer_get_id(get()); }
  bool built() const noexcept { return kiln_layer_get_built(get()); }
  bool is_model() const noexcept { return kiln_layer_is_model(get()); }
  bool trainable() const noexcept { return kiln_layer_get_trainable(get()); }
  /// Keras's layer.dtype_policy, compute_dtype and variable_dtype (see "Mixed precision").
  mixed_precision::DTypePolicy dtype_policy() const;
  DType compute_dtype() const noexcept { return static_cast<DType>(kiln_layer_get_compute_dtype(get())); }
  DType variable_dtype() const noexcept { return static_cast<DType>(kiln_layer_get_variable_dtype(get())); }
  /// Freezes or unfreezes the layer, its variables and its sub-layers.
  void set_trainable(bool trainable) { detail::check(kiln_layer_set_trainable(get(), trainable)); }

  /// Builds for inputs of these shapes (-1: unknown, Keras's None), as model.build((None, 784)).
  void build_for(const std::vector<Dims> &input_shapes) {
    std::vector<int64_t> dims;
    std::vector<size_t> ranks;
    for (const Dims &d : input_shapes) {
      dims.insert(dims.end(), d.begin(), d.end());
      ranks.push_back(d.size());
    }
    detail::check(kiln_layer_build(get(), dims.data(), ranks.data(), ranks.size()));
  }
  void build_for(const Dims &input_shape) { build_for(std::vector<Dims>{input_shape}); }

  /// Calls the layer (Keras __call__): builds on the first call, then runs call. training
  /// unset (Keras's training=None): as CallOptions, the enclosing layer call's, else false; so
  /// a Dropout called inside a custom layer's call drops when the model is called in training.
  Tensor operator()(const Tensor &x, std::optional<bool> training = std::nullopt) {
    if (!training) {
      std::vector<Tensor> out = call_with_options({x}).outputs;
      if (out.size() != 1)
        throw Error(KILN_STATUS_INVALID_ARGUMENT, "layer '" + name() + "' (" + class_name() + ") returned " +
                                                      std::to_string(out.size()) +
                                                      " outputs; expected one for a single-tensor call");
      return out[0];
    }
    kiln_tensor *y = nullptr;
    detail::check(kiln_layer_call_tensor(&y, get(), x.get(), *training));
    return Tensor(y);
  }
  std::vector<Tensor> operator()(const std::vector<Tensor> &inputs,
                                 std::optional<bool> training = std::nullopt) {
    if (!training) return call_with_options(inputs).outputs;
    auto in = detail::to_list(inputs);
    kiln_tensor_list *out = nullptr;
    detail::check(kiln_layer_call(&out, get(), in.get(), *training));
    detail::handle<kiln_tensor_list> owned(out);
    return detail::from_list(out);
  }
  /// Keras's __call__ with masks: layer.call_with_options(inputs, {true, {mask}}) passes the
  /// inputs' masks and returns the outputs with their masks (Embedding(mask_zero) makes one,
  /// Dense/Dropout/... pass it on, Sequential carries it through its layers).
  CallResult call_with_options(const std::vector<Tensor> &inputs, const CallOptions &options = {}) {
    auto in = detail::to_list(inputs);
    detail::handle<kiln_tensor_list> masks;
    kiln_layer_call_options o;
    detail::check(kiln_layer_call_options_init(&o, sizeof o));
    o.training = options.training.value_or(false);
    o.training_from_context = !options.training.has_value();
    if (!options.masks.empty()) {
      masks = detail::to_list(options.masks);
      o.masks = masks.get();
    }
    kiln_tensor_list *out = nullptr, *out_masks = nullptr;
    detail::check(kiln_layer_call_with_options(&out, &out_masks, get(), in.get(), &o));
    detail::handle<kiln_tensor_list> owned(out), owned_masks(out_masks);
    return CallResult{detail::from_list(out), detail::from_list(out_masks)};
  }
  /// Keras compute_mask: the outputs' masks for these inputs and their masks (one per input,
  /// empty Tensors for none; or no masks). An empty result: no masks. A subclass may override
  /// it (the hook kiln calls after call); the default passes the masks on when the layer
  /// supports masking.
  virtual std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                           const std::vector<Tensor> &masks = {}) {
    if (link_) return supports_masking() ? masks : std::vector<Tensor>{};  // a subclass: Keras's default
    auto in = detail::to_list(inputs);
    detail::handle<kiln_tensor_list> m;
    if (!masks.empty()) m = detail::to_list(masks);
    kiln_tensor_list *out = nullptr;
    detail::check(kiln_layer_compute_mask(&out, get(), in.get(), m.get()));
    detail::handle<kiln_tensor_list> owned(out);
    return detail::from_list(out);
  }
  /// Keras's supports_masking: whether the layer passes its input's mask on to its output.
  bool supports_masking() const noexcept { return kiln_layer_get_supports_masking(get()); }
  /// compute_output_shape for one input (-1: unknown).
  Dims compute_output_shape(const Dims &input_shape) {
    Dims out(KILN_MAX_RANK);
    size_t rank = 0;
    detail::check(kiln_layer_compute_output_shape(out.data(), out.size(), &rank, get(), input_shape.data(),
                                                  input_shape.size()));
    out.resize(rank);
    return out;
  }
  /// compute_output_shape for several inputs (merges, attention, recurrent layers with states):
  /// one shape per output (-1: unknown).
  std::vector<Dims> compute_output_shapes(const std::vector<Dims> &input_shapes) {
    Dims dims;
    std::vector<size_t> ranks;
    for (const Dims &s : input_shapes) {
      dims.insert(dims.end(), s.begin(), s.end());
      ranks.push_back(s.size());
    }
    size_t count = 0, total = 0;
    Dims out(8 * KILN_MAX_RANK);
    std::vector<size_t> out_ranks(8);
    detail::check(kiln_layer_compute_output_shapes(out.data(), out.size(), out_ranks.data(), out_ranks.size(),
                                                   &count, &total, get(), dims.data(), ranks.data(),
                                                   ranks.size()));
    if (count > out_ranks.size()) {  // more than 8 outputs: again with room for all
      out.resize(total);
      out_ranks.resize(count);
      detail::check(kiln_layer_compute_output_shapes(out.data(), out.size(), out_ranks.data(),
                                                     out_ranks.size(), &count, &total, get(), dims.data(),
                                                     ranks.data(), ranks.size()));
    }
    std::vector<Dims> shapes;
    size_t at = 0;
    for (size_t i = 0; i < count; ++i) {
      shapes.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(at),
                          out.begin() + static_cast<std::ptrdiff_t>(at + out_ranks[i]));
      at += out_ranks[i];
    }
    return shapes;
  }

  /// Keras's cell state_size: the sizes of the states a cell takes after its input and returns
  /// after its output (LSTMCell: {units, units}); empty for a layer that is no cell.
  Dims state_size() const {
    size_t count = 0;
    Dims out(8);
    detail::check(kiln_layer_get_state_size(out.data(), out.size(), &count, get()));
    if (count > out.size()) {
      out.resize(count);
      detail::check(kiln_layer_get_state_size(out.data(), out.size(), &count, get()));
    }
    out.resize(count);
    return out;
  }
  /// Makes a custom layer a recurrent cell (Keras's `self.state_size = ...`): its call then takes
  /// {input, states...} and returns {output, new states...}, and layers::RNN runs it.
  void set_state_size(const Dims &sizes) {
    detail::check(kiln_layer_set_state_size(get(), sizes.data(), sizes.size()));
  }
  /// Keras's cell call, cell(x, states): the output and the new states.
  std::pair<Tensor, std::vector<Tensor>> call_cell(const Tensor &x, const std::vector<Tensor> &states,
                                                   std::optional<bool> training = std::nullopt) {
    std::vector<Tensor> in{x};
    in.insert(in.end(), states.begin(), states.end());
    std::vector<Tensor> out = (*this)(in, training);
    if (out.empty())
      throw Error(KILN_STATUS_INVALID_ARGUMENT,
                  "layer '" + name() + "' (" + class_name() + ") returned no outputs");
    Tensor y = out.front();
    out.erase(out.begin());
    return {y, out};
  }

  /// Depth first, creation order (Keras's order).
  std::vector<Variable> variables() const { return list_variables(KILN_VARIABLES_ALL); }
  std::vector<Variable> weights() const { return variables(); }
  std::vector<Variable> trainable_variables() const { return list_variables(KILN_VARIABLES_TRAINABLE); }
  std::vector<Variable> non_trainable_variables() const { return list_variables(KILN_VARIABLES_NON_TRAINABLE); }
  int64_t count_params() const {
    int64_t n = 0;
    detail::check(kiln_layer_count_params(&n, get()));
    return n;
  }
  /// Keras's adapt() of a preprocessing layer (Normalization, Discretization): its state computed from data,
  /// one array read as one batch (kiln_layer_adapt). Building from data's shape if not built.
  void adapt(const Tensor &data) { detail::check(kiln_layer_adapt(get(), data.get())); }
  /// adapt() over a dataset of batches, each element's first component (kiln_layer_adapt_dataset).
  void adapt(const data::Dataset &dataset);
  /// Keras's get_vocabulary() of a lookup layer (IntegerLookup): the tokens by index, the mask and
  /// OOV tokens first unless include_special_tokens is false (kiln_layer_get_vocabulary).
  Tensor get_vocabulary(bool include_special_tokens = true) const {
    kiln_tensor *t = nullptr;
    detail::check(kiln_layer_get_vocabulary(&t, get(), include_special_tokens));
    return Tensor(t);
  }
  /// Keras's vocabulary_size(): the vocabulary's length with the mask and OOV indices.
  int64_t vocabulary_size() const;
  /// Keras's set_vocabulary(vocabulary, idf_weights=None); idf_weights only for output_mode
  /// "tf_idf" (kiln_layer_set_vocabulary).
  void set_vocabulary(const Tensor &vocabulary, const Tensor &idf_weights = Tensor()) {
    detail::check(kiln_layer_set_vocabulary(get(), vocabulary.get(),
                                            idf_weights.valid() ? idf_weights.get() : nullptr));
  }
  /// The last call's losses and the weight regularizers' terms.
  std::vector<Tensor> losses() const {
    kiln_tensor_list *out = nullptr;
    detail::check(kiln_layer_get_losses(&out, get()));
    detail::handle<kiln_tensor_list> owned(out);
    return detail::from_list(out);
  }
  /// Direct sub-layers (model.layers).
  std::vector<Layer> layers() const {
    std::vector<Layer> out;
    for (size_t i = 0, n = kiln_layer_get_num_layers(get()); i < n; ++i) {
      kiln_layer *h = nullptr;
      detail::check(kiln_layer_get_layer(&h, get(), i));
      out.emplace_back(h);
    }
    return out;
  }
  Layer get_layer(const std::string &name) const {
    kiln_layer *h = nullptr;
    detail::check(kiln_layer_get_layer_by_name(&h, get(), name.c_str()));
    return Layer(h);
  }
  /// model.summary() as a string (line_length 0: Keras's 65).
  std::string summary(int line_length = 0) const {
    char *s = nullptr;
    detail::check(kiln_layer_summary(&s, get(), line_length));
    return detail::take_string(s);
  }

 protected:
  /// For subclasses: a custom layer of class class_name (base may hold name, trainable, dtype).
  explicit Layer(const std::string &class_name, const Config &base = Config()) { init_custom(class_name, base, false); }

  /// The base keys of a layer config (name, trainable, dtype): for a subclass constructor that
  /// takes its whole config (a class registered with register_layer_class<T>).
  static Config base_config(const Config &config) {
    Config b;
    if (config.has("name")) b.set("name", config.get_string("name"));
    if (config.has("trainable")) b.set("trainable", config.get_bool("trainable"));
    if (config.has("dtype") && config.type("dtype") == Config::Type::string) b.set("dtype", config.get_string("dtype"));
    if (config.has("dtype") && config.type("dtype") == Config::Type::config) b.set("dtype", config.get_config("dtype"));
    return b;
  }

  /// Hook: create weights for inputs of these shapes. Default: nothing.
  virtual void build(const std::vector<Dims> &input_shapes) { (void)input_shapes; }
  /// Hook: the layer's computation. A custom layer must override it.
  virtual std::vector<Tensor> call(const std::vector<Tensor> &inputs, bool training) {
    (void)inputs;
    (void)training;
    throw Error(KILN_STATUS_UNIMPLEMENTED, "layer '" + name() + "' does not override call");
  }
  /// Hook: add the layer's own keys to its config. Default: none.
  virtual void get_config(Config &config) const { (void)config; }
  /// Hook: call with the inputs' masks (one per input, an empty Tensor where an input has none),
  /// as a Keras call(inputs, training, mask). Default: call(inputs, training).
  virtual std::vector<Tensor> call_masked(const std::vector<Tensor> &inputs, const std::vector<Tensor> &masks,
                                          bool training) {
    (void)masks;
    return call(inputs, training);
  }
  /// Keras's `self.supports_masking = true`: the layer passes its inputs' masks on (unless
  /// compute_mask is overridden). Default false.
  void set_supports_masking(bool supports) {
    detail::check(kiln_layer_set_supports_masking(get(), supports));
  }

  /// Keras add_weight: a variable <path>/<name> tracked by this layer, initialised by a Keras
  /// initializer name ("glorot_uniform", "zeros", "ones", "he_normal", ...).
  Variable add_weight(const std::string &name, const Dims &shape, const std::string &initializer = "glorot_uniform",
                      bool trainable = true, DType dtype = DType::float32, const std::string &regularizer = "") {
    kiln_add_weight_options o;
    detail::check(kiln_add_weight_options_init(&o, sizeof o));
    o.dtype = detail::to_c(dtype, "Layer::add_weight");
    o.initializer = initializer.c_str();
    o.trainable = trainable;
    o.regularizer = regularizer.empty() ? nullptr : regularizer.c_str();
    kiln_variable *v = nullptr;
    detail::check(kiln_layer_add_weight(&v, get(), name.c_str(), shape.data(), shape.size(), &o));
    return Variable(v);
  }
  /// Tracks a variable made elsewhere as one of this layer's weights, under name (Keras's
  /// `self.w = tf.Variable(...)`); returns it. See kiln_layer_track_variable.
  Variable &track_variable(Variable &variable, const std::string &name) {
    detail::check(kiln_layer_track_variable(get(), variable.get(), name.c_str()));
    return variable;
  }
  /// Tracks a sub-layer (creation order); returns it for `dense_ = track(layers::Dense(4));`.
  /// attribute: the name checkpoints key it by, as Keras keys a subclassed model's sub-layers by
  /// their attribute names (`track(layers::Dense(4), "dense1")` saves
  /// `dense1/kernel/.ATTRIBUTES/VARIABLE_VALUE`; "blocks/0" for an element of a list); empty: by
  /// position (`layer_with_weights-0`). See kiln_layer_track_as.
  template <typename L>
  L &track(L &child, const std::string &attribute = "") {
    track_child(child.get(), attribute);
    return child;
  }
  template <typename L, typename = std::enable_if_t<!std::is_lvalue_reference_v<L>>>
  L track(L &&child, const std::string &attribute = "") {
    track_child(child.get(), attribute);
    return std::move(child);
  }
  void add_loss(const Tensor &loss) { detail::check(kiln_layer_add_loss(get(), loss.get())); }

  /// track's body: kiln_layer_track, or kiln_layer_track_as when attribute is not empty.
  void track_child(kiln_layer *child, const std::string &attribute) {
    detail::check(attribute.empty() ? kiln_layer_track(get(), child)
                                    : kiln_layer_track_as(get(), child, attribute.c_str()));
  }

  // For Model's constructor.
  struct ModelTag {};
  Layer(ModelTag, const std::string &class_name, const Config &base) { init_custom(class_name, base, true); }

 private:
  // What C's user_data points to: the C++ object while it lives. C owns it (destroy frees it),
  // and with it the object when kiln owns the object (one made by a registered class factory).
  struct Link {
    std::atomic<Layer *> self;  // atomic: a destroyed object is seen as gone on every thread
    bool owned = false;
  };
  static void on_destroy(void *p) {
    Link *link = static_cast<Link *>(p);
    if (Layer *self = link->self) {
      self->link_ = nullptr;  // the object may outlive its layer (assigned another one)
      if (link->owned) delete self;
    }
    delete link;
  }
  // Gives the object to kiln: the layer owns it from now on (its handle turns weak, so the
  // object does not keep itself alive), and the strong handle returned goes to the caller.
  kiln_layer *hand_over_to_kiln() {
    kiln_layer *weak = nullptr;
    detail::check(kiln_layer_clone_weak(&weak, get()));
    kiln_layer *strong = release();
    static_cast<handle &>(*this) = handle(weak);
    link_->owned = true;
    return strong;
  }
  template <typename T>
  friend void register_layer_class(const std::string &class_name);

  void init_custom(const std::string &class_name, const Config &base, bool model) {
    kiln_layer_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.build = &Layer::on_build;
    cb.call = &Layer::on_call;
    cb.get_config = &Layer::on_get_config;
    cb.call_with_mask = &Layer::on_call_with_mask;
    cb.compute_mask = &Layer::on_compute_mask;
    cb.destroy = &Layer::on_destroy;
    Link *link = new Link{this};
    kiln_layer *h = nullptr;
    kiln_status *st = model ? kiln_model_create_custom(&h, class_name.c_str(), base.get(), &cb, link)
                            : kiln_layer_create_custom(&h, class_name.c_str(), base.get(), &cb, link);
    if (st) delete link;  // not handed over on failure
    detail::check(st);
    static_cast<handle &>(*this) = handle(h);
    link_ = link;
  }

  // Runs fn on the C++ object behind user_data, turning exceptions into statuses.
  template <typename F>
  static kiln_status *guarded(void *user_data, const char *hook, F &&fn) {
    Layer *self = static_cast<Link *>(user_data)->self;
    if (!self)
      return kiln_status_create(KILN_STATUS_FAILED_PRECONDITION,
                                (std::string("the C++ object of this layer was destroyed before its ") + hook).c_str());
    return detail::status_of([&] { fn(*self); });
  }
  static kiln_status *on_build(kiln_layer *, const int64_t *dims, const size_t *ranks, size_t n, void *user_data) {
    return guarded(user_data, "build", [&](Layer &self) {
      std::vector<Dims> shapes;
      size_t at = 0;
      for (size_t i = 0; i < n; ++i) {
        shapes.emplace_back(dims + at, dims + at + ranks[i]);
        at += ranks[i];
      }
      self.build(shapes);
    });
  }
  static kiln_status *on_call(kiln_tensor_list *outputs, kiln_layer *, const kiln_tensor_list *inputs, bool training,
                              void *user_data) {
    return guarded(user_data, "call",
                   [&](Layer &self) { append_all(outputs, self.call(detail::from_list(inputs), training)); });
  }
  static kiln_status *on_call_with_mask(kiln_tensor_list *outputs, kiln_layer *,
                                        const kiln_tensor_list *inputs, const kiln_tensor_list *masks,
                                        bool training, void *user_data) {
    return guarded(user_data, "call", [&](Layer &self) {
      append_all(outputs, self.call_masked(detail::from_list(inputs), detail::from_list(masks), training));
    });
  }
  static kiln_status *on_compute_mask(kiln_tensor_list *out, kiln_layer *, const kiln_tensor_list *inputs,
                                      const kiln_tensor_list *masks, void *user_data) {
    return guarded(user_data, "compute_mask", [&](Layer &self) {
      append_all(out, self.compute_mask(detail::from_list(inputs), detail::from_list(masks)));
    });
  }
  static void append_all(kiln_tensor_list *list, const std::vector<Tensor> &tensors) {
    for (const Tensor &t : tensors) detail::check(kiln_tensor_list_append(list, t.get()));
  }
  static kiln_status *on_get_config(kiln_config *config, const kiln_layer *, void *user_data) {
    return guarded(user_data, "get_config", [&](Layer &self) {
      detail::BorrowedConfig b(config);
      self.get_config(b.c);
    });
  }

  Config config_call(kiln_status *(*fn)(kiln_config **, const kiln_layer *)) const {
    kiln_config *c = nullptr;
    detail::check(fn(&c, get()));
    return Config(c);
  }
  std::vector<Variable> list_variables(kiln_variables_kind kind) const {
    return detail::variables_from([this, kind](kiln_variable **out, size_t capacity, size_t *count) {
      return kiln_layer_get_variables(out, capacity, count, get(), kind);
    });
  }

  Link *link_ = nullptr;
};

// The training API's types, defined in the Training section at the end of this header.
class Loss;
class Metric;
class Callback;
class History;
namespace optimizers {
class Optimizer;
}
namespace data {
class Dataset;
}
struct CompileOptions;
struct FitOptions;
struct EvaluateOptions;
struct PredictOptions;
namespace train {
class LoadStatus;
}

/// A Keras model: a handle to a model (Sequential, a deserialized model) and the base of custom
/// models (Keras Model subclassing), with Keras's training API (kiln/training.h): compile, fit,
/// evaluate, predict, the *_on_batch calls and an overridable train_step / test_step.
///
///   kiln::Sequential model({kiln::layers::Dense(16, "relu"), kiln::layers::Dense(3)});
///   model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
///   kiln::History h = model.fit(x, y, kiln::FitOptions().with_epochs(3).with_validation_split(0.2));
///   std::map<std::string, double> logs = model.evaluate(x_test, y_test);
///   kiln::Tensor scores = model.predict(x_test);
///
/// A custom model subclasses Model (Model("MyModel") in its constructor) and may override
/// train_step / test_step, as in Keras; kiln's fit then calls them through the model's step
/// callbacks (kiln_model_set_step_callbacks). The defaults are Keras's: forward under a
/// GradientTape, compute_loss, the optimizer's apply_gradients, compute_metrics.
class Model : public Layer {
 public:
  Model() = default;
  /// Takes ownership of a C handle.
  explicit Model(kiln_layer *h) noexcept : Layer(h) {}
  /// A model handle for a layer that is a model (e.g. Layer::deserialize of a Sequential); throws
  /// kiln::Error (INVALID_ARGUMENT) for any other layer.
  explicit Model(const Layer &layer);
  Model(const Model &o) : Layer(o) {}
  Model &operator=(const Model &o) {
    Layer::operator=(o);
    return *this;
  }
  Model(Model &&o) noexcept;
  /// As Layer's; the train_step/test_step hooks follow the layer's callbacks.
  Model &operator=(Model &&o) noexcept;
  ~Model() override;

  /// Keras's compile. One loss for every output or one per output; unknown names throw
  /// kiln::Error (NOT_FOUND) listing the known ones. A new compile replaces the old state.
  void compile(const CompileOptions &options);
  /// compile(optimizer, loss, metrics), Keras's positional form: the optimizer an
  /// optimizers::Optimizer or a name ("adam"); the loss a kiln::Loss, a name
  /// ("sparse_categorical_crossentropy") or a vector of either (one per output); metrics a vector
  /// of names ({"accuracy"}) or of kiln::Metric objects. model.compile("adam", "mse") is one line.
  template <typename O, typename L, typename M = std::vector<std::string>>
  void compile(const O &optimizer, const L &loss, const M &metrics = M());
  bool is_compiled() const noexcept;
  /// model.optimizer: a handle to the compiled optimizer (changes reach training). Throws
  /// kiln::Error (FAILED_PRECONDITION) before compile.
  optimizers::Optimizer optimizer() const;
  /// model.stop_training: fit stops after the current batch once it is set (e.g. by a callback).
  bool stop_training() const noexcept;
  void set_stop_training(bool stop);
  /// model.metrics_names: "loss", then the compiled metrics once the first batch has built them.
  std::vector<std::string> metrics_names() const;
  /// Keras's model.metrics: the compiled metric objects in metrics_names' order (the loss tracker
  /// first), shared with the model, for a custom train_step to update; none before compile.
  std::vector<Metric> metrics() const;

  /// Keras's fit on one input and one target (FitOptions: Keras's defaults). Returns the History.
  /// An empty y (a default Tensor) is no targets, as fit(x).
  History fit(const Tensor &x, const Tensor &y);
  History fit(const Tensor &x, const Tensor &y, const FitOptions &options);
  /// Keras's fit(x) without targets: a model trained on its own add_loss losses (compiled without
  /// a loss; a compiled loss or metric that needs y is an INVALID_ARGUMENT naming it).
  History fit(const Tensor &x);
  History fit(const Tensor &x, const FitOptions &options);
  /// fit with one tensor per model input and one per output (y empty: no targets).
  History fit(const std::vector<Tensor> &x, const std::vector<Tensor> &y);
  History fit(const std::vector<Tensor> &x, const std::vector<Tensor> &y, const FitOptions &options);
  /// fit on a dataset of batches whose elements hold options.num_inputs x components, then the
  /// y components, then optionally a sample weight.
  History fit(const data::Dataset &dataset);
  History fit(const data::Dataset &dataset, const FitOptions &options);

  /// Keras's evaluate(..., return_dict=True): {"loss": ..., "accuracy": ...}. An empty y (a
  /// default Tensor, or evaluate(x)) is no targets, as for fit.
  std::map<std::string, double> evaluate(const Tensor &x, const Tensor &y);
  std::map<std::string, double> evaluate(const Tensor &x, const Tensor &y, const EvaluateOptions &options);
  std::map<std::string, double> evaluate(const Tensor &x);
  std::map<std::string, double> evaluate(const Tensor &x, const EvaluateOptions &options);
  std::map<std::string, double> evaluate(const std::vector<Tensor> &x, const std::vector<Tensor> &y);
  std::map<std::string, double> evaluate(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                                         const EvaluateOptions &options);
  std::map<std::string, double> evaluate(const data::Dataset &dataset);
  std::map<std::string, double> evaluate(const data::Dataset &dataset, const EvaluateOptions &options);

  /// Keras's predict of a single-output model: the batches' outputs stacked. Throws kiln::Error
  /// (INVALID_ARGUMENT) when the model has several outputs (use the vector form).
  Tensor predict(const Tensor &x);
  Tensor predict(const Tensor &x, const PredictOptions &options);
  /// predict with one tensor per input: one stacked tensor per output.
  std::vector<Tensor> predict(const std::vector<Tensor> &x);
  std::vector<Tensor> predict(const std::vector<Tensor> &x, const PredictOptions &options);
  std::vector<Tensor> predict(const data::Dataset &dataset);
  std::vector<Tensor> predict(const data::Dataset &dataset, const PredictOptions &options);

  /// Keras's train_on_batch(..., return_dict=True): one step; the logs of that batch. class_weight:
  /// class index -> weight (classes not listed weigh 1). An empty y (a default Tensor, or an empty
  /// vector) is no targets.
  std::map<std::string, double> train_on_batch(const Tensor &x, const Tensor &y,
                                               const Tensor &sample_weight = Tensor(),
                                               const std::map<int, double> &class_weight = {});
  std::map<std::string, double> train_on_batch(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                                               const Tensor &sample_weight = Tensor(),
                                               const std::map<int, double> &class_weight = {});
  /// Keras's test_on_batch(..., return_dict=True).
  std::map<std::string, double> test_on_batch(const Tensor &x, const Tensor &y,
                                              const Tensor &sample_weight = Tensor());
  std::map<std::string, double> test_on_batch(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                                              const Tensor &sample_weight = Tensor());
  /// Keras's predict_on_batch: the model's outputs (training false).
  Tensor predict_on_batch(const Tensor &x);
  std::vector<Tensor> predict_on_batch(const std::vector<Tensor> &x);

  /// Keras's train_step(data): one training step on a batch as fit unpacked it (the x components,
  /// the y components, then the sample weight if any); returns the logs ({"loss": ..., ...}).
  /// Override it in a custom model; the default is Keras's (forward under a GradientTape,
  /// compute_loss, apply_gradients, compute_metrics).
  virtual std::map<std::string, double> train_step(const std::vector<Tensor> &data);
  /// Keras's test_step(data): forward (training false), compute_loss, compute_metrics.
  virtual std::map<std::string, double> test_step(const std::vector<Tensor> &data);
  /// Keras's compute_loss(x, y, y_pred, sample_weight): the compiled losses (times loss_weights)
  /// plus the regularization losses, recorded on the calling thread's tapes. x may be empty.
  Tensor compute_loss(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                      const std::vector<Tensor> &y_pred, const Tensor &sample_weight = Tensor());
  Tensor compute_loss(const Tensor &x, const Tensor &y, const Tensor &y_pred,
                      const Tensor &sample_weight = Tensor());
  /// Keras's compute_metrics(x, y, y_pred, sample_weight): updates the compiled metrics and gives
  /// their results (the loss tracker holds the last compute_loss value).
  std::map<std::string, double> compute_metrics(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                                                const std::vector<Tensor> &y_pred,
                                                const Tensor &sample_weight = Tensor());
  std::map<std::string, double> compute_metrics(const Tensor &x, const Tensor &y, const Tensor &y_pred,
                                                const Tensor &sample_weight = Tensor());

  /// Keras's save_weights(filepath) in TensorFlow format: the weights (and a compiled model's
  /// optimizer state) as a checkpoint at exactly filepath, which the directory's `checkpoint`
  /// state file then names (kiln_model_save_weights).
  void save_weights(const std::string &filepath);
  /// Keras's load_weights(filepath): a checkpoint prefix, or a directory's latest checkpoint. A
  /// compiled model's optimizer is restored too (its slots when it makes them); an unbuilt model
  /// takes the values when it builds (Keras's deferred restoration). Throws kiln::Error
  /// (FAILED_PRECONDITION when nothing matched; INVALID_ARGUMENT naming both shapes for a weight
  /// that does not fit; DATA_LOSS for a corrupt file) and changes nothing then. Returns the
  /// restore's status.
  train::LoadStatus load_weights(const std::string &filepath);
  /// Keras's model.save(export_dir): the SavedModel (kiln::saved_model::save with the default
  /// signature), which kiln::models::load_model brings back without this model's source.
  void save(const std::string &export_dir) const;

 protected:
  /// For subclasses: a custom model of class class_name (base may hold name, trainable, dtype);
  /// fit runs its train_step / test_step.
  explicit Model(const std::string &class_name, const Config &base = Config());

  /// A batch split as Keras's unpack_x_y_sample_weight: the data of train_step / test_step.
  struct StepData {
    std::vector<Tensor> x, y;
    Tensor sample_weight;
  };
  /// Splits a step's data into x, y and the sample weight, by the layout of the fit / evaluate
  /// call that runs the step (x, y, [sw] for one input and one output).
  static StepData unpack_data(const std::vector<Tensor> &data);

 private:
  // What the step callbacks' user_data points to: the C++ object while it lives (C owns it).
  struct StepLink {
    std::atomic<Model *> self;
  };
  static kiln_status *on_train_step(kiln_config *logs, kiln_layer *, const kiln_tensor_list *data,
                                    void *user_data);
  static kiln_status *on_test_step(kiln_config *logs, kiln_layer *, const kiln_tensor_list *data,
                                   void *user_data);
  static void on_step_destroy(void *user_data);
  void write_logs(kiln_config *logs, const std::map<std::string, double> &values) const;

  StepLink *step_link_ = nullptr;
};

/// keras.Sequential: layers applied in order; nestable; a Model, so it trains with fit.
class Sequential : public Model {
 public:
  explicit Sequential(const std::vector<Layer> &layers = {}, const std::string &name = "") {
    Config c;
    if (!name.empty()) c.set("name", name);
    static_cast<Layer &>(*this) = Layer::create("Sequential", c);
    for (const Layer &l : layers) add(l);
  }
  void add(const Layer &layer) { detail::check(kiln_sequential_add(get(), layer.get())); }
  void pop() { detail::check(kiln_sequential_pop(get())); }
};

namespace detail {
using LayerClassFactory = std::function<Layer(const Config &config)>;
inline kiln_status *layer_class_from_config(kiln_layer **out, const kiln_config *config, void *user_data) {
  return status_of([&] {
    BorrowedConfig b(config);
    Layer l = (*static_cast<LayerClassFactory *>(user_data))(b.c);
    if (!l.valid()) throw Error(KILN_STATUS_INTERNAL, "the class factory gave an empty layer");
    *out = l.release();
  });
}
}  // namespace detail

/// Registers a custom layer class, so Layer::create(class_name, config) and Layer::deserialize
/// (a Sequential holding the class) make it from its config, as Keras's registered custom
/// objects: factory returns a new layer for a config (what the class's get_config wrote).
/// class_name may carry a package ("MyPackage>MyDense"). Replaces an earlier registration.
inline void register_layer_class(const std::string &class_name, detail::LayerClassFactory factory) {
  kiln_layer_class_callbacks cb{};
  cb.struct_size = sizeof cb;
  cb.from_config = &detail::layer_class_from_config;
  cb.destroy = [](void *p) { delete static_cast<detail::LayerClassFactory *>(p); };
  auto *f = new detail::LayerClassFactory(std::move(factory));
  kiln_status *st = kiln_layer_register_class(class_name.c_str(), &cb, f);
  if (st) delete f;
  detail::check(st);
}

/// Registers a Layer (or Model) subclass T with a constructor T(const Config &config): a layer
/// made from a config is owned by kiln (its parents and handles), as a built-in layer is, and
/// the T object lives as long as the layer.
template <typename T>
void register_layer_class(const std::string &class_name) {
  static_assert(std::is_base_of_v<Layer, T>, "register_layer_class<T>: T must derive from kiln::Layer");
  register_layer_class(class_name, [](const Config &config) {
    auto obj = std::make_unique<T>(config);
    if (!obj->link_)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, "register_layer_class<T>: T(config) did not make a custom layer");
    kiln_layer *strong = obj->hand_over_to_kiln();
    obj.release();  // the layer owns it now
    return Layer(strong);
  });
}

/// Ends the registration of a custom layer class (layers already made live on).
inline void unregister_layer_class(const std::string &class_name) {
  detail::check(kiln_layer_unregister_class(class_name.c_str()));
}
/// Whether class_name is a registered layer class (built-in or custom).
inline bool layer_class_registered(const std::string &class_name) {
  return kiln_layer_class_is_registered(class_name.c_str());
}

/// Built-in layers with typed options (Keras's names and defaults).
namespace layers {

namespace detail {
inline void set_if(Config &c, const char *key, const std::string &v) {
  if (!v.empty()) c.set(key, v);
}
}  // namespace detail

struct DenseOptions {
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  std::string kernel_regularizer;  ///< "", "l1", "l2", "l1_l2"
  std::string bias_regularizer;
  std::string activity_regularizer;  ///< on the output; its loss is divided by the batch size
  std::string name;
};
namespace detail {
/// The initializers, regularizers and name of Dense-like options.
template <typename Options>
void set_kernel_bias(Config &c, const Options &o) {
  c.set("kernel_initializer", o.kernel_initializer).set("bias_initializer", o.bias_initializer);
  set_if(c, "kernel_regularizer", o.kernel_regularizer);
  set_if(c, "bias_regularizer", o.bias_regularizer);
  set_if(c, "activity_regularizer", o.activity_regularizer);
  set_if(c, "name", o.name);
}
}  // namespace detail
inline Layer Dense(int64_t units, const DenseOptions &o = {}) {
  Config c;
  c.set("units", units).set("activation", o.activation).set("use_bias", o.use_bias);
  detail::set_kernel_bias(c, o);
  return Layer::create("Dense", c);
}
/// Dense(64, "relu"): Keras's positional activation.
inline Layer Dense(int64_t units, const std::string &activation, DenseOptions o = DenseOptions()) {
  o.activation = activation;
  return Dense(units, o);
}

/// keras.layers.EinsumDense: einsum(equation, x, kernel) + bias, then the activation.
/// output_shape: the output's shape without its batch axis (and without the ellipsis's axes),
/// -1 for an axis the input gives; bias_axes: the output axes that get a bias ("" = none).
struct EinsumDenseOptions {
  std::string activation = "linear";
  std::string bias_axes;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  std::string kernel_regularizer;
  std::string bias_regularizer;
  std::string activity_regularizer;
  std::string name;
};
inline Layer EinsumDense(const std::string &equation, const Dims &output_shape,
                         const EinsumDenseOptions &o = {}) {
  Config c;
  c.set("equation", equation).set("output_shape", output_shape).set("activation", o.activation);
  detail::set_if(c, "bias_axes", o.bias_axes);
  detail::set_kernel_bias(c, o);
  return Layer::create("EinsumDense", c);
}

inline Layer Activation(const std::string &activation, const std::string &name = "") {
  Config c;
  c.set("activation", activation);
  detail::set_if(c, "name", name);
  return Layer::create("Activation", c);
}

struct DropoutOptions {
  Dims noise_shape;  ///< empty: the input's shape; -1 entries take the input's dim
  int64_t seed = -1; ///< -1: none
  std::string name;
};
namespace detail {
inline Layer dropout_like(const char *class_name, double rate, const DropoutOptions &o) {
  Config c;
  c.set("rate", rate);
  if (!o.noise_shape.empty()) c.set("noise_shape", o.noise_shape);
  if (o.seed >= 0) c.set("seed", o.seed);
  set_if(c, "name", o.name);
  return Layer::create(class_name, c);
}
}  // namespace detail
inline Layer Dropout(double rate, const DropoutOptions &o = {}) {
  return detail::dropout_like("Dropout", rate, o);
}

/// keras.layers.Flatten; data_format "channels_first" moves the channel axis (1) last first.
inline Layer Flatten(const std::string &name = "", const std::string &data_format = "channels_last") {
  Config c;
  detail::set_if(c, "name", name);
  c.set("data_format", data_format);
  return Layer::create("Flatten", c);
}

/// keras.layers.InputLayer's arguments beside the shape.
struct InputOptions {
  int64_t batch_size = -1;        ///< -1: None (any batch size)
  std::string dtype = "float32";  ///< the input's dtype ("int32" for Embedding's indices)
  std::string name;
};
/// keras.layers.InputLayer(shape): the input shape (without the batch axis; -1 for None) and dtype
/// of a Sequential model, as its first layer; the model is then built as layers are added:
/// kiln::Sequential({kiln::layers::Input({784}), kiln::layers::Dense(10)}).
inline Layer InputLayer(const Dims &shape, const InputOptions &o = {}) {
  std::string json = "{\"batch_shape\": [";
  json += o.batch_size < 0 ? "null" : std::to_string(o.batch_size);
  for (int64_t d : shape) json += ", " + (d < 0 ? std::string("null") : std::to_string(d));
  Config c = Config::from_json(json + "]}");
  c.set("dtype", o.dtype);
  detail::set_if(c, "name", o.name);
  return Layer::create("InputLayer", c);
}
/// keras.Input(shape): kiln has no functional API, so this is the InputLayer, for the first place
/// of a Sequential model.
inline Layer Input(const Dims &shape, const InputOptions &o = {}) { return InputLayer(shape, o); }

inline Layer Reshape(const Dims &target_shape, const std::string &name = "") {
  Config c;
  c.set("target_shape", target_shape);
  detail::set_if(c, "name", name);
  return Layer::create("Reshape", c);
}

struct EmbeddingOptions {
  std::string embeddings_initializer = "random_uniform";
  bool mask_zero = false;
  std::string name;
};
inline Layer Embedding(int64_t input_dim, int64_t output_dim, const EmbeddingOptions &o = {}) {
  Config c;
  c.set("input_dim", input_dim).set("output_dim", output_dim);
  c.set("embeddings_initializer", o.embeddings_initializer).set("mask_zero", o.mask_zero);
  detail::set_if(c, "name", o.name);
  return Layer::create("Embedding", c);
}

/// keras.layers.Masking(mask_value): steps whose features all equal mask_value become zeros and
/// get a false mask.
inline Layer Masking(double mask_value = 0.0, const std::string &name = "") {
  Config c;
  c.set("mask_value", mask_value);
  detail::set_if(c, "name", name);
  return Layer::create("Masking", c);
}

struct LayerNormalizationOptions {
  Dims axis = {-1};
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  std::string name;
};
inline Layer LayerNormalization(const LayerNormalizationOptions &o = {}) {
  Config c;
  c.set("axis", o.axis).set("epsilon", o.epsilon).set("center", o.center).set("scale", o.scale);
  detail::set_if(c, "name", o.name);
  return Layer::create("LayerNormalization", c);
}
struct GroupNormalizationOptions {
  int64_t groups = 32;  ///< -1: a group per channel (instance normalization)
  int64_t axis = -1;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  std::string name;
};
/// keras.layers.GroupNormalization: each group of channels normalized over its channels and the
/// other non-batch axes, then gamma and beta per channel.
inline Layer GroupNormalization(const GroupNormalizationOptions &o = {}) {
  Config c;
  c.set("groups", o.groups).set("axis", o.axis).set("epsilon", o.epsilon).set("center", o.center);
  c.set("scale", o.scale);
  detail::set_if(c, "name", o.name);
  return Layer::create("GroupNormalization", c);
}
/// keras.layers.UnitNormalization(axis=-1): x scaled to unit L2 norm over the axes.
inline Layer UnitNormalization(const Dims &axis = {-1}, const std::string &name = "") {
  Config c;
  c.set("axis", axis);
  detail::set_if(c, "name", name);
  return Layer::create("UnitNormalization", c);
}
/// keras.layers.RMSNormalization(axis=-1, epsilon=1e-6): x * rsqrt(mean(x^2) + epsilon) * scale over
/// the trailing axes (weight "scale", ones).
inline Layer RMSNormalization(const Dims &axis = {-1}, double epsilon = 1e-6, const std::string &name = "") {
  Config c;
  c.set("axis", axis).set("epsilon", epsilon);
  detail::set_if(c, "name", name);
  return Layer::create("RMSNormalization", c);
}

/// Options of the recurrent layers (keras.layers.SimpleRNN, GRU, LSTM), with Keras's defaults.
/// recurrent_activation, unit_forget_bias (LSTM) and reset_after (GRU) apply where the layer has them.
struct RecurrentOptions {
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string recurrent_initializer = "orthogonal";
  std::string bias_initializer = "zeros";
  bool unit_forget_bias = true;
  bool reset_after = true;
  double dropout = 0.0;            ///< on the inputs, one mask per call (training only)
  double recurrent_dropout = 0.0;  ///< on the state entering each step, one mask per call
  int64_t seed = -1;               ///< -1: none
  bool return_sequences = false;   ///< every step's output [B, T, units], else the last [B, units]
  bool return_state = false;       ///< the final states follow the output (h, and c for LSTM)
  bool go_backwards = false;
  bool zero_output_for_mask = false;
  std::string name;
};
namespace detail {
// Keras's RNN loop keys from the options o of any recurrent layer.
template <typename Options>
void set_loop(Config &c, const Options &o) {
  c.set("return_sequences", o.return_sequences).set("return_state", o.return_state);
  c.set("go_backwards", o.go_backwards).set("zero_output_for_mask", o.zero_output_for_mask);
}
// A recurrent layer of kind ("SimpleRNN", "GRU", "LSTM"), or its cell (cell: class kind + "Cell",
// without the loop's keys).
inline Layer recurrent(const std::string &kind, int64_t units, const RecurrentOptions &o, bool cell = false) {
  Config c;
  c.set("units", units).set("activation", o.activation).set("use_bias", o.use_bias);
  if (kind != "SimpleRNN") c.set("recurrent_activation", o.recurrent_activation);
  if (kind == "LSTM") c.set("unit_forget_bias", o.unit_forget_bias);
  if (kind == "GRU") c.set("reset_after", o.reset_after);
  c.set("kernel_initializer", o.kernel_initializer).set("recurrent_initializer", o.recurrent_initializer);
  c.set("bias_initializer", o.bias_initializer).set("dropout", o.dropout);
  c.set("recurrent_dropout", o.recurrent_dropout);
  if (!cell) set_loop(c, o);
  if (o.seed >= 0) c.set("seed", o.seed);
  set_if(c, "name", o.name);
  return Layer::create(cell ? kind + "Cell" : kind, c);
}
}  // namespace detail
/// keras.layers.SimpleRNNCell / GRUCell / LSTMCell(units): one step of the layer, for layers::RNN or
/// to call alone: cell.call_cell(x, {h}) (LSTMCell: {h, c}) gives the output and the new states.
/// The options' cell arguments apply (return_sequences and the other loop options do not).
inline Layer SimpleRNNCell(int64_t units, const RecurrentOptions &o = {}) {
  return detail::recurrent("SimpleRNN", units, o, true);
}
inline Layer GRUCell(int64_t units, const RecurrentOptions &o = {}) {
  return detail::recurrent("GRU", units, o, true);
}
inline Layer LSTMCell(int64_t units, const RecurrentOptions &o = {}) {
  return detail::recurrent("LSTM", units, o, true);
}
/// keras.layers.StackedRNNCells(cells): the cells run one after the other in each step; its states
/// are the cells' states one after the other.
inline Layer StackedRNNCells(const std::vector<Layer> &cells, const std::string &name = "") {
  Config c;
  detail::set_if(c, "name", name);
  return Layer::create_around("StackedRNNCells", cells, c);
}
/// keras.layers.RNN's own options, with Keras's defaults.
struct RNNOptions {
  bool return_sequences = false;  ///< every step's output [B, T, ...], else the last
  bool return_state = false;      ///< the final states follow the output
  bool go_backwards = false;
  bool zero_output_for_mask = false;
  std::string activity_regularizer;  ///< "l1", "l2", ... on the outputs; empty: none
  std::string name;
};
/// keras.layers.RNN(cell): runs the cell (this object, not a copy) over the time steps of
/// [sequences] or [sequences, initial states...]. The cell is a built-in cell or any layer with a
/// state size (Layer::set_state_size) whose call takes {x, states...} and returns {output, states...}.
/// A custom cell object (a Layer subclass) must outlive the RNN: calls after it is destroyed fail
/// with FAILED_PRECONDITION.
inline Layer RNN(const std::vector<Layer> &cells, const RNNOptions &o = {}) {
  Config c;
  detail::set_loop(c, o);
  detail::set_if(c, "activity_regularizer", o.activity_regularizer);
  detail::set_if(c, "name", o.name);
  return Layer::create_around("RNN", cells, c);
}
inline Layer RNN(const Layer &cell, const RNNOptions &o = {}) { return RNN(std::vector<Layer>{cell}, o); }
/// keras.layers.SimpleRNN(units): h = activation(x @ kernel + bias + h @ recurrent_kernel) per step.
/// Call it on [sequences] or [sequences, h0]; a mask on the sequences skips steps.
inline Layer SimpleRNN(int64_t units, const RecurrentOptions &o = {}) {
  return detail::recurrent("SimpleRNN", units, o);
}
/// keras.layers.GRU(units): Keras 3's GRU; inputs [sequences] or [sequences, h0].
inline Layer GRU(int64_t units, const RecurrentOptions &o = {}) { return detail::recurrent("GRU", units, o); }
/// keras.layers.LSTM(units): Keras 3's LSTM; inputs [sequences] or [sequences, h0, c0].
inline Layer LSTM(int64_t units, const RecurrentOptions &o = {}) {
  return detail::recurrent("LSTM", units, o);
}
/// Options of keras.layers.ConvLSTM1D / ConvLSTM2D / ConvLSTM3D, with Keras's defaults. strides and
/// dilation_rate are Dims of one value (every spatial axis) or one per axis.
struct ConvLSTMOptions {
  Dims strides = {1};
  std::string padding =
      "valid";  ///< "valid" or "same" (of the input convolution; the recurrent one is "same")
  Dims dilation_rate = {1};
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string recurrent_initializer = "orthogonal";
  std::string bias_initializer = "zeros";
  bool unit_forget_bias = true;
  std::string kernel_regularizer;  ///< "", "l1", "l2", "l1_l2"
  std::string recurrent_regularizer;
  std::string bias_regularizer;
  std::string activity_regularizer;
  double dropout = 0.0;            ///< on the inputs, one mask per gate and call (training only)
  double recurrent_dropout = 0.0;  ///< on h entering each step, one mask per gate and call
  int64_t seed = -1;               ///< -1: none
  bool return_sequences = false;   ///< every step's h [B, T, out..., filters], else the last
  bool return_state = false;       ///< the final h and c follow the output
  bool go_backwards = false;
  bool zero_output_for_mask = false;
  std::string name;
};
namespace detail {
inline Layer conv_lstm(const char *class_name, int64_t filters, const Dims &kernel_size,
                       const ConvLSTMOptions &o) {
  Config c;
  c.set("filters", filters).set("kernel_size", kernel_size).set("strides", o.strides);
  c.set("padding", o.padding).set("dilation_rate", o.dilation_rate).set("activation", o.activation);
  c.set("recurrent_activation", o.recurrent_activation).set("use_bias", o.use_bias);
  c.set("kernel_initializer", o.kernel_initializer).set("recurrent_initializer", o.recurrent_initializer);
  c.set("bias_initializer", o.bias_initializer).set("unit_forget_bias", o.unit_forget_bias);
  set_if(c, "kernel_regularizer", o.kernel_regularizer);
  set_if(c, "recurrent_regularizer", o.recurrent_regularizer);
  set_if(c, "bias_regularizer", o.bias_regularizer);
  set_if(c, "activity_regularizer", o.activity_regularizer);
  c.set("dropout", o.dropout).set("recurrent_dropout", o.recurrent_dropout);
  set_loop(c, o);
  if (o.seed >= 0) c.set("seed", o.seed);
  set_if(c, "name", o.name);
  return Layer::create(class_name, c);
}
}  // namespace detail
/// keras.layers.ConvLSTM1D / 2D / 3D(filters, kernel_size): an LSTM whose transformations are
/// convolutions, channels last. Inputs [sequences [B, T, spatial..., C]] or [sequences, h0, c0] (each
/// [B, out spatial..., filters]); outputs the last h (every step's with return_sequences), then h
/// and c with return_state. Weights: kernel [k..., C, 4 * filters], recurrent_kernel
/// [k..., filters, 4 * filters], bias [4 * filters] (gates i, f, c, o).
inline Layer ConvLSTM1D(int64_t filters, const Dims &kernel_size, const ConvLSTMOptions &o = {}) {
  return detail::conv_lstm("ConvLSTM1D", filters, kernel_size, o);
}
inline Layer ConvLSTM2D(int64_t filters, const Dims &kernel_size, const ConvLSTMOptions &o = {}) {
  return detail::conv_lstm("ConvLSTM2D", filters, kernel_size, o);
}
inline Layer ConvLSTM3D(int64_t filters, const Dims &kernel_size, const ConvLSTMOptions &o = {}) {
  return detail::conv_lstm("ConvLSTM3D", filters, kernel_size, o);
}
/// keras.layers.Bidirectional(layer, merge_mode): a copy of the recurrent layer run forwards and one
/// run backwards, merged by merge_mode ("concat", "sum", "ave", "mul", or "" for both outputs);
/// inputs [sequences] or [sequences, forward states..., backward states...].
inline Layer Bidirectional(const Layer &layer, const std::string &merge_mode = "concat",
                           const std::string &name = "") {
  Config c;
  if (merge_mode.empty())
    c.set_null("merge_mode");
  else
    c.set("merge_mode", merge_mode);
  c.set("layer", layer.serialize());
  detail::set_if(c, "name", name);
  return Layer::create("Bidirectional", c);
}
/// keras.layers.TimeDistributed(layer): the layer applied to every step of [batch, time, ...].
inline Layer TimeDistributed(const Layer &layer, const std::string &name = "") {
  Config c;
  c.set("layer", layer.serialize());
  detail::set_if(c, "name", name);
  return Layer::create("TimeDistributed", c);
}
/// keras.layers.SpectralNormalization(layer, power_iterations): before each training call the layer's
/// kernel (or embeddings) is divided by its largest singular value, estimated by power iteration.
inline Layer SpectralNormalization(const Layer &layer, int64_t power_iterations = 1,
                                   const std::string &name = "") {
  Config c;
  c.set("layer", layer.serialize()).set("power_iterations", power_iterations);
  detail::set_if(c, "name", name);
  return Layer::create("SpectralNormalization", c);
}

namespace detail {
// A config value of n-dim nested lists of values (row-major) as JSON text; Python's tokens for
// the non-finite numbers, which kiln's JSON reader takes.
inline std::string nested_json(const std::vector<double> &values, const Dims &shape, size_t depth,
                               size_t &pos) {
  if (depth == shape.size()) {
    const double v = values[pos++];
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  std::string s = "[";
  for (int64_t i = 0; i < shape[depth]; ++i) s += (i ? "," : "") + nested_json(values, shape, depth + 1, pos);
  return s + "]";
}
inline std::string nested_json(const std::vector<double> &values, Dims shape, const char *what) {
  if (values.empty()) return "null";
  if (shape.empty() && values.size() > 1) shape = {static_cast<int64_t>(values.size())};
  int64_t n = 1;
  for (int64_t d : shape) n = d < 0 ? -1 : n * d;
  if (n != static_cast<int64_t>(values.size()))
    throw Error(KILN_STATUS_INVALID_ARGUMENT,
                std::string("Normalization: ") + what + " has " + std::to_string(values.size()) +
                    " values; mean_shape holds " +
                    (n < 0 ? std::string("none (a negative dim)") : std::to_string(n)));
  size_t pos = 0;
  return nested_json(values, shape, 0, pos);
}
}  // namespace detail

/// keras.layers.Normalization: (x - mean) / sqrt(variance) per index of the kept axes, or its
/// inverse; mean and variance given here or computed by Layer::adapt (then the layer's
/// non-trainable weights "mean", "variance" and "count").
struct NormalizationOptions {
  Dims axis = {-1};              ///< the kept axes; {} for Keras's axis=None (one mean over every value)
  std::vector<double> mean;      ///< empty (default): adapt() computes them; else row-major values
  std::vector<double> variance;  ///< as mean (both or neither)
  Dims mean_shape;               ///< mean's and variance's shape; {} for one value, or {n} for n values
  bool invert = false;           ///< the inverse: x * sqrt(variance) + mean
  std::string name;
};
inline Layer Normalization(const NormalizationOptions &o = {}) {
  Config c =
      Config::from_json("{\"mean\": " + detail::nested_json(o.mean, o.mean_shape, "mean") +
                        ", \"variance\": " + detail::nested_json(o.variance, o.mean_shape, "variance") + "}");
  c.set("axis", o.axis).set("invert", o.invert);
  detail::set_if(c, "name", o.name);
  return Layer::create("Normalization", c);
}

/// keras.layers.Discretization: each value's bin, i where bin_boundaries[i - 1] <= x < bin_boundaries[i]
/// (compared in float32; NaN in the last bin), as int32 ("int") or encoded over the bins as
/// CategoryEncoding encodes ("one_hot", "multi_hot", "count"). Give the boundaries, or num_bins and
/// compute num_bins - 1 boundaries at the data's approximate quantiles with Layer::adapt, as Keras.
struct DiscretizationOptions {
  std::vector<double> bin_boundaries;  ///< ascending; used when num_bins is 0 (none: one bin)
  int64_t num_bins = 0;                ///< > 0: adapt() computes the boundaries (bin_boundaries empty)
  double epsilon = 0.01;               ///< the quantile summaries' error tolerance
  std::string output_mode = "int";
  std::string name;
};
inline Layer Discretization(const DiscretizationOptions &o) {
  if (o.num_bins > 0 && !o.bin_boundaries.empty())
    throw Error(KILN_STATUS_INVALID_ARGUMENT,
                "Discretization: set num_bins or bin_boundaries, not both; got num_bins=" + std::to_string(o.num_bins) +
                    " and " + std::to_string(o.bin_boundaries.size()) + " bin_boundaries");
  Config c;
  if (o.num_bins > 0)
    c.set("num_bins", o.num_bins);
  else
    c.set("bin_boundaries", o.bin_boundaries);
  c.set("epsilon", o.epsilon).set("output_mode", o.output_mode);
  detail::set_if(c, "name", o.name);
  return Layer::create("Discretization", c);
}

/// keras.layers.IntegerLookup: integer tokens mapped to indices of a vocabulary, given here or
/// learned by Layer::adapt (the most frequent tokens); indices 0.. are the mask (output_mode "int")
/// and OOV indices. output_mode "int" gives int64 indices (or tokens, with invert); "one_hot",
/// "multi_hot", "count" and "tf_idf" give float32 encodings over the vocabulary.
struct IntegerLookupOptions {
  int64_t max_tokens = 0;             ///< 0: no cap (Keras's None); else > 1, special indices included
  int64_t num_oov_indices = 1;        ///< OOV tokens go to index floormod(token, num_oov_indices)
  std::optional<int64_t> mask_token;  ///< none (default): no mask index
  int64_t oov_token = -1;             ///< the token invert gives for OOV indices
  std::vector<int64_t> vocabulary;    ///< empty: adapt() learns it
  std::string vocabulary_file;        ///< or: a text file of one token per line
  std::vector<double> idf_weights;    ///< "tf_idf" with a vocabulary: one weight per token
  bool invert = false;                ///< indices to tokens (output_mode "int" only)
  std::string output_mode = "int";
  bool pad_to_max_tokens = false;       ///< encodings max_tokens wide
  std::string oov_method = "floormod";  ///< or "farmhash": OOV buckets by TF's hash of the token's digits
  std::vector<int64_t> salt;            ///< "farmhash" only: none, one int, or two (SipHash's key)
  std::string name;
};
inline Layer IntegerLookup(const IntegerLookupOptions &o = {}) {
  Config c;
  if (o.max_tokens != 0) c.set("max_tokens", o.max_tokens);
  c.set("num_oov_indices", o.num_oov_indices);
  if (o.mask_token) c.set("mask_token", *o.mask_token);
  c.set("oov_token", o.oov_token);
  if (!o.vocabulary_file.empty()) c.set("vocabulary", o.vocabulary_file);
  if (!o.vocabulary.empty()) c.set("vocabulary", o.vocabulary);
  if (!o.idf_weights.empty()) c.set("idf_weights", o.idf_weights);
  c.set("invert", o.invert).set("output_mode", o.output_mode).set("pad_to_max_tokens", o.pad_to_max_tokens);
  c.set("oov_method", o.oov_method);
  if (!o.salt.empty()) c.set("salt", o.salt);
  detail::set_if(c, "name", o.name);
  return Layer::create("IntegerLookup", c);
}

/// keras.layers.Hashing: each value's bin, TF's to_hash_bucket of its text (integers as decimal
/// digits, floats truncated first): FarmHash's fingerprint modulo num_bins, or with a salt SipHash
/// keyed by it. With a mask_value the mask is bin 0 and other values hash into 1 .. num_bins - 1.
/// output_mode "int" gives int64 bins; "one_hot", "multi_hot", "count" float32 encodings.
struct HashingOptions {
  std::optional<double> mask_value;  ///< none (default): no mask bin; an integral value is an int
  std::vector<int64_t> salt;         ///< none (FarmHash), one int (both halves) or two (SipHash's key)
  std::string output_mode = "int";
  std::string name;
};
inline Layer Hashing(int64_t num_bins, const HashingOptions &o = {}) {
  Config c;
  c.set("num_bins", num_bins);
  if (o.mask_value) {
    const double m = *o.mask_value;
    if (m == std::trunc(m) && m > -9.2e18 && m < 9.2e18)
      c.set("mask_value", static_cast<int64_t>(m));
    else
      c.set("mask_value", m);
  }
  if (!o.salt.empty()) c.set("salt", o.salt);
  c.set("output_mode", o.output_mode);
  detail::set_if(c, "name", o.name);
  return Layer::create("Hashing", c);
}

/// keras.layers.HashedCrossing: the cross of two or more integer features (shape (), (batch,) or
/// (batch, 1)) hashed as TF's sparse.cross_hashed into num_bins bins; call it on a list of features.
/// output_mode "int" gives int64 bins, "one_hot" float32 rows.
inline Layer HashedCrossing(int64_t num_bins, const std::string &output_mode = "int",
                            const std::string &name = "") {
  Config c;
  c.set("num_bins", num_bins).set("output_mode", output_mode);
  detail::set_if(c, "name", name);
  return Layer::create("HashedCrossing", c);
}

struct BatchNormalizationOptions {
  double momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  std::string name;
};
inline Layer BatchNormalization(const BatchNormalizationOptions &o = {}) {
  Config c;
  c.set("momentum", o.momentum).set("epsilon", o.epsilon).set("center", o.center).set("scale", o.scale);
  detail::set_if(c, "name", o.name);
  return Layer::create("BatchNormalization", c);
}

// ---- convolution and pooling layers (conv_layers.cc)
// Channels last. Window sizes, strides and dilations are Dims of one value (every spatial axis)
// or one per axis: Conv2D(32, {3}) and Conv2D(32, {3, 3}) are the same layer.

/// The settings Conv1D/2D/3D, DepthwiseConv2D, SeparableConv1D/2D and Conv1D/2D/3DTranspose share (Keras's
/// defaults).
struct ConvOptions {
  Dims strides = {1};
  std::string padding = "valid";  ///< "valid" or "same"; Conv1D also "causal"
  Dims dilation_rate = {1};
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";  ///< DepthwiseConv2D: its depthwise_initializer
  std::string bias_initializer = "zeros";
  std::string kernel_regularizer;  ///< "", "l1", "l2", "l1_l2"; DepthwiseConv2D: depthwise_regularizer
  std::string bias_regularizer;
  std::string name;
};

namespace detail {
// The config of a convolution whose kernel settings are written under `kernel` ("kernel" or
// "depthwise": Keras's kernel_initializer or depthwise_initializer).
inline Config conv_config(const Dims &kernel_size, const ConvOptions &o, const std::string &kernel) {
  Config c;
  c.set("kernel_size", kernel_size).set("strides", o.strides).set("padding", o.padding);
  c.set("dilation_rate", o.dilation_rate).set("activation", o.activation).set("use_bias", o.use_bias);
  c.set(kernel + "_initializer", o.kernel_initializer).set("bias_initializer", o.bias_initializer);
  set_if(c, (kernel + "_regularizer").c_str(), o.kernel_regularizer);
  set_if(c, "bias_regularizer", o.bias_regularizer);
  set_if(c, "name", o.name);
  return c;
}
inline Layer filters_conv(const char *class_name, int64_t filters, const Dims &kernel_size, const ConvOptions &o) {
  Config c = conv_config(kernel_size, o, "kernel");
  c.set("filters", filters);
  return Layer::create(class_name, c);
}
}  // namespace detail

/// keras.layers.Conv1D: x [N, W, C] -> [N, OW, filters]; kernel [kw, C, filters].
inline Layer Conv1D(int64_t filters, const Dims &kernel_size, const ConvOptions &o = {}) {
  return detail::filters_conv("Conv1D", filters, kernel_size, o);
}
/// keras.layers.Conv2D: x [N, H, W, C] -> [N, OH, OW, filters]; kernel [kh, kw, C, filters].
inline Layer Conv2D(int64_t filters, const Dims &kernel_size, const ConvOptions &o = {}) {
  return detail::filters_conv("Conv2D", filters, kernel_size, o);
}
/// keras.layers.Conv3D: x [N, D, H, W, C] -> [N, OD, OH, OW, filters]; kernel [kd, kh, kw, C, filters].
inline Layer Conv3D(int64_t filters, const Dims &kernel_size, const ConvOptions &o = {}) {
  return detail::filters_conv("Conv3D", filters, kernel_size, o);
}
/// Conv2D(32, {3}, "relu"): Keras's activation argument.
inline Layer Conv2D(int64_t filters, const Dims &kernel_size, const std::string &activation, ConvOptions o = {}) {
  o.activation = activation;
  return Conv2D(filters, kernel_size, o);
}

/// DepthwiseConv2D's settings: ConvOptions' kernel_* fields are its depthwise_* keys.
struct DepthwiseConv2DOptions : ConvOptions {
  int64_t depth_multiplier = 1;
};
/// keras.layers.DepthwiseConv2D: [N, H, W, C] -> [N, OH, OW, C * depth_multiplier];
/// depthwise_kernel [kh, kw, C, depth_multiplier].
namespace detail {
inline Layer depthwise_conv(const char *cls, const Dims &kernel_size, const DepthwiseConv2DOptions &o) {
  Config c = conv_config(kernel_size, o, "depthwise");
  c.set("depth_multiplier", o.depth_multiplier);
  return Layer::create(cls, c);
}
}  // namespace detail
inline Layer DepthwiseConv2D(const Dims &kernel_size, const DepthwiseConv2DOptions &o = {}) {
  return detail::depthwise_conv("DepthwiseConv2D", kernel_size, o);
}
/// keras.layers.DepthwiseConv1D: [N, W, C] -> [N, OW, C * depth_multiplier]; depthwise_kernel [kw, C,
/// depth_multiplier].
inline Layer DepthwiseConv1D(const Dims &kernel_size, const DepthwiseConv2DOptions &o = {}) {
  return detail::depthwise_conv("DepthwiseConv1D", kernel_size, o);
}

/// SeparableConv1D / SeparableConv2D's settings: ConvOptions' kernel_* fields are the depthwise_* keys.
struct SeparableConvOptions : ConvOptions {
  int64_t depth_multiplier = 1;
  std::string pointwise_initializer = "glorot_uniform";
  std::string pointwise_regularizer;  ///< "", "l1", "l2", "l1_l2"
};
namespace detail {
inline Layer separable_conv(const char *cls, int64_t filters, const Dims &kernel_size,
                            const SeparableConvOptions &o) {
  Config c = conv_config(kernel_size, o, "depthwise");
  c.set("filters", filters).set("depth_multiplier", o.depth_multiplier);
  c.set("pointwise_initializer", o.pointwise_initializer);
  set_if(c, "pointwise_regularizer", o.pointwise_regularizer);
  return Layer::create(cls, c);
}
}  // namespace detail
/// keras.layers.SeparableConv2D: a depthwise convolution (strides, dilation, padding), then a 1x1
/// convolution to `filters` channels with the bias and activation; depthwise_kernel [kh, kw, C,
/// depth_multiplier], pointwise_kernel [1, 1, C * depth_multiplier, filters].
inline Layer SeparableConv2D(int64_t filters, const Dims &kernel_size, const SeparableConvOptions &o = {}) {
  return detail::separable_conv("SeparableConv2D", filters, kernel_size, o);
}
/// keras.layers.SeparableConv1D: as SeparableConv2D over [N, W, C].
inline Layer SeparableConv1D(int64_t filters, const Dims &kernel_size, const SeparableConvOptions &o = {}) {
  return detail::separable_conv("SeparableConv1D", filters, kernel_size, o);
}

/// Conv2DTranspose's settings.
struct Conv2DTransposeOptions : ConvOptions {
  Dims output_padding;  ///< empty: None (Keras's output size); else each < its stride
};
/// keras.layers.Conv2DTranspose: the adjoint of Conv2D; kernel [kh, kw, filters, C], as TF.
namespace detail {
inline Layer conv_transpose(const char *cls, int64_t filters, const Dims &kernel_size,
                            const Conv2DTransposeOptions &o) {
  Config c = conv_config(kernel_size, o, "kernel");
  c.set("filters", filters);
  if (!o.output_padding.empty()) c.set("output_padding", o.output_padding);
  return Layer::create(cls, c);
}
}  // namespace detail
inline Layer Conv2DTranspose(int64_t filters, const Dims &kernel_size, const Conv2DTransposeOptions &o = {}) {
  return detail::conv_transpose("Conv2DTranspose", filters, kernel_size, o);
}
/// keras.layers.Conv1DTranspose: the adjoint of Conv1D, [N, W, C] -> [N, OW, filters]; kernel [kw,
/// filters, C].
inline Layer Conv1DTranspose(int64_t filters, const Dims &kernel_size, const Conv2DTransposeOptions &o = {}) {
  return detail::conv_transpose("Conv1DTranspose", filters, kernel_size, o);
}

/// Pooling settings (Keras's defaults).
struct PoolingOptions {
  Dims strides;  ///< empty: pool_size
  std::string padding = "valid";  ///< "valid" or "same"
  std::string name;
};
namespace detail {
inline Layer pooling(const char *class_name, const Dims &pool_size, const PoolingOptions &o) {
  Config c;
  c.set("pool_size", pool_size).set("padding", o.padding);
  if (!o.strides.empty()) c.set("strides", o.strides);
  set_if(c, "name", o.name);
  return Layer::create(class_name, c);
}
}  // namespace detail
/// keras.layers.MaxPooling2D (alias MaxPool2D): the maximum of each window of [N, H, W, C].
inline Layer MaxPooling2D(const Dims &pool_size = {2, 2}, const PoolingOptions &o = {}) {
  return detail::pooling("MaxPooling2D", pool_size, o);
}
/// keras.layers.AveragePooling2D (alias AvgPool2D): the mean of each window's cells inside the input.
inline Layer AveragePooling2D(const Dims &pool_size = {2, 2}, const PoolingOptions &o = {}) {
  return detail::pooling("AveragePooling2D", pool_size, o);
}
/// keras.layers.MaxPooling1D (alias MaxPool1D) over [N, W, C].
inline Layer MaxPooling1D(const Dims &pool_size = {2}, const PoolingOptions &o = {}) {
  return detail::pooling("MaxPooling1D", pool_size, o);
}
/// keras.layers.AveragePooling1D (alias AvgPool1D) over [N, W, C].
inline Layer AveragePooling1D(const Dims &pool_size = {2}, const PoolingOptions &o = {}) {
  return detail::pooling("AveragePooling1D", pool_size, o);
}

/// Global pooling settings.
struct GlobalPoolingOptions {
  bool keepdims = false;  ///< keep the spatial axes as size 1
  std::string name;
};
namespace detail {
inline Layer global_pooling(const char *class_name, const GlobalPoolingOptions &o) {
  Config c;
  c.set("keepdims", o.keepdims);
  set_if(c, "name", o.name);
  return Layer::create(class_name, c);
}
}  // namespace detail
/// keras.layers.GlobalAveragePooling1D: [N, W, C] -> [N, C].
inline Layer GlobalAveragePooling1D(const GlobalPoolingOptions &o = {}) {
  return detail::global_pooling("GlobalAveragePooling1D", o);
}
/// keras.layers.GlobalAveragePooling2D: [N, H, W, C] -> [N, C].
inline Layer GlobalAveragePooling2D(const GlobalPoolingOptions &o = {}) {
  return detail::global_pooling("GlobalAveragePooling2D", o);
}
/// keras.layers.GlobalMaxPooling1D: [N, W, C] -> [N, C].
inline Layer GlobalMaxPooling1D(const GlobalPoolingOptions &o = {}) {
  return detail::global_pooling("GlobalMaxPooling1D", o);
}
/// keras.layers.GlobalMaxPooling2D: [N, H, W, C] -> [N, C].
inline Layer GlobalMaxPooling2D(const GlobalPoolingOptions &o = {}) {
  return detail::global_pooling("GlobalMaxPooling2D", o);
}
/// keras.layers.Conv3DTranspose: the adjoint of Conv3D, [N, D, H, W, C] -> [N, OD, OH, OW, filters];
/// kernel [kd, kh, kw, filters, C].
inline Layer Conv3DTranspose(int64_t filters, const Dims &kernel_size, const Conv2DTransposeOptions &o = {}) {
  return detail::conv_transpose("Conv3DTranspose", filters, kernel_size, o);
}
/// keras.layers.MaxPooling3D (alias MaxPool3D) over [N, D, H, W, C].
inline Layer MaxPooling3D(const Dims &pool_size = {2, 2, 2}, const PoolingOptions &o = {}) {
  return detail::pooling("MaxPooling3D", pool_size, o);
}
/// keras.layers.AveragePooling3D (alias AvgPool3D) over [N, D, H, W, C]: the mean of each window's
/// cells inside the input.
inline Layer AveragePooling3D(const Dims &pool_size = {2, 2, 2}, const PoolingOptions &o = {}) {
  return detail::pooling("AveragePooling3D", pool_size, o);
}
/// keras.layers.GlobalAveragePooling3D: [N, D, H, W, C] -> [N, C].
inline Layer GlobalAveragePooling3D(const GlobalPoolingOptions &o = {}) {
  return detail::global_pooling("GlobalAveragePooling3D", o);
}
/// keras.layers.GlobalMaxPooling3D: [N, D, H, W, C] -> [N, C].
inline Layer GlobalMaxPooling3D(const GlobalPoolingOptions &o = {}) {
  return detail::global_pooling("GlobalMaxPooling3D", o);
}

namespace detail {
inline Layer adaptive_pooling(const char *class_name, const Dims &output_size, bool channels_first,
                              const std::string &name) {
  Config c;
  c.set("output_size", output_size).set("data_format", channels_first ? "channels_first" : "channels_last");
  set_if(c, "name", name);
  return Layer::create(class_name, c);
}
}  // namespace detail
/// keras.layers.AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D(output_size): each spatial
/// axis pooled to output_size positions (one value for every axis, or one per axis), position i over
/// the window [floor(i * in / out), ceil((i + 1) * in / out)) as PyTorch's adaptive pooling. Channels
/// last unless channels_first.
inline Layer AdaptiveAveragePooling1D(const Dims &output_size, bool channels_first = false,
                                      const std::string &name = "") {
  return detail::adaptive_pooling("AdaptiveAveragePooling1D", output_size, channels_first, name);
}
inline Layer AdaptiveAveragePooling2D(const Dims &output_size, bool channels_first = false,
                                      const std::string &name = "") {
  return detail::adaptive_pooling("AdaptiveAveragePooling2D", output_size, channels_first, name);
}
inline Layer AdaptiveAveragePooling3D(const Dims &output_size, bool channels_first = false,
                                      const std::string &name = "") {
  return detail::adaptive_pooling("AdaptiveAveragePooling3D", output_size, channels_first, name);
}
inline Layer AdaptiveMaxPooling1D(const Dims &output_size, bool channels_first = false,
                                  const std::string &name = "") {
  return detail::adaptive_pooling("AdaptiveMaxPooling1D", output_size, channels_first, name);
}
inline Layer AdaptiveMaxPooling2D(const Dims &output_size, bool channels_first = false,
                                  const std::string &name = "") {
  return detail::adaptive_pooling("AdaptiveMaxPooling2D", output_size, channels_first, name);
}
inline Layer AdaptiveMaxPooling3D(const Dims &output_size, bool channels_first = false,
                                  const std::string &name = "") {
  return detail::adaptive_pooling("AdaptiveMaxPooling3D", output_size, channels_first, name);
}

// Keras's aliases: the same layers under their other names.
inline Layer Convolution1D(int64_t filters, const Dims &kernel_size, const ConvOptions &o = {}) {
  return Conv1D(filters, kernel_size, o);
}
inline Layer Convolution2D(int64_t filters, const Dims &kernel_size, const ConvOptions &o = {}) {
  return Conv2D(filters, kernel_size, o);
}
inline Layer Convolution2DTranspose(int64_t filters, const Dims &kernel_size, const Conv2DTransposeOptions &o = {}) {
  return Conv2DTranspose(filters, kernel_size, o);
}
inline Layer Convolution1DTranspose(int64_t filters, const Dims &kernel_size,
                                    const Conv2DTransposeOptions &o = {}) {
  return Conv1DTranspose(filters, kernel_size, o);
}
inline Layer Convolution3D(int64_t filters, const Dims &kernel_size, const ConvOptions &o = {}) {
  return Conv3D(filters, kernel_size, o);
}
inline Layer Convolution3DTranspose(int64_t filters, const Dims &kernel_size,
                                    const Conv2DTransposeOptions &o = {}) {
  return Conv3DTranspose(filters, kernel_size, o);
}
inline Layer MaxPool1D(const Dims &pool_size = {2}, const PoolingOptions &o = {}) { return MaxPooling1D(pool_size, o); }
inline Layer MaxPool2D(const Dims &pool_size = {2, 2}, const PoolingOptions &o = {}) {
  return MaxPooling2D(pool_size, o);
}
inline Layer AvgPool1D(const Dims &pool_size = {2}, const PoolingOptions &o = {}) {
  return AveragePooling1D(pool_size, o);
}
inline Layer AvgPool2D(const Dims &pool_size = {2, 2}, const PoolingOptions &o = {}) {
  return AveragePooling2D(pool_size, o);
}
inline Layer GlobalAvgPool1D(const GlobalPoolingOptions &o = {}) { return GlobalAveragePooling1D(o); }
inline Layer GlobalAvgPool2D(const GlobalPoolingOptions &o = {}) { return GlobalAveragePooling2D(o); }
inline Layer GlobalMaxPool1D(const GlobalPoolingOptions &o = {}) { return GlobalMaxPooling1D(o); }
inline Layer GlobalMaxPool2D(const GlobalPoolingOptions &o = {}) { return GlobalMaxPooling2D(o); }
inline Layer MaxPool3D(const Dims &pool_size = {2, 2, 2}, const PoolingOptions &o = {}) {
  return MaxPooling3D(pool_size, o);
}
inline Layer AvgPool3D(const Dims &pool_size = {2, 2, 2}, const PoolingOptions &o = {}) {
  return AveragePooling3D(pool_size, o);
}
inline Layer GlobalAvgPool3D(const GlobalPoolingOptions &o = {}) { return GlobalAveragePooling3D(o); }
inline Layer GlobalMaxPool3D(const GlobalPoolingOptions &o = {}) { return GlobalMaxPooling3D(o); }

// ---- attention, merge and reshaping layers (attention_layers.cc)

struct MultiHeadAttentionOptions {
  int64_t value_dim = -1;  ///< -1: key_dim
  double dropout = 0.0;    ///< on the attention probabilities, when training
  bool use_bias = true;
  Dims output_shape;    ///< empty: the query's last dim
  Dims attention_axes;  ///< empty: the sequence axis (the only one supported)
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  std::string kernel_regularizer;  ///< "", "l1", "l2", "l1_l2"
  std::string bias_regularizer;
  int64_t seed = -1;  ///< -1: none
  bool use_gate = false;       ///< the output times sigmoid(a "gate" projection of the query)
  int64_t sliding_window = 0;  ///< > 0: key positions within sliding_window - 1 of the query's; 0: none
  std::string name;
};
namespace detail {
// The keys MultiHeadAttention and GroupedQueryAttention share.
inline void attention_config(Config &c, const MultiHeadAttentionOptions &o) {
  c.set("dropout", o.dropout).set("use_bias", o.use_bias).set("use_gate", o.use_gate);
  if (o.sliding_window > 0) c.set("sliding_window", o.sliding_window);
  c.set("kernel_initializer", o.kernel_initializer).set("bias_initializer", o.bias_initializer);
  set_if(c, "kernel_regularizer", o.kernel_regularizer);
  set_if(c, "bias_regularizer", o.bias_regularizer);
  if (o.seed >= 0) c.set("seed", o.seed);
  set_if(c, "name", o.name);
}
}  // namespace detail
/// keras.layers.MultiHeadAttention(num_heads, key_dim, ...). Call it with attention_inputs(...):
/// outputs {attention_output} or, with return_attention_scores, {attention_output, scores}.
inline Layer MultiHeadAttention(int64_t num_heads, int64_t key_dim, const MultiHeadAttentionOptions &o = {}) {
  Config c;
  c.set("num_heads", num_heads).set("key_dim", key_dim);
  if (o.value_dim > 0) c.set("value_dim", o.value_dim);
  if (o.output_shape.size() == 1) c.set("output_shape", o.output_shape[0]);
  if (o.output_shape.size() > 1) c.set("output_shape", o.output_shape);
  if (!o.attention_axes.empty()) c.set("attention_axes", o.attention_axes);
  detail::attention_config(c, o);
  return Layer::create("MultiHeadAttention", c);
}
/// keras.layers.GroupedQueryAttention(head_dim, num_query_heads, num_key_value_heads, ...): attention
/// on [B, T, dim] inputs whose key and value have num_key_value_heads heads, each shared by
/// num_query_heads / num_key_value_heads query heads. Called as MultiHeadAttention; the options'
/// value_dim, output_shape and attention_axes do not apply.
inline Layer GroupedQueryAttention(int64_t head_dim, int64_t num_query_heads, int64_t num_key_value_heads,
                                   const MultiHeadAttentionOptions &o = {}) {
  Config c;
  c.set("head_dim", head_dim).set("num_query_heads", num_query_heads);
  c.set("num_key_value_heads", num_key_value_heads);
  detail::attention_config(c, o);
  return Layer::create("GroupedQueryAttention", c);
}
/// Keras 3's other name for GroupedQueryAttention.
inline Layer GroupQueryAttention(int64_t head_dim, int64_t num_query_heads, int64_t num_key_value_heads,
                                 const MultiHeadAttentionOptions &o = {}) {
  return GroupedQueryAttention(head_dim, num_query_heads, num_key_value_heads, o);
}

/// Keras's MultiHeadAttention call keywords beyond query and value.
struct AttentionCall {
  Tensor key;             ///< empty: value
  Tensor attention_mask;  ///< empty: none; bool or 0/1, [B, T, S] or broadcasting to it
  bool return_attention_scores = false;
  bool use_causal_mask = false;
};
/// The input list MultiHeadAttention takes, in the order it reads it: query, value, key,
/// attention_mask, then the flags as scalar bool tensors (return_attention_scores,
/// use_causal_mask): AttentionCall c; c.attention_mask = m; layer(attention_inputs(q, v, c), training).
inline std::vector<Tensor> attention_inputs(const Tensor &query, const Tensor &value,
                                            const AttentionCall &call = {}) {
  std::vector<Tensor> in = {query, value};
  if (call.key.valid() || call.attention_mask.valid()) in.push_back(call.key.valid() ? call.key : value);
  if (call.attention_mask.valid()) in.push_back(call.attention_mask);
  if (call.return_attention_scores || call.use_causal_mask)
    in.push_back(Tensor::scalar(call.return_attention_scores));
  if (call.use_causal_mask) in.push_back(Tensor::scalar(true));
  return in;
}

/// Options of keras.layers.Attention (Luong-style).
struct DotAttentionOptions {
  bool use_scale = false;          ///< a trainable scalar "scale" on the scores
  std::string score_mode = "dot";  ///< or "concat": scores sum(tanh(query + key))
  double dropout = 0.0;            ///< on the attention weights, when training
  int64_t seed = -1;               ///< -1: none
  std::string name;
};
/// Options of keras.layers.AdditiveAttention (Bahdanau-style).
struct AdditiveAttentionOptions {
  bool use_scale = true;  ///< a trainable "scale" [dim] weighing tanh(query + key)
  double dropout = 0.0;
  int64_t seed = -1;
  std::string name;
};
namespace detail {
inline Layer dot_attention(const char *cls, bool use_scale, const char *score_mode, double dropout,
                           int64_t seed, const std::string &name) {
  Config c;
  c.set("use_scale", use_scale);
  if (score_mode) c.set("score_mode", score_mode);
  c.set("dropout", dropout);
  if (seed >= 0) c.set("seed", seed);
  set_if(c, "name", name);
  return Layer::create(cls, c);
}
}  // namespace detail
/// keras.layers.Attention: softmax(query . key^T) . value. Call it with attention_inputs(query,
/// value, c) (c.key optional; no attention_mask): outputs {output} or, with return_attention_scores,
/// {output, weights [B, Tq, Tv]}. Masks go through call_with_options, one slot per input: the
/// query's and the value's, then empty Tensors for the key and the flags.
inline Layer Attention(const DotAttentionOptions &o = {}) {
  return detail::dot_attention("Attention", o.use_scale, o.score_mode.c_str(), o.dropout, o.seed, o.name);
}
/// keras.layers.AdditiveAttention: scores sum(scale * tanh(query + key)); called as Attention.
inline Layer AdditiveAttention(const AdditiveAttentionOptions &o = {}) {
  return detail::dot_attention("AdditiveAttention", o.use_scale, nullptr, o.dropout, o.seed, o.name);
}

namespace detail {
inline Layer named_layer(const char *class_name, const std::string &name, Config c = Config()) {
  set_if(c, "name", name);
  return Layer::create(class_name, c);
}
}  // namespace detail

/// Merge layers: called on a list of tensors of one shape (size-1 dims broadcast, as Keras).
inline Layer Add(const std::string &name = "") { return detail::named_layer("Add", name); }
/// Exactly two inputs: the first minus the second.
inline Layer Subtract(const std::string &name = "") { return detail::named_layer("Subtract", name); }
inline Layer Multiply(const std::string &name = "") { return detail::named_layer("Multiply", name); }
inline Layer Average(const std::string &name = "") { return detail::named_layer("Average", name); }
inline Layer Maximum(const std::string &name = "") { return detail::named_layer("Maximum", name); }
inline Layer Minimum(const std::string &name = "") { return detail::named_layer("Minimum", name); }
inline Layer Concatenate(int64_t axis = -1, const std::string &name = "") {
  Config c;
  c.set("axis", axis);
  return detail::named_layer("Concatenate", name, c);
}
/// keras.layers.Dot(axes, normalize): the dot product of two inputs' samples along an axis of each
/// ({axis} for both, or {x axis, y axis}); normalize gives the cosine proximity.
inline Layer Dot(const Dims &axes, bool normalize = false, const std::string &name = "") {
  Config c;
  if (axes.size() == 1)
    c.set("axes", axes[0]);
  else
    c.set("axes", axes);
  c.set("normalize", normalize);
  return detail::named_layer("Dot", name, c);
}
/// Permute({2, 1}): the non-batch axes reordered, 1-based as in Keras.
inline Layer Permute(const Dims &dims, const std::string &name = "") {
  Config c;
  c.set("dims", dims);
  return detail::named_layer("Permute", name, c);
}
/// [B, F] -> [B, n, F].
inline Layer RepeatVector(int64_t n, const std::string &name = "") {
  Config c;
  c.set("n", n);
  return detail::named_layer("RepeatVector", name, c);
}

// ---- activation layers (Keras's keras.layers.ReLU ... PReLU)

struct ReLUOptions {
  double max_value = -1;  ///< < 0: None (no upper bound)
  double negative_slope = 0.0;
  double threshold = 0.0;
  std::string name;
};
/// max_value above max_value, x from threshold up, negative_slope * (x - threshold) below.
inline Layer ReLU(const ReLUOptions &o = {}) {
  Config c;
  if (o.max_value >= 0)
    c.set("max_value", o.max_value);
  else
    c.set_null("max_value");
  c.set("negative_slope", o.negative_slope).set("threshold", o.threshold);
  return detail::named_layer("ReLU", o.name, c);
}
inline Layer LeakyReLU(double negative_slope = 0.3, const std::string &name = "") {
  Config c;
  c.set("negative_slope", negative_slope);
  return detail::named_layer("LeakyReLU", name, c);
}
inline Layer ELU(double alpha = 1.0, const std::string &name = "") {
  Config c;
  c.set("alpha", alpha);
  return detail::named_layer("ELU", name, c);
}
/// Softmax over axis, or over several axes together. Called with a mask (Layer::call's masks),
/// masked entries give 0.
inline Layer Softmax(const Dims &axis = {-1}, const std::string &name = "") {
  Config c;
  if (axis.size() == 1)
    c.set("axis", axis[0]);
  else
    c.set("axis", axis);
  return detail::named_layer("Softmax", name, c);
}
struct PReLUOptions {
  std::string alpha_initializer = "zeros";
  std::string alpha_regularizer;  ///< "", "l1", "l2", "l1_l2"
  Dims shared_axes;               ///< 1-based axes sharing one alpha (Conv maps: {1, 2})
  std::string name;
};
/// relu(x) - alpha * relu(-x), alpha a trained weight of the input's shape without the batch axis.
inline Layer PReLU(const PReLUOptions &o = {}) {
  Config c;
  c.set("alpha_initializer", o.alpha_initializer);
  detail::set_if(c, "alpha_regularizer", o.alpha_regularizer);
  if (!o.shared_axes.empty()) c.set("shared_axes", o.shared_axes);
  return detail::named_layer("PReLU", o.name, c);
}

// ---- spatial reshaping layers (Keras's ZeroPadding, Cropping and UpSampling, 1D to 3D)

struct SpatialOptions {
  std::string data_format =
      "channels_last";  ///< or "channels_first" (not for the 1D layers but ZeroPadding1D)
  std::string name;
};

namespace detail {
// A padding or cropping as Keras takes it, for n spatial axes: one value (every side); for
// n > 1, n values (both sides of each axis) or 2n (before and after of each axis in turn); for
// n = 1, two values (before, after). Other lengths go to the layer, which says what it expects.
inline std::string sides_json(const Dims &v, size_t n) {
  auto list = [](const Dims &d, size_t from, size_t count) {
    std::string s = "[";
    for (size_t i = 0; i < count; ++i) s += (i ? ", " : "") + std::to_string(d[from + i]);
    return s + "]";
  };
  if (v.size() == 1) return std::to_string(v[0]);
  if (n == 1 || v.size() != 2 * n) return list(v, 0, v.size());
  std::string s = "[";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + list(v, 2 * i, 2);
  return s + "]";
}
inline Layer spatial_layer(const char *class_name, const char *key, const Dims &sides, size_t n,
                           const SpatialOptions &o, bool has_format) {
  Config c = Config::from_json("{\"" + std::string(key) + "\": " + sides_json(sides, n) + "}");
  if (has_format) c.set("data_format", o.data_format);
  return named_layer(class_name, o.name, c);
}
}  // namespace detail

inline Layer ZeroPadding1D(const Dims &padding = {1}, const SpatialOptions &o = {}) {
  return detail::spatial_layer("ZeroPadding1D", "padding", padding, 1, o, true);
}
/// ZeroPadding2D({1}), ({top_bottom, left_right}) or ({top, bottom, left, right}).
inline Layer ZeroPadding2D(const Dims &padding = {1}, const SpatialOptions &o = {}) {
  return detail::spatial_layer("ZeroPadding2D", "padding", padding, 2, o, true);
}
inline Layer ZeroPadding3D(const Dims &padding = {1}, const SpatialOptions &o = {}) {
  return detail::spatial_layer("ZeroPadding3D", "padding", padding, 3, o, true);
}
inline Layer Cropping1D(const Dims &cropping = {1}, const std::string &name = "") {
  SpatialOptions o;
  o.name = name;
  return detail::spatial_layer("Cropping1D", "cropping", cropping, 1, o, false);
}
/// Cropping2D({0}), ({top_bottom, left_right}) or ({top, bottom, left, right}).
inline Layer Cropping2D(const Dims &cropping = {0}, const SpatialOptions &o = {}) {
  return detail::spatial_layer("Cropping2D", "cropping", cropping, 2, o, true);
}
inline Layer Cropping3D(const Dims &cropping = {1}, const SpatialOptions &o = {}) {
  return detail::spatial_layer("Cropping3D", "cropping", cropping, 3, o, true);
}
/// Each step repeated size times.
inline Layer UpSampling1D(int64_t size = 2, const std::string &name = "") {
  Config c;
  c.set("size", size);
  return detail::named_layer("UpSampling1D", name, c);
}
/// Upsampling: size one value or one per spatial axis; interpolation "nearest" (rows and columns
/// repeated) or "bilinear" (the image resized to size times its height and width).
inline Layer UpSampling2D(const Dims &size = {2}, const SpatialOptions &o = {},
                          const std::string &interpolation = "nearest") {
  Config c;
  c.set("size", size).set("data_format", o.data_format).set("interpolation", interpolation);
  return detail::named_layer("UpSampling2D", o.name, c);
}
inline Layer UpSampling3D(const Dims &size = {2}, const SpatialOptions &o = {}) {
  Config c;
  c.set("size", size).set("data_format", o.data_format);
  return detail::named_layer("UpSampling3D", o.name, c);
}

// ---- regularization layers active in training (Keras's GaussianNoise ... SpatialDropout3D)

/// x + N(0, stddev^2) in training; seed -1: none.
inline Layer GaussianNoise(double stddev, int64_t seed = -1, const std::string &name = "") {
  Config c;
  c.set("stddev", stddev);
  if (seed >= 0) c.set("seed", seed);
  return detail::named_layer("GaussianNoise", name, c);
}
/// x * N(1, rate / (1 - rate)) in training.
inline Layer GaussianDropout(double rate, int64_t seed = -1, const std::string &name = "") {
  Config c;
  c.set("rate", rate);
  if (seed >= 0) c.set("seed", seed);
  return detail::named_layer("GaussianDropout", name, c);
}
/// keras.layers.CategoryEncoding: integer ids in [0, num_tokens) as one-hot rows ("one_hot"), or over
/// axis 1 (each sample's ids of [batch, n]) as multi-hot vectors ("multi_hot") or counts ("count";
/// call it on {ids, count_weights} for weighted counts).
inline Layer CategoryEncoding(int64_t num_tokens, const std::string &output_mode = "multi_hot",
                              const std::string &name = "") {
  Config c;
  c.set("num_tokens", num_tokens).set("output_mode", output_mode);
  return detail::named_layer("CategoryEncoding", name, c);
}
/// In training, dropped values take SELU's saturation value and a * x + b keeps the mean and
/// variance (self-normalizing networks); noise_shape as Dropout's.
inline Layer AlphaDropout(double rate, const DropoutOptions &o = {}) {
  return detail::dropout_like("AlphaDropout", rate, o);
}
struct SpatialDropoutOptions {
  std::string data_format = "channels_last";  ///< SpatialDropout2D/3D only
  int64_t seed = -1;                          ///< -1: none
  std::string name;
};
namespace detail {
inline Layer spatial_dropout(const char *class_name, double rate, const SpatialDropoutOptions &o,
                             bool has_format) {
  Config c;
  c.set("rate", rate);
  if (has_format) c.set("data_format", o.data_format);
  if (o.seed >= 0) c.set("seed", o.seed);
  return named_layer(class_name, o.name, c);
}
}  // namespace detail
/// Dropout of whole channels: one draw per sample and channel, shared along the steps.
inline Layer SpatialDropout1D(double rate, const SpatialDropoutOptions &o = {}) {
  return detail::spatial_dropout("SpatialDropout1D", rate, o, false);
}
inline Layer SpatialDropout2D(double rate, const SpatialDropoutOptions &o = {}) {
  return detail::spatial_dropout("SpatialDropout2D", rate, o, true);
}
inline Layer SpatialDropout3D(double rate, const SpatialDropoutOptions &o = {}) {
  return detail::spatial_dropout("SpatialDropout3D", rate, o, true);
}

// ---- Lambda

/// keras.layers.Lambda: a layer whose call is fn(input, training) (a weightless computation
/// in a Sequential). The layer owns fn; configs name the class "Lambda" but hold no function, so a
/// model with one saves but loads only where a "Lambda" class is registered.
inline Layer Lambda(std::function<Tensor(const Tensor &, bool training)> fn, const std::string &name = "") {
  using Fn = std::function<Tensor(const Tensor &, bool)>;
  if (!fn) throw Error(KILN_STATUS_INVALID_ARGUMENT, "layers::Lambda: the function is empty");
  kiln_layer_callbacks cb{};
  cb.struct_size = sizeof cb;
  cb.call = [](kiln_tensor_list *outputs, kiln_layer *, const kiln_tensor_list *inputs, bool training,
               void *user_data) -> kiln_status * {
    return kiln::detail::status_of([&] {
      const std::vector<Tensor> in = kiln::detail::from_list(inputs);
      if (in.size() != 1)
        throw Error(KILN_STATUS_INVALID_ARGUMENT, "Lambda: got " + std::to_string(in.size()) +
                                                      " inputs; expected 1 (a std::function of one tensor)");
      const Tensor y = (*static_cast<Fn *>(user_data))(in[0], training);
      kiln::detail::check(kiln_tensor_list_append(outputs, y.get()));
    });
  };
  cb.destroy = [](void *user_data) { delete static_cast<Fn *>(user_data); };
  Config base;
  detail::set_if(base, "name", name);
  Fn *owned = new Fn(std::move(fn));
  kiln_layer *h = nullptr;
  kiln_status *st = kiln_layer_create_custom(&h, "Lambda", base.get(), &cb, owned);
  if (st) delete owned;  // not handed over on failure
  kiln::detail::check(st);
  return Layer(h);
}
/// Lambda of a function of the input alone.
inline Layer Lambda(std::function<Tensor(const Tensor &)> fn, const std::string &name = "") {
  if (!fn) throw Error(KILN_STATUS_INVALID_ARGUMENT, "layers::Lambda: the function is empty");
  return Lambda([fn = std::move(fn)](const Tensor &x, bool) { return fn(x); }, name);
}

// ---- Identity, Rescaling

inline Layer Identity(const std::string &name = "") { return detail::named_layer("Identity", name); }
/// keras.layers.ActivityRegularization(l1, l2): its input, adding the loss l1 * sum(|x|) + l2 * sum(x^2)
/// over the batch size to the layer's losses.
inline Layer ActivityRegularization(double l1 = 0.0, double l2 = 0.0, const std::string &name = "") {
  Config c;
  c.set("l1", l1).set("l2", l2);
  detail::set_if(c, "name", name);
  return Layer::create("ActivityRegularization", c);
}
/// keras.layers.Resizing's settings (Keras's defaults).
struct ResizingOptions {
  std::string interpolation = "bilinear";  ///< or "nearest"
  bool crop_to_aspect_ratio = false;  ///< crop the largest centred box of the target's aspect ratio first
  bool pad_to_aspect_ratio = false;   ///< or pad to it with fill_value first
  double fill_value = 0.0;
  std::string data_format = "channels_last";
  std::string name;
};
/// keras.layers.Resizing: images [N, H, W, C] or [H, W, C] resized to height x width, in their dtype.
inline Layer Resizing(int64_t height, int64_t width, const ResizingOptions &o = {}) {
  Config c;
  c.set("height", height).set("width", width).set("interpolation", o.interpolation);
  c.set("crop_to_aspect_ratio", o.crop_to_aspect_ratio).set("pad_to_aspect_ratio", o.pad_to_aspect_ratio);
  c.set("fill_value", o.fill_value).set("data_format", o.data_format);
  return detail::named_layer("Resizing", o.name, c);
}
/// keras.layers.CenterCrop: the centred height x width window of images [N, H, W, C] or [H, W, C], as
/// float32; an image smaller than that on either side is cropped to the target's aspect ratio and
/// resized to it (bilinear), as Keras's smart_resize.
inline Layer CenterCrop(int64_t height, int64_t width, const std::string &data_format = "channels_last",
                        const std::string &name = "") {
  Config c;
  c.set("height", height).set("width", width).set("data_format", data_format);
  return detail::named_layer("CenterCrop", name, c);
}
// ---- random image augmentation (active in training only; float32 out)

/// The settings the random image layers share.
struct RandomImageOptions {
  int64_t seed = -1;  ///< TF's op seed; -1: none
  std::string data_format = "channels_last";
  std::string name;
};
namespace detail {
inline Layer random_image_layer(const char *class_name, Config c, const RandomImageOptions &o) {
  if (o.seed >= 0) c.set("seed", o.seed);
  c.set("data_format", o.data_format);
  return named_layer(class_name, o.name, c);
}
inline Layer random_color_layer(const char *class_name, double lower, double upper,
                                std::array<double, 2> value_range, const RandomImageOptions &o) {
  Config c;
  c.set("factor", std::vector<double>{lower, upper})
      .set("value_range", std::vector<double>{value_range[0], value_range[1]});
  return random_image_layer(class_name, c, o);
}
}  // namespace detail
/// keras.layers.RandomFlip: in training each image flipped left-right ("horizontal") and / or upside
/// down ("vertical"), each with probability 1/2.
inline Layer RandomFlip(const std::string &mode = "horizontal_and_vertical",
                        const RandomImageOptions &o = {}) {
  Config c;
  c.set("mode", mode);
  return detail::random_image_layer("RandomFlip", c, o);
}
/// keras.layers.RandomCrop: in training a height x width window at a random place (one for the batch);
/// otherwise (and for smaller images) the centred window of that aspect ratio, resized.
inline Layer RandomCrop(int64_t height, int64_t width, const RandomImageOptions &o = {}) {
  Config c;
  c.set("height", height).set("width", width);
  return detail::random_image_layer("RandomCrop", c, o);
}
/// keras.layers.RandomContrast: in training each image's channels become (x - mean) * c + mean, c
/// drawn in [1 - lower, 1 + upper], then clipped to value_range.
inline Layer RandomContrast(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                            const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomContrast", lower, upper, value_range, o);
}
/// RandomContrast(factor): lower = upper = factor.
inline Layer RandomContrast(double factor) { return RandomContrast(factor, factor); }
/// keras.layers.RandomBrightness: in training each image gets delta * (high - low) added, delta drawn
/// in [lower, upper] (within [-1, 1]), then clipped to value_range.
inline Layer RandomBrightness(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                              const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomBrightness", lower, upper, value_range, o);
}
/// RandomBrightness(factor): delta drawn in [-factor, factor].
inline Layer RandomBrightness(double factor) { return RandomBrightness(-factor, factor); }
/// keras.layers.AutoContrast: in training and inference each channel of each image stretched linearly
/// so that its minimum becomes value_range's low and its maximum the high; a channel whose result is NaN
/// (constant, or holding NaN) keeps its values.
inline Layer AutoContrast(std::array<double, 2> value_range = {0, 255},
                          const std::string &data_format = "channels_last", const std::string &name = "") {
  Config c;
  c.set("value_range", std::vector<double>{value_range[0], value_range[1]}).set("data_format", data_format);
  return detail::named_layer("AutoContrast", name, c);
}
/// keras.layers.Equalization: in training the histogram of each channel, over the whole batch as Keras's
/// code, equalized with `bins` bins over value_range (a channel of one bin in use is kept).
inline Layer Equalization(std::array<double, 2> value_range = {0, 255}, int64_t bins = 256,
                          const std::string &data_format = "channels_last", const std::string &name = "") {
  Config c;
  c.set("value_range", std::vector<double>{value_range[0], value_range[1]}).set("bins", bins);
  c.set("data_format", data_format);
  return detail::named_layer("Equalization", name, c);
}
/// keras.layers.Solarization: in training each image, seen in [0, 255], gets an addition drawn in
/// addition_factor * 255 added (clipped to [0, 255]); values at or above a threshold drawn in
/// threshold_factor * 255 become 255 - value. Each factor is a (lower, upper) range within [0, 1].
inline Layer Solarization(std::array<double, 2> addition_factor = {0, 0},
                          std::array<double, 2> threshold_factor = {0, 0},
                          std::array<double, 2> value_range = {0, 255}, const RandomImageOptions &o = {}) {
  Config c;
  c.set("addition_factor", std::vector<double>{addition_factor[0], addition_factor[1]})
      .set("threshold_factor", std::vector<double>{threshold_factor[0], threshold_factor[1]})
      .set("value_range", std::vector<double>{value_range[0], value_range[1]});
  return detail::random_image_layer("Solarization", c, o);
}
/// keras.layers.RandomInvert: in training each image is inverted (value_range's high - x) with a
/// probability drawn in [lower, upper] (within [0, 1]).
inline Layer RandomInvert(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                          const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomInvert", lower, upper, value_range, o);
}
/// RandomInvert(factor): the probability drawn in [0, factor].
inline Layer RandomInvert(double factor = 1.0) { return RandomInvert(0.0, factor); }
/// keras.layers.RandomGrayscale: in training each image, with probability factor, becomes its
/// grayscale 0.2989 r + 0.5870 g + 0.1140 b in every channel (3 channels or 1).
inline Layer RandomGrayscale(double factor = 0.5, const RandomImageOptions &o = {}) {
  Config c;
  c.set("factor", factor);
  return detail::random_image_layer("RandomGrayscale", c, o);
}
/// keras.layers.RandomPosterization: in training each image, seen in [0, 255] and truncated to whole
/// numbers, keeps its top b bits per value: b = lower when lower == upper, else drawn among
/// lower .. upper - 1 (Keras's randint); both in [1, 8].
inline Layer RandomPosterization(int64_t lower, int64_t upper, std::array<double, 2> value_range = {0, 255},
                                 const RandomImageOptions &o = {}) {
  Config c;
  c.set("factor", std::vector<int64_t>{lower, upper})
      .set("value_range", std::vector<double>{value_range[0], value_range[1]});
  return detail::random_image_layer("RandomPosterization", c, o);
}
/// RandomPosterization(bits): Keras's factor = bits, the range [1, bits].
inline Layer RandomPosterization(int64_t bits) { return RandomPosterization(1, bits); }
/// keras.layers.RandomColorDegeneration: in training each image moves towards its grayscale by f
/// drawn in [lower, upper] (within [0, 1]): x + f * (gray - x), clipped to value_range.
inline Layer RandomColorDegeneration(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                                     const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomColorDegeneration", lower, upper, value_range, o);
}
/// RandomColorDegeneration(factor): f drawn in [0, factor].
inline Layer RandomColorDegeneration(double factor) { return RandomColorDegeneration(0.0, factor); }
/// keras.layers.RandomSharpness: in training each image becomes x + (1 - 2 f) * (smoothed - x), f drawn
/// in [lower, upper] (within [0, 1]), smoothed by the 3x3 filter [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13
/// with zero padding, clipped to value_range: 0.5 keeps the image, above sharpens, below blurs.
inline Layer RandomSharpness(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                             const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomSharpness", lower, upper, value_range, o);
}
/// RandomSharpness(factor): f drawn in [0, factor].
inline Layer RandomSharpness(double factor) { return RandomSharpness(0.0, factor); }
/// keras.layers.RandomSaturation: in training each image, seen in [0, 1], has its saturation scaled by
/// f / (1 - f + 1e-7), f drawn in [lower, upper]: 0.5 keeps the image, 0 makes it gray, 1 saturates it
/// fully (the saturation clipped to [0, 1]). 3 channels.
inline Layer RandomSaturation(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                              const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomSaturation", lower, upper, value_range, o);
}
/// RandomSaturation(factor): f drawn in [0, factor].
inline Layer RandomSaturation(double factor) { return RandomSaturation(0.0, factor); }
/// keras.layers.RandomHue: in training each image, seen in [0, 1], has its hue moved by f * 0.5 in either
/// direction (f drawn in [lower, upper], within [0, 1]), wrapped into [0, 1]. 3 channels.
inline Layer RandomHue(double lower, double upper, std::array<double, 2> value_range = {0, 255},
                       const RandomImageOptions &o = {}) {
  return detail::random_color_layer("RandomHue", lower, upper, value_range, o);
}
/// RandomHue(factor): f drawn in [0, factor].
inline Layer RandomHue(double factor) { return RandomHue(0.0, factor); }
/// keras.layers.RandomErasing: in training each image, with a probability drawn in factor, has a box of
/// width sqrt(s) W and height sqrt(s') H (s, s' drawn in scale) at a random place replaced by normal noise
/// times value_range's high (fill_value none) or fill_value (one number, or three: one per channel),
/// clipped to value_range.
inline Layer RandomErasing(std::array<double, 2> factor = {0, 1}, std::array<double, 2> scale = {0.02, 0.33},
                           const std::optional<std::vector<double>> &fill_value = std::nullopt,
                           std::array<double, 2> value_range = {0, 255}, const RandomImageOptions &o = {}) {
  Config c;
  c.set("factor", std::vector<double>{factor[0], factor[1]})
      .set("scale", std::vector<double>{scale[0], scale[1]})
      .set("value_range", std::vector<double>{value_range[0], value_range[1]});
  if (fill_value && fill_value->size() == 1)
    c.set("fill_value", (*fill_value)[0]);
  else if (fill_value)
    c.set("fill_value", *fill_value);
  return detail::random_image_layer("RandomErasing", c, o);
}
/// keras.layers.RandomGaussianBlur: in training each image is blurred, with a probability drawn in factor,
/// by Keras's Gaussian filter of kernel_size (odd) with "same" zero padding, its two sigmas drawn once per
/// call in sigma (within [0, 1]); every image is then clipped to value_range.
inline Layer RandomGaussianBlur(std::array<double, 2> factor = {0, 1},
                                std::array<int64_t, 2> kernel_size = {3, 3},
                                std::array<double, 2> sigma = {0, 1},
                                std::array<double, 2> value_range = {0, 255},
                                const RandomImageOptions &o = {}) {
  Config c;
  c.set("factor", std::vector<double>{factor[0], factor[1]})
      .set("kernel_size", std::vector<int64_t>{kernel_size[0], kernel_size[1]})
      .set("sigma", std::vector<double>{sigma[0], sigma[1]})
      .set("value_range", std::vector<double>{value_range[0], value_range[1]});
  return detail::random_image_layer("RandomGaussianBlur", c, o);
}
/// The factors of RandomColorJitter, each as its own layer reads it (as (lower, upper); none: the step is
/// skipped): brightness within [-1, 1], contrast (c in [1 - lower, 1 + upper]), saturation and hue.
struct ColorJitterFactors {
  std::optional<std::array<double, 2>> brightness, contrast, saturation, hue;
};
/// keras.layers.RandomColorJitter: in training, in this order, RandomBrightness, RandomContrast,
/// RandomSaturation and RandomHue with the factors given, each image drawing its own values.
inline Layer RandomColorJitter(const ColorJitterFactors &f, std::array<double, 2> value_range = {0, 255},
                               const RandomImageOptions &o = {}) {
  Config c;
  c.set("value_range", std::vector<double>{value_range[0], value_range[1]});
  const std::pair<const char *, const std::optional<std::array<double, 2>> *> keys[] = {
      {"brightness_factor", &f.brightness},
      {"contrast_factor", &f.contrast},
      {"saturation_factor", &f.saturation},
      {"hue_factor", &f.hue}};
  for (const auto &[key, v] : keys)
    if (*v) c.set(key, std::vector<double>{(**v)[0], (**v)[1]});
  return detail::random_image_layer("RandomColorJitter", c, o);
}

/// The geometric random layers' resampling: points outside the image filled by fill_mode
/// ("reflect", "wrap", "constant" with fill_value, "nearest"), read with interpolation.
struct RandomTransformOptions {
  std::string fill_mode = "reflect";
  std::string interpolation = "bilinear";  ///< or "nearest"
  double fill_value = 0.0;
  int64_t seed = -1;
  std::string data_format = "channels_last";
  std::string name;
};
namespace detail {
// The seed, data_format and name of o.
inline RandomImageOptions image_options(const RandomTransformOptions &o) {
  RandomImageOptions io;
  io.seed = o.seed;
  io.data_format = o.data_format;
  io.name = o.name;
  return io;
}
// fill_modes: the layer takes a fill_mode (RandomPerspective does not).
inline Layer random_transform_layer(const char *class_name, Config c, const RandomTransformOptions &o,
                                    bool fill_modes = true) {
  if (fill_modes) c.set("fill_mode", o.fill_mode);
  c.set("interpolation", o.interpolation).set("fill_value", o.fill_value);
  return random_image_layer(class_name, c, image_options(o));
}
}  // namespace detail
/// keras.layers.RandomRotation: in training each image turned about its centre by an angle in
/// [lower, upper] * 2 pi (counter-clockwise for positive).
inline Layer RandomRotation(double lower, double upper, const RandomTransformOptions &o = {}) {
  Config c;
  c.set("factor", std::vector<double>{lower, upper});
  return detail::random_transform_layer("RandomRotation", c, o);
}
/// RandomRotation(factor): angles in [-factor, factor] * 2 pi.
inline Layer RandomRotation(double factor) { return RandomRotation(-factor, factor); }
/// keras.layers.RandomTranslation: in training each image shifted by fractions of its height and width
/// drawn in [-height_factor, height_factor] and [-width_factor, width_factor].
inline Layer RandomTranslation(double height_factor, double width_factor,
                               const RandomTransformOptions &o = {}) {
  Config c;
  c.set("height_factor", height_factor).set("width_factor", width_factor);
  return detail::random_transform_layer("RandomTranslation", c, o);
}
/// keras.layers.RandomZoom: in training each image zoomed about its centre by 1 + a value in
/// [-height_factor, height_factor] (above 1 zooms out); horizontally by width_factor's, or (none) the
/// same zoom both ways.
inline Layer RandomZoom(double height_factor, std::optional<double> width_factor = std::nullopt,
                        const RandomTransformOptions &o = {}) {
  Config c;
  c.set("height_factor", height_factor);
  if (width_factor) c.set("width_factor", *width_factor);
  return detail::random_transform_layer("RandomZoom", c, o);
}
/// keras.layers.RandomShear: in training each image sheared about its top-left corner, output pixel
/// (x, y) read from (x + sx * y, sy * x + y), sx drawn in x_factor's (lower, upper) and sy in
/// y_factor's (each within [-1, 1]), both negated for half the images.
inline Layer RandomShear(std::array<double, 2> x_factor, std::array<double, 2> y_factor,
                         const RandomTransformOptions &o = {}) {
  Config c;
  c.set("x_factor", std::vector<double>{x_factor[0], x_factor[1]})
      .set("y_factor", std::vector<double>{y_factor[0], y_factor[1]});
  return detail::random_transform_layer("RandomShear", c, o);
}
/// RandomShear(x_factor, y_factor): shears drawn in [-x_factor, x_factor] and [-y_factor, y_factor]
/// (each in [0, 1]).
inline Layer RandomShear(double x_factor, double y_factor = 0.0, const RandomTransformOptions &o = {}) {
  return RandomShear(std::array<double, 2>{-x_factor, x_factor}, std::array<double, 2>{-y_factor, y_factor},
                     o);
}
/// keras.layers.RandomPerspective: in training, per image with a probability drawn in factor (lower,
/// upper), the four corners each moved by up to scale / 2 of their coordinates and the image resampled
/// through the perspective transform between them. Points outside read o.fill_value (o.fill_mode is not
/// used: the fill is constant, as Keras's).
inline Layer RandomPerspective(std::array<double, 2> factor, double scale = 1.0,
                               const RandomTransformOptions &o = {}) {
  Config c;
  c.set("factor", std::vector<double>{factor[0], factor[1]}).set("scale", scale);
  return detail::random_transform_layer("RandomPerspective", c, o, false);
}
/// keras.layers.RandAugment: in training, num_ops times, one of Keras's eleven augmentation layers (shear,
/// translation, rotation, brightness, colour degeneration, contrast, sharpness, posterization,
/// solarization, auto-contrast, equalization), drawn for the whole batch, applied with factor (lower,
/// upper) and value_range; o.interpolation for the geometric ones (o.fill_mode and o.fill_value unused).
inline Layer RandAugment(std::array<double, 2> value_range = {0, 255}, int64_t num_ops = 2,
                         std::array<double, 2> factor = {0.0, 0.5}, const RandomTransformOptions &o = {}) {
  Config c;
  c.set("value_range", std::vector<double>{value_range[0], value_range[1]}).set("num_ops", num_ops);
  c.set("factor", std::vector<double>{factor[0], factor[1]}).set("interpolation", o.interpolation);
  return detail::random_image_layer("RandAugment", c, detail::image_options(o));
}
/// keras.layers.MixUp: in training each image becomes w x + (1 - w) x[perm], w drawn from Beta(alpha, alpha)
/// per image and perm a random permutation of the batch. Call it on {images} or {images, labels} (labels
/// [N, ...] floats, mixed alike); it returns as many tensors.
inline Layer MixUp(double alpha = 0.2, const RandomImageOptions &o = {}) {
  Config c;
  c.set("alpha", alpha);
  return detail::random_image_layer("MixUp", c, o);
}
/// keras.layers.CutMix: in training a box of each image (sqrt(1 - w) of each side, w from Beta(alpha,
/// alpha), alpha drawn in factor (lower, upper) once per call) replaced by that box of another image of
/// the batch; labels beside the images mixed by the box's share, as MixUp's.
inline Layer CutMix(std::array<double, 2> factor = {0.0, 1.0}, const RandomImageOptions &o = {}) {
  Config c;
  c.set("factor", std::vector<double>{factor[0], factor[1]});
  return detail::random_image_layer("CutMix", c, o);
}
/// RandomPerspective(factor): a probability drawn in [0, factor] per image.
inline Layer RandomPerspective(double factor = 1.0, double scale = 1.0,
                               const RandomTransformOptions &o = {}) {
  return RandomPerspective(std::array<double, 2>{0.0, factor}, scale, o);
}

/// x * scale + offset in the layer's compute dtype (Rescaling(1.0 / 255) for uint8 images).
inline Layer Rescaling(double scale, double offset = 0.0, const std::string &name = "") {
  Config c;
  c.set("scale", scale).set("offset", offset);
  return detail::named_layer("Rescaling", name, c);
}
/// Per-channel scale and offset, broadcast against the input's last axes.
inline Layer Rescaling(const std::vector<double> &scale, const std::vector<double> &offset,
                       const std::string &name = "") {
  Config c;
  c.set("scale", scale).set("offset", offset);
  return detail::named_layer("Rescaling", name, c);
}

}  // namespace layers

/// keras.Input, also as kiln::Input.
using layers::Input;

// ------------------------------------------------------------------ Mixed precision

/// Keras's dtype policies (keras.mixed_precision): a layer computes in its policy's compute dtype
/// and keeps its weights in the variable dtype. "mixed_bfloat16" computes in bfloat16 with float32
/// variables, gradients and optimizer state (native bf16 where the CPU has it, exactly emulated
/// elsewhere); "float32", "float64", "bfloat16" use one dtype. Layers made without a dtype take
/// the global policy; Layer::create("Dense", Config().set("units", 3).set("dtype", "float32"))
/// overrides it (Keras's advice for the last layer).
///
///   kiln::mixed_precision::set_global_policy("mixed_bfloat16");
///   auto model = kiln::Sequential({kiln::layers::Dense(64, "relu"), kiln::layers::Dense(10)});
namespace mixed_precision {

/// keras.DTypePolicy(name) (Keras 2's mixed_precision.Policy): name, compute_dtype, variable_dtype.
class DTypePolicy {
 public:
  /// Throws Error (INVALID_ARGUMENT listing the known policies) for an unknown name.
  explicit DTypePolicy(const std::string &name) : name_(name) {
    kiln_dtype c = KILN_DTYPE_FLOAT32, v = KILN_DTYPE_FLOAT32;
    detail::check(kiln_dtype_policy_get_dtypes(&c, &v, name.c_str()));
    compute_ = static_cast<DType>(c);
    variable_ = static_cast<DType>(v);
  }
  const std::string &name() const noexcept { return name_; }
  DType compute_dtype() const noexcept { return compute_; }
  DType variable_dtype() const noexcept { return variable_; }
  bool operator==(const DTypePolicy &o) const noexcept { return name_ == o.name_; }
  bool operator!=(const DTypePolicy &o) const noexcept { return name_ != o.name_; }

 private:
  std::string name_;
  DType compute_ = DType::float32, variable_ = DType::float32;
};
using Policy = DTypePolicy;

/// keras.mixed_precision.set_global_policy: the policy layers made from now on take (process-wide).
inline void set_global_policy(const std::string &name) { detail::check(kiln_set_global_dtype_policy(name.c_str())); }
inline void set_global_policy(const DTypePolicy &policy) { set_global_policy(policy.name()); }
/// keras.mixed_precision.global_policy().
inline DTypePolicy global_policy() {
  char *s = nullptr;
  detail::check(kiln_get_global_dtype_policy(&s));
  return DTypePolicy(detail::take_string(s));
}

/// Sets the global policy for a scope and restores the previous one when it ends.
class PolicyScope {
 public:
  explicit PolicyScope(const std::string &name) : saved_(global_policy().name()) { set_global_policy(name); }
  ~PolicyScope() { kiln_status_free(kiln_set_global_dtype_policy(saved_.c_str())); }
  PolicyScope(const PolicyScope &) = delete;
  PolicyScope &operator=(const PolicyScope &) = delete;

 private:
  std::string saved_;
};

}  // namespace mixed_precision

inline mixed_precision::DTypePolicy Layer::dtype_policy() const {
  const char *name = kiln_layer_get_dtype_policy(get());
  if (!name) throw Error(KILN_STATUS_INVALID_ARGUMENT, "Layer::dtype_policy: the layer handle is empty");
  return mixed_precision::DTypePolicy(name);
}

// ------------------------------------------------------------------ losses and metrics

namespace detail {
template <>
struct handle_traits<kiln_loss> {
  static void destroy(kiln_loss *h) noexcept { kiln_loss_free(h); }
  static kiln_status *clone(kiln_loss **out, const kiln_loss *h) { return kiln_loss_clone(out, h); }
};
template <>
struct handle_traits<kiln_metric> {
  static void destroy(kiln_metric *h) noexcept { kiln_metric_free(h); }
  static kiln_status *clone(kiln_metric **out, const kiln_metric *h) { return kiln_metric_clone(out, h); }
};
template <typename H>
Config config_of(kiln_status *(*fn)(kiln_config **, const H *), const H *h) {
  kiln_config *c = nullptr;
  check(fn(&c, h));
  return Config(c);
}
}  // namespace detail

/// A Keras loss (kiln/losses.h). Copies share one loss object; a loss has no state, so one may
/// be called from several threads at once.
class Loss : public detail::handle<kiln_loss> {
 public:
  Loss() = default;
  /// Takes ownership of a C handle.
  explicit Loss(kiln_loss *h) noexcept : handle(h) {}
  /// By class name or Keras alias: Loss::create("SparseCategoricalCrossentropy", cfg), ("mse").
  static Loss create(const std::string &name, const Config &config = Config()) {
    kiln_loss *h = nullptr;
    detail::check(kiln_loss_create(&h, name.c_str(), config.get()));
    return Loss(h);
  }
  /// From Keras's serialized form {"class_name": ..., "config": {...}}.
  static Loss deserialize(const Config &serialized) {
    kiln_loss *h = nullptr;
    detail::check(kiln_loss_deserialize(&h, serialized.get()));
    return Loss(h);
  }
  static bool is_registered(const std::string &name) { return kiln_loss_is_registered(name.c_str()); }
  /// A loss computed by fn (the per-sample losses of y_true and y_pred, made with kiln's ops),
  /// weighed and reduced as kiln's own: Keras's LossFunctionWrapper(fn), what compile(loss=my_fn)
  /// makes of a function; class_name "" for "LossFunctionWrapper", else a Loss subclass's name.
  /// config: "name" (default fn_name), "reduction". Metric::mean_wrapper of it is Keras's
  /// MeanMetricWrapper(fn). An exception from fn comes out of the call with its code (a
  /// std::exception as INTERNAL). fn runs on the thread that uses the loss. See
  /// kiln_loss_create_custom.
  static Loss from_function(const std::string &fn_name,
                            std::function<Tensor(const Tensor &y_true, const Tensor &y_pred)> fn,
                            const Config &config = Config(), const std::string &class_name = "") {
    using Fn = std::function<Tensor(const Tensor &, const Tensor &)>;
    if (!fn) throw Error(KILN_STATUS_INVALID_ARGUMENT, "Loss::from_function: the function is empty");
    auto owned = std::make_unique<Fn>(std::move(fn));
    kiln_loss_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.call = [](kiln_tensor **out, const kiln_tensor *y_true, const kiln_tensor *y_pred,
                 void *ud) -> kiln_status * {
      return kiln::detail::status_of([&] {
        kiln_tensor *t = nullptr, *p = nullptr;
        kiln::detail::check(kiln_tensor_clone(&t, y_true));
        Tensor yt(t);
        kiln::detail::check(kiln_tensor_clone(&p, y_pred));
        Tensor values = (*static_cast<Fn *>(ud))(yt, Tensor(p));
        *out = values.release();
      });
    };
    cb.destroy = [](void *ud) { delete static_cast<Fn *>(ud); };
    kiln_loss *h = nullptr;
    detail::check(kiln_loss_create_custom(&h, class_name.empty() ? nullptr : class_name.c_str(),
                                          fn_name.c_str(), config.get(), &cb, owned.get()));
    owned.release();  // the loss frees it
    return Loss(h);
  }
  /// loss(y_true, y_pred, sample_weight): the reduced loss (per-sample for reduction "none"),
  /// recorded on the calling thread's tapes.
  Tensor operator()(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight = Tensor()) const {
    kiln_tensor *out = nullptr;
    detail::check(kiln_loss_call(&out, get(), y_true.get(), y_pred.get(), sample_weight.get()));
    return Tensor(out);
  }
  std::string name() const { return detail::handle_string(kiln_loss_get_name(get()), "kiln::Loss::name"); }
  std::string class_name() const {
    return detail::handle_string(kiln_loss_get_class_name(get()), "kiln::Loss::class_name");
  }
  uint64_t id() const noexcept { return kiln_loss_get_id(get()); }
  Config get_config() const { return detail::config_of(kiln_loss_get_config, get()); }
  Config serialize() const { return detail::config_of(kiln_loss_serialize, get()); }
};

/// A Keras metric (kiln/metrics.h): update_state batch by batch, result, reset_state. Copies
/// share one metric and its state; updates from several threads are serialised by the metric.
class Metric : public detail::handle<kiln_metric> {
 public:
  Metric() = default;
  /// Takes ownership of a C handle.
  explicit Metric(kiln_metric *h) noexcept : handle(h) {}
  /// By class name, Keras function name or alias, or loss name ("AUC", "acc", "mae").
  static Metric create(const std::string &name, const Config &config = Config()) {
    kiln_metric *h = nullptr;
    detail::check(kiln_metric_create(&h, name.c_str(), config.get()));
    return Metric(h);
  }
  static Metric deserialize(const Config &serialized) {
    kiln_metric *h = nullptr;
    detail::check(kiln_metric_deserialize(&h, serialized.get()));
    return Metric(h);
  }
  /// Keras's MeanMetricWrapper(loss): the mean of loss's per-sample values ("" name: the loss's).
  static Metric mean_wrapper(const Loss &loss, const std::string &name = "") {
    kiln_metric *h = nullptr;
    detail::check(kiln_metric_create_mean_wrapper(&h, loss.get(), name.c_str()));
    return Metric(h);
  }
  /// compile's metric lookup (Keras's get_metric): "accuracy" / "crossentropy" picked from the
  /// loss (may be empty) and the shapes (-1: unknown); other names as create.
  static Metric resolve(const std::string &identifier, const Loss &loss, const Dims &y_true_shape,
                        const Dims &y_pred_shape) {
    kiln_metric *h = nullptr;
    detail::check(kiln_metric_resolve(&h, identifier.c_str(), loss.get(), y_true_shape.data(), y_true_shape.size(),
                                      y_pred_shape.data(), y_pred_shape.size()));
    return Metric(h);
  }
  static bool is_registered(const std::string &name) { return kiln_metric_is_registered(name.c_str()); }

  void update_state(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight = Tensor()) {
    detail::check(kiln_metric_update_state(get(), y_true.get(), y_pred.get(), sample_weight.get()));
  }
  /// Mean / Sum: update_state(values, sample_weight).
  void update_state_values(const Tensor &values, const Tensor &sample_weight = Tensor()) {
    detail::check(kiln_metric_update_state_values(get(), values.get(), sample_weight.get()));
  }
  /// Keras's metric(y_true, y_pred): updates, then gives the result.
  Tensor operator()(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight = Tensor()) {
    update_state(y_true, y_pred, sample_weight);
    return result();
  }
  Tensor result() const {
    kiln_tensor *out = nullptr;
    detail::check(kiln_metric_result(&out, get()));
    return Tensor(out);
  }
  void reset_state() { detail::check(kiln_metric_reset_state(get())); }
  /// TF 2.x's name for reset_state.
  void reset_states() { reset_state(); }
  /// The state variables (total, count, true_positives ...), in creation order.
  std::vector<Variable> variables() const {
    return detail::variables_from([this](kiln_variable **out, size_t capacity, size_t *count) {
      return kiln_metric_get_variables(out, capacity, count, get());
    });
  }
  bool takes_values() const noexcept { return kiln_metric_takes_values(get()); }
  std::string name() const {
    return detail::handle_string(kiln_metric_get_name(get()), "kiln::Metric::name");
  }
  std::string class_name() const {
    return detail::handle_string(kiln_metric_get_class_name(get()), "kiln::Metric::class_name");
  }
  uint64_t id() const noexcept { return kiln_metric_get_id(get()); }
  Config get_config() const { return detail::config_of(kiln_metric_get_config, get()); }
  Config serialize() const { return detail::config_of(kiln_metric_serialize, get()); }
};

/// Built-in losses with typed options (Keras 3's names and defaults).
namespace losses {

/// Every loss's common options: reduction "sum_over_batch_size" (default), "sum", "mean",
/// "mean_with_sample_weight" or "none".
struct LossOptions {
  std::string reduction = "sum_over_batch_size";
  std::string name;  ///< "": the class's default
};

namespace detail {
inline Config base(const LossOptions &o) {
  Config c;
  c.set("reduction", o.reduction);
  if (!o.name.empty()) c.set("name", o.name);
  return c;
}
}  // namespace detail

struct SparseCategoricalCrossentropyOptions : LossOptions {
  bool from_logits = false;
  int64_t ignore_class = -1;  ///< -1: none (Keras's None)
  bool has_ignore_class = false;
  int64_t axis = -1;  ///< the classes' axis: the last (-1, or rank - 1), as Keras's TensorFlow backend
};
inline Loss SparseCategoricalCrossentropy(const SparseCategoricalCrossentropyOptions &o = {}) {
  Config c = detail::base(o);
  c.set("from_logits", o.from_logits);
  if (o.has_ignore_class) c.set("ignore_class", o.ignore_class);
  c.set("axis", o.axis);
  return Loss::create("SparseCategoricalCrossentropy", c);
}
struct CrossentropyOptions : LossOptions {
  bool from_logits = false;
  double label_smoothing = 0.0;
  int64_t axis = -1;
};
namespace detail {
inline Config crossentropy(const CrossentropyOptions &o) {
  Config c = base(o);
  c.set("from_logits", o.from_logits).set("label_smoothing", o.label_smoothing).set("axis", o.axis);
  return c;
}
}  // namespace detail
inline Loss CategoricalCrossentropy(const CrossentropyOptions &o = {}) {
  return Loss::create("CategoricalCrossentropy", detail::crossentropy(o));
}
inline Loss BinaryCrossentropy(const CrossentropyOptions &o = {}) {
  return Loss::create("BinaryCrossentropy", detail::crossentropy(o));
}
inline Loss MeanSquaredError(const LossOptions &o = {}) { return Loss::create("MeanSquaredError", detail::base(o)); }
inline Loss MeanAbsoluteError(const LossOptions &o = {}) { return Loss::create("MeanAbsoluteError", detail::base(o)); }
inline Loss KLDivergence(const LossOptions &o = {}) { return Loss::create("KLDivergence", detail::base(o)); }
inline Loss Huber(double delta = 1.0, const LossOptions &o = {}) {
  Config c = detail::base(o);
  c.set("delta", delta);
  return Loss::create("Huber", c);
}
inline Loss CosineSimilarity(int64_t axis = -1, const LossOptions &o = {}) {
  Config c = detail::base(o);
  c.set("axis", axis);
  return Loss::create("CosineSimilarity", c);
}
inline Loss MeanAbsolutePercentageError(const LossOptions &o = {}) {
  return Loss::create("MeanAbsolutePercentageError", detail::base(o));
}
inline Loss MeanSquaredLogarithmicError(const LossOptions &o = {}) {
  return Loss::create("MeanSquaredLogarithmicError", detail::base(o));
}
inline Loss LogCosh(const LossOptions &o = {}) { return Loss::create("LogCosh", detail::base(o)); }
inline Loss Poisson(const LossOptions &o = {}) { return Loss::create("Poisson", detail::base(o)); }
/// Labels -1 or 1 (all-0/1 labels are turned into -1/1, as Keras does).
inline Loss Hinge(const LossOptions &o = {}) { return Loss::create("Hinge", detail::base(o)); }
inline Loss SquaredHinge(const LossOptions &o = {}) { return Loss::create("SquaredHinge", detail::base(o)); }
inline Loss CategoricalHinge(const LossOptions &o = {}) {
  return Loss::create("CategoricalHinge", detail::base(o));
}
struct BinaryFocalCrossentropyOptions : CrossentropyOptions {
  bool apply_class_balancing = false;
  double alpha = 0.25;
  double gamma = 2.0;
};
inline Loss BinaryFocalCrossentropy(const BinaryFocalCrossentropyOptions &o = {}) {
  Config c = detail::crossentropy(o);
  c.set("apply_class_balancing", o.apply_class_balancing).set("alpha", o.alpha).set("gamma", o.gamma);
  return Loss::create("BinaryFocalCrossentropy", c);
}
struct CategoricalFocalCrossentropyOptions : CrossentropyOptions {
  double alpha = 0.25;
  std::vector<double> class_alpha;  ///< non-empty: one alpha per class (Keras's list), in place of alpha
  double gamma = 2.0;
};
inline Loss CategoricalFocalCrossentropy(const CategoricalFocalCrossentropyOptions &o = {}) {
  Config c = detail::crossentropy(o);
  if (o.class_alpha.empty())
    c.set("alpha", o.alpha);
  else
    c.set("alpha", o.class_alpha);
  c.set("gamma", o.gamma);
  return Loss::create("CategoricalFocalCrossentropy", c);
}
/// Dice and Tversky: axis empty (default) sums over every axis (Keras's None: one value for the
/// batch); {1, 2, 3} gives one value per image of [B, H, W, C].
struct DiceOptions : LossOptions {
  std::vector<int64_t> axis;
};
namespace detail {
inline Config overlap(const DiceOptions &o) {
  Config c = base(o);
  if (o.axis.empty())
    c.set_null("axis");
  else
    c.set("axis", o.axis);
  return c;
}
}  // namespace detail
inline Loss Dice(const DiceOptions &o = {}) { return Loss::create("Dice", detail::overlap(o)); }
struct TverskyOptions : DiceOptions {
  double alpha = 0.5;  ///< weight of the false positives
  double beta = 0.5;   ///< weight of the false negatives
};
inline Loss Tversky(const TverskyOptions &o = {}) {
  Config c = detail::overlap(o);
  c.set("alpha", o.alpha).set("beta", o.beta);
  return Loss::create("Tversky", c);
}
/// (1 - p^q) / q of the labels' probabilities: integer labels, q in (0, 1).
inline Loss CategoricalGeneralizedCrossEntropy(double q = 0.5, const LossOptions &o = {}) {
  Config c = detail::base(o);
  c.set("q", q);
  return Loss::create("CategoricalGeneralizedCrossEntropy", c);
}
/// Circle loss over a batch of L2-normalized embeddings [B, D] with integer labels [B].
struct CircleOptions : LossOptions {
  double gamma = 80.0;
  double margin = 0.4;
  bool remove_diagonal = true;
};
inline Loss Circle(const CircleOptions &o = {}) {
  Config c = detail::base(o);
  c.set("gamma", o.gamma).set("margin", o.margin).set("remove_diagonal", o.remove_diagonal);
  return Loss::create("Circle", c);
}
/// Keras's CTC: integer labels [B, max_length] padded with 0 (the blank) at the end and logits
/// [B, frames, classes]; the per-sample kiln::ctc_loss over every frame and the non-zero labels.
inline Loss CTC(const LossOptions &o = {}) { return Loss::create("CTC", detail::base(o)); }
/// keras.losses.get: a class name or alias ("mse", "sparse_categorical_crossentropy"), or a
/// registered custom loss.
inline Loss get(const std::string &name) { return Loss::create(name); }

/// Makes a custom loss from its config: the saved one ("name", "reduction") or Loss::create's.
using LossFactory = std::function<Loss(const Config &config)>;
/// Registers a custom loss under name, as Keras's registered custom objects: Loss::create(name),
/// compile's loss and metric names, Loss::deserialize and the compile config of a loaded
/// SavedModel make it with factory. name: a Loss subclass's class name (Loss::from_function's
/// class_name) or a function's name (its fn_name). Replaces an earlier registration; a built-in
/// name is a kiln::Error (INVALID_ARGUMENT). See kiln_loss_register_class.
inline void register_loss(const std::string &name, LossFactory factory) {
  if (!factory) throw Error(KILN_STATUS_INVALID_ARGUMENT, "losses::register_loss: the factory is empty");
  kiln_loss_class_callbacks cb{};
  cb.struct_size = sizeof cb;
  cb.from_config = [](kiln_loss **out, const kiln_config *config, void *ud) -> kiln_status * {
    return kiln::detail::status_of([&] {
      kiln::detail::BorrowedConfig b(config);
      Loss l = (*static_cast<LossFactory *>(ud))(b.c);
      if (!l.valid()) throw Error(KILN_STATUS_INTERNAL, "the loss factory gave an empty Loss");
      *out = l.release();
    });
  };
  cb.destroy = [](void *ud) { delete static_cast<LossFactory *>(ud); };
  auto *f = new LossFactory(std::move(factory));
  kiln_status *st = kiln_loss_register_class(name.c_str(), &cb, f);
  if (st) delete f;
  kiln::detail::check(st);
}
/// Registers fn as the loss function name (Keras's LossFunctionWrapper(fn), Loss::from_function
/// named name), so a model compiled with it loads compiled and "name" works as a loss or metric.
inline void register_function(const std::string &name,
                              std::function<Tensor(const Tensor &y_true, const Tensor &y_pred)> fn) {
  if (!fn) throw Error(KILN_STATUS_INVALID_ARGUMENT, "losses::register_function: the function is empty");
  register_loss(name, [name, fn](const Config &config) { return Loss::from_function(name, fn, config); });
}
/// Ends a custom loss's registration (losses already made live on).
inline void unregister_loss(const std::string &name) {
  kiln::detail::check(kiln_loss_unregister_class(name.c_str()));
}
/// (Loss::is_registered(name) tells whether a name is built in or registered.)

}  // namespace losses

/// Built-in metrics with typed options (Keras 3's names and defaults; "" name: the default).
namespace metrics {

namespace detail {
inline Metric named(const char *cls, const std::string &name, Config c = Config()) {
  if (!name.empty()) c.set("name", name);
  return Metric::create(cls, c);
}
}  // namespace detail

inline Metric Mean(const std::string &name = "") { return detail::named("Mean", name); }
inline Metric Sum(const std::string &name = "") { return detail::named("Sum", name); }
inline Metric Accuracy(const std::string &name = "") { return detail::named("Accuracy", name); }
inline Metric BinaryAccuracy(double threshold = 0.5, const std::string &name = "") {
  Config c;
  c.set("threshold", threshold);
  return detail::named("BinaryAccuracy", name, c);
}
inline Metric CategoricalAccuracy(const std::string &name = "") { return detail::named("CategoricalAccuracy", name); }
inline Metric SparseCategoricalAccuracy(const std::string &name = "") {
  return detail::named("SparseCategoricalAccuracy", name);
}
inline Metric TopKCategoricalAccuracy(int64_t k = 5, const std::string &name = "") {
  Config c;
  c.set("k", k);
  return detail::named("TopKCategoricalAccuracy", name, c);
}
/// from_sorted_ids: y_pred holds each row's category ids, best first (Keras's option).
inline Metric SparseTopKCategoricalAccuracy(int64_t k = 5, const std::string &name = "",
                                            bool from_sorted_ids = false) {
  Config c;
  c.set("k", k);
  if (from_sorted_ids) c.set("from_sorted_ids", true);
  return detail::named("SparseTopKCategoricalAccuracy", name, c);
}
inline Metric MeanSquaredError(const std::string &name = "") { return detail::named("MeanSquaredError", name); }
inline Metric RootMeanSquaredError(const std::string &name = "") {
  return detail::named("RootMeanSquaredError", name);
}
/// The metrics that are the mean of a loss function's values (Keras's names and defaults).
inline Metric MeanAbsoluteError(const std::string &name = "") {
  return detail::named("MeanAbsoluteError", name);
}
inline Metric MeanAbsolutePercentageError(const std::string &name = "") {
  return detail::named("MeanAbsolutePercentageError", name);
}
inline Metric MeanSquaredLogarithmicError(const std::string &name = "") {
  return detail::named("MeanSquaredLogarithmicError", name);
}
inline Metric LogCoshError(const std::string &name = "") { return detail::named("LogCoshError", name); }
inline Metric Poisson(const std::string &name = "") { return detail::named("Poisson", name); }
inline Metric KLDivergence(const std::string &name = "") { return detail::named("KLDivergence", name); }
inline Metric Hinge(const std::string &name = "") { return detail::named("Hinge", name); }
inline Metric SquaredHinge(const std::string &name = "") { return detail::named("SquaredHinge", name); }
inline Metric CategoricalHinge(const std::string &name = "") {
  return detail::named("CategoricalHinge", name);
}
/// The cosine similarity itself (the loss CosineSimilarity is its negative).
inline Metric CosineSimilarity(int64_t axis = -1, const std::string &name = "") {
  Config c;
  c.set("axis", axis);
  return detail::named("CosineSimilarity", name, c);
}
inline Metric BinaryCrossentropy(bool from_logits = false, double label_smoothing = 0.0,
                                 const std::string &name = "") {
  Config c;
  c.set("from_logits", from_logits).set("label_smoothing", label_smoothing);
  return detail::named("BinaryCrossentropy", name, c);
}
inline Metric CategoricalCrossentropy(bool from_logits = false, double label_smoothing = 0.0,
                                      int64_t axis = -1, const std::string &name = "") {
  Config c;
  c.set("from_logits", from_logits).set("label_smoothing", label_smoothing).set("axis", axis);
  return detail::named("CategoricalCrossentropy", name, c);
}
/// ignore_class: std::nullopt is Keras's None.
inline Metric SparseCategoricalCrossentropy(bool from_logits = false,
                                            std::optional<int64_t> ignore_class = {},
                                            const std::string &name = "") {
  Config c;
  c.set("from_logits", from_logits);
  if (ignore_class) c.set("ignore_class", *ignore_class);
  return detail::named("SparseCategoricalCrossentropy", name, c);
}
/// Precision / Recall options: thresholds empty means Keras's None (0.5, or -1e10 with top_k);
/// top_k and class_id -1 mean None.
struct PrecisionRecallOptions {
  std::vector<double> thresholds;
  int64_t top_k = -1;
  int64_t class_id = -1;
  std::string name;
};
namespace detail {
inline Config precision_recall(const PrecisionRecallOptions &o) {
  Config c;
  if (!o.thresholds.empty()) c.set("thresholds", o.thresholds);
  if (o.top_k >= 0) c.set("top_k", o.top_k);
  if (o.class_id >= 0) c.set("class_id", o.class_id);
  return c;
}
}  // namespace detail
inline Metric Precision(const PrecisionRecallOptions &o = {}) {
  return detail::named("Precision", o.name, detail::precision_recall(o));
}
inline Metric Recall(const PrecisionRecallOptions &o = {}) {
  return detail::named("Recall", o.name, detail::precision_recall(o));
}
struct AUCOptions {
  int64_t num_thresholds = 200;
  std::string curve = "ROC";                       ///< "ROC", "PR" or "PRGAIN"
  std::string summation_method = "interpolation";  ///< or "minoring", "majoring"
  std::vector<double> thresholds;                  ///< empty: num_thresholds evenly spaced
  bool multi_label = false;                        ///< y_pred [samples, labels]: one AUC per label
  std::optional<int64_t> num_labels;               ///< multi_label only; unset: from the first update
  std::vector<double> label_weights;               ///< empty: None (an unweighted mean)
  bool from_logits = false;
  std::string name;
};
inline Metric AUC(const AUCOptions &o = {}) {
  Config c;
  c.set("num_thresholds", o.num_thresholds).set("curve", o.curve).set("summation_method", o.summation_method);
  if (!o.thresholds.empty()) c.set("thresholds", o.thresholds);
  c.set("multi_label", o.multi_label);
  if (o.num_labels) c.set("num_labels", *o.num_labels);
  if (!o.label_weights.empty()) c.set("label_weights", o.label_weights);
  c.set("from_logits", o.from_logits);
  return detail::named("AUC", o.name, c);
}
/// Options of Keras's IoU, MeanIoU, OneHotIoU and OneHotMeanIoU.
struct IoUOptions {
  std::optional<int64_t> ignore_class;  ///< a label to leave out (often -1 or 255); unset: None
  bool sparse_y_true = true;            ///< IoU and MeanIoU only (one-hot labels: false)
  std::optional<bool> sparse_y_pred;    ///< unset: true, or false for the OneHot classes
  int64_t axis = -1;                    ///< the class axis, for argmax when not sparse
  std::string dtype;                    ///< the confusion matrix's: empty is Keras's "int" (int64)
  std::string name;
};
namespace detail {
inline Metric iou(const char *cls, int64_t num_classes, const std::vector<int64_t> *target_class_ids,
                  bool one_hot, const IoUOptions &o) {
  Config c;
  c.set("num_classes", num_classes);
  if (target_class_ids) c.set("target_class_ids", *target_class_ids);
  if (o.ignore_class) c.set("ignore_class", *o.ignore_class);
  if (!one_hot) c.set("sparse_y_true", o.sparse_y_true);
  if (o.sparse_y_pred) c.set("sparse_y_pred", *o.sparse_y_pred);
  c.set("axis", o.axis);
  if (!o.dtype.empty()) c.set("dtype", o.dtype);
  return named(cls, o.name, c);
}
}  // namespace detail
/// Intersection-over-union of the target classes (their mean), from a confusion matrix.
inline Metric IoU(int64_t num_classes, const std::vector<int64_t> &target_class_ids,
                  const IoUOptions &o = {}) {
  return detail::iou("IoU", num_classes, &target_class_ids, false, o);
}
/// The mean IoU over every class.
inline Metric MeanIoU(int64_t num_classes, const IoUOptions &o = {}) {
  return detail::iou("MeanIoU", num_classes, nullptr, false, o);
}
/// IoU for one-hot labels (and, unless sparse_y_pred, class scores): argmax over axis first.
inline Metric OneHotIoU(int64_t num_classes, const std::vector<int64_t> &target_class_ids,
                        const IoUOptions &o = {}) {
  return detail::iou("OneHotIoU", num_classes, &target_class_ids, true, o);
}
inline Metric OneHotMeanIoU(int64_t num_classes, const IoUOptions &o = {}) {
  return detail::iou("OneHotMeanIoU", num_classes, nullptr, true, o);
}
struct BinaryIoUOptions {
  std::vector<int64_t> target_class_ids{0, 1};
  double threshold = 0.5;  ///< a prediction >= threshold is class 1
  std::string dtype;       ///< empty: Keras's "int" (int64)
  std::string name;
};
/// IoU of classes 0 and/or 1 after thresholding the predictions.
inline Metric BinaryIoU(const BinaryIoUOptions &o = {}) {
  Config c;
  c.set("target_class_ids", o.target_class_ids).set("threshold", o.threshold);
  if (!o.dtype.empty()) c.set("dtype", o.dtype);
  return detail::named("BinaryIoU", o.name, c);
}
/// Options of Keras's F1Score.
struct F1ScoreOptions {
  std::string average;              ///< empty: None (one score per class); "micro", "macro" or "weighted"
  std::optional<double> threshold;  ///< a score above it counts; unset: each row's largest score
  std::string name;
};
/// Options of Keras's FBetaScore: F1Score's and beta, the weight of recall.
struct FBetaScoreOptions : F1ScoreOptions {
  double beta = 1.0;
};
namespace detail {
inline Config f_score(const F1ScoreOptions &o) {
  Config c;
  if (!o.average.empty()) c.set("average", o.average);
  if (o.threshold) c.set("threshold", *o.threshold);
  return c;
}
}  // namespace detail
/// The F1 score of [batch, classes] labels and scores: per class (average None, result [classes])
/// or one number. fit and evaluate log one number per metric, so compile it with an average.
inline Metric F1Score(const F1ScoreOptions &o = {}) {
  return detail::named("F1Score", o.name, detail::f_score(o));
}
/// The F-beta score, as F1Score with recall weighted by beta.
inline Metric FBetaScore(const FBetaScoreOptions &o = {}) {
  Config c = detail::f_score(o);
  c.set("beta", o.beta);
  return detail::named("FBetaScore", o.name, c);
}
namespace detail {
inline Metric count(const char *cls, const std::vector<double> &thresholds, const std::string &name) {
  Config c;
  if (!thresholds.empty()) c.set("thresholds", thresholds);
  return named(cls, name, c);
}
}  // namespace detail
/// The (weighted) number of true positives at each threshold (a prediction above it is positive):
/// thresholds empty means Keras's None (0.5). One threshold gives a scalar result, several a vector.
inline Metric TruePositives(const std::vector<double> &thresholds = {}, const std::string &name = "") {
  return detail::count("TruePositives", thresholds, name);
}
inline Metric FalsePositives(const std::vector<double> &thresholds = {}, const std::string &name = "") {
  return detail::count("FalsePositives", thresholds, name);
}
inline Metric TrueNegatives(const std::vector<double> &thresholds = {}, const std::string &name = "") {
  return detail::count("TrueNegatives", thresholds, name);
}
inline Metric FalseNegatives(const std::vector<double> &thresholds = {}, const std::string &name = "") {
  return detail::count("FalseNegatives", thresholds, name);
}
/// Options of SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall and
/// RecallAtPrecision: num_thresholds thresholds evenly spaced in [0, 1] (one: 0.5), and class_id
/// (unset: None) for one column of (samples, classes) predictions.
struct AtConstraintOptions {
  int64_t num_thresholds = 200;
  std::optional<int64_t> class_id;
  std::string name;
};
namespace detail {
inline Metric at_constraint(const char *cls, const char *key, double value, const AtConstraintOptions &o) {
  Config c;
  c.set(key, value).set("num_thresholds", o.num_thresholds);
  if (o.class_id) c.set("class_id", *o.class_id);
  return named(cls, o.name, c);
}
}  // namespace detail
/// The best sensitivity (recall) among the thresholds where specificity >= specificity.
inline Metric SensitivityAtSpecificity(double specificity, const AtConstraintOptions &o = {}) {
  return detail::at_constraint("SensitivityAtSpecificity", "specificity", specificity, o);
}
/// The best specificity among the thresholds where sensitivity >= sensitivity.
inline Metric SpecificityAtSensitivity(double sensitivity, const AtConstraintOptions &o = {}) {
  return detail::at_constraint("SpecificityAtSensitivity", "sensitivity", sensitivity, o);
}
/// The best precision among the thresholds where recall >= recall.
inline Metric PrecisionAtRecall(double recall, const AtConstraintOptions &o = {}) {
  return detail::at_constraint("PrecisionAtRecall", "recall", recall, o);
}
/// The best recall among the thresholds where precision >= precision.
inline Metric RecallAtPrecision(double precision, const AtConstraintOptions &o = {}) {
  return detail::at_constraint("RecallAtPrecision", "precision", precision, o);
}
/// Options of Keras's R2Score.
struct R2ScoreOptions {
  /// "uniform_average", "variance_weighted_average", or unset: None (one score per output).
  std::optional<std::string> class_aggregation = std::string("uniform_average");
  int64_t num_regressors = 0;  ///< > 0: the adjusted R2 score
  std::string name;
};
/// The coefficient of determination of (batch, outputs) targets and predictions.
inline Metric R2Score(const R2ScoreOptions &o = {}) {
  Config c;
  if (o.class_aggregation)
    c.set("class_aggregation", *o.class_aggregation);
  else
    c.set_null("class_aggregation");
  c.set("num_regressors", o.num_regressors);
  return detail::named("R2Score", o.name, c);
}
/// The mean over samples of the Pearson correlation coefficient of y_true and y_pred along axis.
inline Metric PearsonCorrelation(int64_t axis = -1, const std::string &name = "") {
  Config c;
  c.set("axis", axis);
  return detail::named("PearsonCorrelation", name, c);
}
/// The mean over samples of the concordance correlation coefficient along axis.
inline Metric ConcordanceCorrelation(int64_t axis = -1, const std::string &name = "") {
  Config c;
  c.set("axis", axis);
  return detail::named("ConcordanceCorrelation", name, c);
}
/// keras.metrics.get: a class, function or loss name ("accuracy", "mse", "AUC").
inline Metric get(const std::string &name) { return Metric::create(name); }

/// Keras 3's metric functions by name ("binary_accuracy", "top_k_categorical_accuracy",
/// "pearson_correlation", or a loss function's name such as "mse"): the values the metric of that
/// name averages, without state; config holds the function's keyword arguments (see
/// kiln_metric_function_call).
inline Tensor function(const std::string &name, const Tensor &y_true, const Tensor &y_pred,
                       const Config &config = Config()) {
  kiln_tensor *out = nullptr;
  kiln::detail::check(
      kiln_metric_function_call(&out, name.c_str(), y_true.get(), y_pred.get(), config.get()));
  return Tensor(out);
}
namespace detail {
// A metric function with one integer argument (k, axis).
inline Tensor function_with(const char *name, const Tensor &y_true, const Tensor &y_pred, const char *key,
                            int64_t value) {
  Config c;
  c.set(key, value);
  return function(name, y_true, y_pred, c);
}
}  // namespace detail
/// keras.metrics.accuracy: 1 per element where y_true equals y_pred, else 0.
inline Tensor accuracy(const Tensor &y_true, const Tensor &y_pred) {
  return function("accuracy", y_true, y_pred);
}
/// keras.metrics.binary_accuracy: 1 per element where y_true equals (y_pred > threshold).
inline Tensor binary_accuracy(const Tensor &y_true, const Tensor &y_pred, double threshold = 0.5) {
  Config c;
  c.set("threshold", threshold);
  return function("binary_accuracy", y_true, y_pred, c);
}
/// keras.metrics.categorical_accuracy: 1 per sample whose one-hot label is y_pred's argmax.
inline Tensor categorical_accuracy(const Tensor &y_true, const Tensor &y_pred) {
  return function("categorical_accuracy", y_true, y_pred);
}
/// keras.metrics.sparse_categorical_accuracy: 1 per sample whose integer label is y_pred's argmax.
inline Tensor sparse_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred) {
  return function("sparse_categorical_accuracy", y_true, y_pred);
}
/// keras.metrics.top_k_categorical_accuracy: 1 per sample whose one-hot label is in y_pred's top k.
inline Tensor top_k_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred, int64_t k = 5) {
  return detail::function_with("top_k_categorical_accuracy", y_true, y_pred, "k", k);
}
/// keras.metrics.sparse_top_k_categorical_accuracy (from_sorted_ids: y_pred holds ids, best first).
inline Tensor sparse_top_k_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred, int64_t k = 5,
                                                bool from_sorted_ids = false) {
  Config c;
  c.set("k", k).set("from_sorted_ids", from_sorted_ids);
  return function("sparse_top_k_categorical_accuracy", y_true, y_pred, c);
}
/// keras.metrics.pearson_correlation: one coefficient per sample along axis.
inline Tensor pearson_correlation(const Tensor &y_true, const Tensor &y_pred, int64_t axis = -1) {
  return detail::function_with("pearson_correlation", y_true, y_pred, "axis", axis);
}
/// keras.metrics.concordance_correlation: one coefficient per sample along axis.
inline Tensor concordance_correlation(const Tensor &y_true, const Tensor &y_pred, int64_t axis = -1) {
  return detail::function_with("concordance_correlation", y_true, y_pred, "axis", axis);
}

}  // namespace metrics

// ---- optimizers and learning-rate schedules (optimizers.h) ----
//
//     auto opt = kiln::optimizers::Adam(1e-3);
//     kiln::GradientTape tape;
//     kiln::Tensor loss = ...;
//     tape.stop();
//     auto grads = tape.gradient(loss, {w, b});
//     opt.apply_gradients(grads, {w, b});          // or a vector of (gradient, variable) pairs

namespace detail {
template <>
struct handle_traits<kiln_communicator> {
  static void destroy(kiln_communicator *h) noexcept { kiln_communicator_free(h); }
  static kiln_status *clone(kiln_communicator **out, const kiln_communicator *h) {
    return kiln_communicator_clone(out, h);
  }
};
/// The options of kiln_optimizer_set_distributed and kiln_tape_set_distributed.
inline Config distributed_options(const std::string &op, int64_t fusion_threshold_bytes, bool overlap) {
  Config c;
  c.set("op", op);
  c.set("fusion_threshold_bytes", fusion_threshold_bytes);
  c.set("overlap", overlap);
  return c;
}
}  // namespace detail

/// The collectives data-parallel training runs on (kiln/communicator.h): kiln::distributed::world()
/// gives the one over MPI; FitOptions::with_distribution and Optimizer::set_distributed take it.
class Communicator : public kiln::detail::handle<kiln_communicator> {
 public:
  Communicator() = default;
  /// Takes ownership of a C handle.
  explicit Communicator(kiln_communicator *h) noexcept : handle(h) {}
  int rank() const noexcept { return kiln_communicator_get_rank(get()); }
  int size() const noexcept { return kiln_communicator_get_size(get()); }
  /// The collectives of a communicator over any transport (kiln_communicator_create): allreduce
  /// sums `count` elements of `dtype` at data over the ranks, in place; broadcast copies root's
  /// `bytes` at data to every other rank. An exception from either reaches the training as
  /// its status. They run one at a time, possibly on kiln's background thread.
  using AllreduceFn = std::function<void(void *data, size_t count, DType dtype)>;
  using BroadcastFn = std::function<void(void *data, size_t bytes, int root)>;
  static Communicator create(int rank, int size, AllreduceFn allreduce, BroadcastFn broadcast) {
    struct Fns {
      AllreduceFn allreduce;
      BroadcastFn broadcast;
    };
    if (!allreduce || !broadcast)
      throw Error(KILN_STATUS_INVALID_ARGUMENT,
                  "Communicator::create: allreduce and broadcast must be callable");
    kiln_communicator_table t{};
    t.struct_size = sizeof t;
    t.allreduce_sum = [](void *data, size_t count, kiln_dtype dtype, void *user) -> kiln_status * {
      return kiln::detail::status_of(
          [&] { static_cast<Fns *>(user)->allreduce(data, count, static_cast<DType>(dtype)); });
    };
    t.broadcast = [](void *data, size_t bytes, int root, void *user) -> kiln_status * {
      return kiln::detail::status_of([&] { static_cast<Fns *>(user)->broadcast(data, bytes, root); });
    };
    t.destroy = [](void *user) { delete static_cast<Fns *>(user); };
    auto *fns = new Fns{std::move(allreduce), std::move(broadcast)};
    kiln_communicator *h = nullptr;
    kiln_status *st = kiln_communicator_create(&h, rank, size, &t, fns);
    if (st) delete fns;  // on failure destroy is not called
    kiln::detail::check(st);
    return Communicator(h);
  }
  /// Horovod's broadcast_variables: root's values on every rank, in one fused broadcast.
  void broadcast_variables(const std::vector<Variable> &vars, int root = 0) const {
    std::vector<kiln_variable *> vs;
    for (const Variable &v : vars) vs.push_back(v.get());
    kiln::detail::check(kiln_communicator_broadcast_variables(get(), vs.data(), vs.size(), root));
  }
};

inline void GradientTape::set_distributed(const Communicator &comm, const std::string &op,
                                          int64_t fusion_threshold_bytes, bool overlap) {
  detail::check(kiln_tape_set_distributed(
      get(), comm.get(), detail::distributed_options(op, fusion_threshold_bytes, overlap).get()));
}

namespace detail {
template <>
struct handle_traits<kiln_optimizer> {
  static void destroy(kiln_optimizer *h) noexcept { kiln_optimizer_free(h); }
  static kiln_status *clone(kiln_optimizer **out, const kiln_optimizer *h) { return kiln_optimizer_clone(out, h); }
};
}  // namespace detail

namespace optimizers {

/// keras.optimizers.schedules: a schedule is its serialized config ({"class_name", "config"}),
/// evaluated by the library, so it crosses the ABI and round-trips as a value.
namespace schedules {

class LearningRateSchedule {
 public:
  /// A schedule from its Keras class name and config (checked on the first call).
  LearningRateSchedule(const std::string &class_name, const Config &config) {
    serialized_.set("class_name", class_name).set("config", config);
  }
  /// From Keras's serialized form.
  static LearningRateSchedule deserialize(const Config &serialized) {
    return LearningRateSchedule(serialized.get_string("class_name"),
                                serialized.has("config") ? serialized.get_config("config") : Config());
  }
  /// The learning rate at step (schedule(step)): computed in float32, as Keras does.
  double operator()(int64_t step) const {
    double v = 0;
    kiln::detail::check(kiln_learning_rate_schedule_call(&v, serialized_.get(), step));
    return v;
  }
  /// {"class_name": ..., "config": get_config()} with the defaults filled in.
  Config serialize() const {
    kiln_config *h = nullptr;
    kiln::detail::check(kiln_learning_rate_schedule_get_config(&h, serialized_.get()));
    return Config(h);
  }
  Config get_config() const { return serialize().get_config("config"); }
  std::string class_name() const { return serialized_.get_string("class_name"); }

 private:
  Config serialized_;
};

namespace detail {
inline void set_name(Config &c, const std::string &name) {
  if (!name.empty()) c.set("name", name);
}
}  // namespace detail

struct ExponentialDecayOptions {
  bool staircase = false;
  std::string name;  ///< "": Keras's default
};
namespace detail {
inline LearningRateSchedule time_decay(const char *cls, double initial_learning_rate, double decay_steps,
                                       double decay_rate, const ExponentialDecayOptions &o) {
  Config c;
  c.set("initial_learning_rate", initial_learning_rate).set("decay_steps", decay_steps);
  c.set("decay_rate", decay_rate).set("staircase", o.staircase);
  set_name(c, o.name);
  return LearningRateSchedule(cls, c);
}
}  // namespace detail
/// initial_learning_rate * decay_rate ^ (step / decay_steps), the exponent floored when staircase.
inline LearningRateSchedule ExponentialDecay(double initial_learning_rate, double decay_steps, double decay_rate,
                                             const ExponentialDecayOptions &o = {}) {
  return detail::time_decay("ExponentialDecay", initial_learning_rate, decay_steps, decay_rate, o);
}
/// initial_learning_rate / (1 + decay_rate * step / decay_steps), the ratio floored when staircase.
inline LearningRateSchedule InverseTimeDecay(double initial_learning_rate, double decay_steps, double decay_rate,
                                             const ExponentialDecayOptions &o = {}) {
  return detail::time_decay("InverseTimeDecay", initial_learning_rate, decay_steps, decay_rate, o);
}
inline LearningRateSchedule PiecewiseConstantDecay(const std::vector<double> &boundaries,
                                                   const std::vector<double> &values, const std::string &name = "") {
  Config c;
  c.set("boundaries", boundaries).set("values", values);
  detail::set_name(c, name);
  return LearningRateSchedule("PiecewiseConstantDecay", c);
}
struct PolynomialDecayOptions {
  double end_learning_rate = 0.0001;
  double power = 1.0;
  bool cycle = false;
  std::string name;
};
inline LearningRateSchedule PolynomialDecay(double initial_learning_rate, double decay_steps,
                                            const PolynomialDecayOptions &o = {}) {
  Config c;
  c.set("initial_learning_rate", initial_learning_rate).set("decay_steps", decay_steps);
  c.set("end_learning_rate", o.end_learning_rate).set("power", o.power).set("cycle", o.cycle);
  detail::set_name(c, o.name);
  return LearningRateSchedule("PolynomialDecay", c);
}
struct CosineDecayOptions {
  double alpha = 0.0;
  bool has_warmup_target = false;  ///< false: warmup_target=None (no warm-up)
  double warmup_target = 0.0;
  double warmup_steps = 0;
  std::string name;
};
inline LearningRateSchedule CosineDecay(double initial_learning_rate, double decay_steps,
                                        const CosineDecayOptions &o = {}) {
  Config c;
  c.set("initial_learning_rate", initial_learning_rate).set("decay_steps", decay_steps).set("alpha", o.alpha);
  if (o.has_warmup_target) c.set("warmup_target", o.warmup_target);
  c.set("warmup_steps", o.warmup_steps);
  detail::set_name(c, o.name);
  return LearningRateSchedule("CosineDecay", c);
}
struct CosineDecayRestartsOptions {
  double t_mul = 2.0;  ///< each period's length, relative to the last
  double m_mul = 1.0;  ///< each restart's peak, relative to the last
  double alpha = 0.0;  ///< the floor, as a fraction of initial_learning_rate
  std::string name;
};
/// Keras's CosineDecayRestarts (SGDR, warm restarts).
inline LearningRateSchedule CosineDecayRestarts(double initial_learning_rate, double first_decay_steps,
                                                const CosineDecayRestartsOptions &o = {}) {
  Config c;
  c.set("initial_learning_rate", initial_learning_rate).set("first_decay_steps", first_decay_steps);
  c.set("t_mul", o.t_mul).set("m_mul", o.m_mul).set("alpha", o.alpha);
  detail::set_name(c, o.name);
  return LearningRateSchedule("CosineDecayRestarts", c);
}
/// TF Model Garden's LinearWarmup: from warmup_learning_rate linearly to after(warmup_steps),
/// then after(step).
inline LearningRateSchedule LinearWarmup(const LearningRateSchedule &after_warmup_lr_sched, double warmup_steps,
                                         double warmup_learning_rate = 0.0) {
  Config c;
  c.set("after_warmup_lr_sched", after_warmup_lr_sched.serialize()).set("warmup_steps", warmup_steps);
  c.set("warmup_learning_rate", warmup_learning_rate);
  return LearningRateSchedule("LinearWarmup", c);
}
/// TF Model Garden's WarmUp (official.nlp.optimization, BERT's create_optimizer):
/// initial_learning_rate * (step / warmup_steps)^power during the warm-up, then decay_schedule(step).
inline LearningRateSchedule WarmUp(double initial_learning_rate, const LearningRateSchedule &decay_schedule,
                                   double warmup_steps, double power = 1.0) {
  Config c;
  c.set("initial_learning_rate", initial_learning_rate).set("decay_schedule_fn", decay_schedule.serialize());
  c.set("warmup_steps", warmup_steps).set("power", power);
  return LearningRateSchedule("WarmUp", c);
}
/// LinearWarmup to a constant learning rate.
inline LearningRateSchedule LinearWarmup(double after_warmup_lr, double warmup_steps,
                                         double warmup_learning_rate = 0.0) {
  Config c;
  c.set("after_warmup_lr_sched", after_warmup_lr).set("warmup_steps", warmup_steps);
  c.set("warmup_learning_rate", warmup_learning_rate);
  return LearningRateSchedule("LinearWarmup", c);
}

}  // namespace schedules

/// A learning rate: a float or a schedule (Keras's learning_rate argument).
class LearningRate {
 public:
  LearningRate(double value) : value_(value) {}  // NOLINT(google-explicit-constructor): Adam(1e-3)
  LearningRate(const schedules::LearningRateSchedule &s)  // NOLINT(google-explicit-constructor)
      : schedule_(std::make_shared<schedules::LearningRateSchedule>(s)) {}
  void set_in(Config &c) const {
    if (schedule_)
      c.set("learning_rate", schedule_->serialize());
    else
      c.set("learning_rate", value_);
  }

 private:
  double value_ = 0.0;
  std::shared_ptr<schedules::LearningRateSchedule> schedule_;
};

/// A Keras optimizer (keras.optimizers.Optimizer). Copies are new handles to the same optimizer.
class Optimizer : public kiln::detail::handle<kiln_optimizer> {
 public:
  Optimizer() = default;
  /// Takes ownership of a C handle.
  explicit Optimizer(kiln_optimizer *h) noexcept : handle(h) {}
  /// By Keras class name ("Adam", "adam", ...) and config (kiln_optimizer_create).
  static Optimizer create(const std::string &class_name, const Config &config = Config()) {
    kiln_optimizer *h = nullptr;
    kiln::detail::check(kiln_optimizer_create(&h, class_name.c_str(), config.get()));
    return Optimizer(h);
  }
  /// From Keras's serialized form {"class_name": ..., "config": {...}}.
  static Optimizer deserialize(const Config &serialized) {
    kiln_optimizer *h = nullptr;
    kiln::detail::check(kiln_optimizer_deserialize(&h, serialized.get()));
    return Optimizer(h);
  }
  Config serialize() const { return config_of(kiln_optimizer_serialize); }
  Config get_config() const { return config_of(kiln_optimizer_get_config); }
  uint64_t id() const noexcept { return kiln_optimizer_get_id(get()); }
  std::string class_name() const {
    return detail::handle_string(kiln_optimizer_get_class_name(get()), "kiln::Optimizer::class_name");
  }
  std::string name() const {
    return detail::handle_string(kiln_optimizer_get_name(get()), "kiln::Optimizer::name");
  }

  /// apply_gradients(zip(grads, vars)): an empty Tensor skips its variable.
  void apply_gradients(const std::vector<Tensor> &grads, const std::vector<Variable> &vars) {
    if (grads.size() != vars.size())
      throw Error(KILN_STATUS_INVALID_ARGUMENT, "Optimizer::apply_gradients: " + std::to_string(grads.size()) +
                                                    " gradients for " + std::to_string(vars.size()) + " variables");
    std::vector<const kiln_tensor *> gs;
    std::vector<kiln_variable *> vs;
    for (size_t i = 0; i < grads.size(); ++i) {
      gs.push_back(grads[i].get());
      vs.push_back(vars[i].get());
    }
    kiln::detail::check(kiln_optimizer_apply_gradients(get(), gs.data(), vs.data(), gs.size()));
  }
  /// Keras's build(var_list): the slots of each variable without them, in this order, without a step
  /// (restored slot values waiting for them land).
  void build(const std::vector<Variable> &vars) {
    std::vector<kiln_variable *> vs;
    for (const Variable &v : vars) vs.push_back(v.get());
    kiln::detail::check(kiln_optimizer_build(get(), vs.data(), vs.size()));
  }
  /// Keras's minimize(loss, var_list): loss() runs under a new GradientTape that watches vars,
  /// and the gradients of what it returns are applied as apply_gradients does (a variable the
  /// loss does not reach is skipped). Returns the loss. An exception loss() throws comes back as
  /// a kiln::Error of its code, and nothing has changed.
  Tensor minimize(const std::function<Tensor()> &loss, const std::vector<Variable> &vars) {
    std::vector<kiln_variable *> vs;
    for (const Variable &v : vars) vs.push_back(v.get());
    auto call = [](kiln_tensor **out, void *user) -> kiln_status * {
      return detail::status_of([&] {
        const Tensor l = (*static_cast<const std::function<Tensor()> *>(user))();
        if (!l.valid())
          throw Error(KILN_STATUS_INVALID_ARGUMENT, "the loss function returned an empty Tensor");
        kiln::detail::check(kiln_tensor_clone(out, l.get()));
      });
    };
    kiln_tensor *out = nullptr;
    kiln::detail::check(kiln_optimizer_minimize(
        &out, get(), call, const_cast<void *>(static_cast<const void *>(&loss)), vs.data(), vs.size()));
    return Tensor(out);
  }
  /// Horovod's DistributedOptimizer on this optimizer: apply_gradients first replaces the
  /// gradients by their "mean" (or "sum") over comm's ranks, packed into fusion buffers of up to
  /// fusion_threshold_bytes. An empty Communicator turns it off.
  /// fit's train step sums them during the backward pass unless overlap is false.
  void set_distributed(const Communicator &comm, const std::string &op = "mean",
                       int64_t fusion_threshold_bytes = int64_t{64} << 20, bool overlap = true) {
    kiln::detail::check(kiln_optimizer_set_distributed(
        get(), comm.get(), kiln::detail::distributed_options(op, fusion_threshold_bytes, overlap).get()));
  }
  /// The communicator set_distributed gave (an empty one when not distributed).
  Communicator distributed() const {
    kiln_communicator *h = nullptr;
    kiln::detail::check(kiln_optimizer_get_distributed(&h, get()));
    return Communicator(h);
  }
  /// apply_gradients over (gradient, variable) pairs.
  void apply_gradients(const std::vector<std::pair<Tensor, Variable>> &grads_and_vars) {
    std::vector<Tensor> gs;
    std::vector<Variable> vs;
    for (const auto &gv : grads_and_vars) {
      gs.push_back(gv.first);
      vs.push_back(gv.second);
    }
    apply_gradients(gs, vs);
  }

  /// Steps taken (with gradient_accumulation_steps, updates: the raw count divided by it).
  int64_t iterations() const {
    int64_t n = 0;
    kiln::detail::check(kiln_optimizer_get_iterations(&n, get()));
    return n;
  }
  /// Keras's scale_loss: loss * loss_scale_factor, or loss when unset (a GradientTape loop
  /// differentiates this; apply_gradients divides the gradients by the factor).
  Tensor scale_loss(const Tensor &loss) const {
    kiln_tensor *out = nullptr;
    kiln::detail::check(kiln_optimizer_scale_loss(&out, get(), loss.get()));
    return Tensor(out);
  }
  /// Keras's finalize_variable_values (fit's last act): with use_ema, the variables take their
  /// moving averages.
  void finalize_variable_values(const std::vector<Variable> &vars) {
    std::vector<kiln_variable *> vs;
    for (const Variable &v : vars) vs.push_back(v.get());
    kiln::detail::check(kiln_optimizer_finalize_variable_values(get(), vs.data(), vs.size()));
  }
  /// The learning rate of the next step (a schedule's value at the raw step count).
  double learning_rate() const {
    double lr = 0;
    kiln::detail::check(kiln_optimizer_get_learning_rate(&lr, get()));
    return lr;
  }
  /// optimizer.learning_rate = lr: a float (the slots are untouched), or a schedule.
  void set_learning_rate(double lr) { kiln::detail::check(kiln_optimizer_set_learning_rate(get(), lr)); }
  void set_learning_rate(const schedules::LearningRateSchedule &s) {
    kiln::detail::check(kiln_optimizer_set_learning_rate_schedule(get(), s.serialize().get()));
  }
  /// A custom schedule (a subclass of Keras's LearningRateSchedule, e.g. the Transformer's warm-up):
  /// each step's learning rate is schedule(step), step the raw step count. get_config (optional)
  /// gives its config when the optimizer is serialized; without it that is UNIMPLEMENTED. A model
  /// compiled with it loads with compile off (kiln_optimizer_set_learning_rate_fn). The functions
  /// run without the optimizer's lock: they may read it (its iterations).
  void set_learning_rate(const std::string &class_name, std::function<double(int64_t step)> schedule,
                         std::function<Config()> get_config = {}) {
    struct Fns {
      std::function<double(int64_t)> call;
      std::function<Config()> config;
    };
    if (!schedule) throw Error(KILN_STATUS_INVALID_ARGUMENT, "set_learning_rate: the schedule function is empty");
    const bool has_config = static_cast<bool>(get_config);
    auto owned = std::make_unique<Fns>(Fns{std::move(schedule), std::move(get_config)});
    kiln_learning_rate_config_fn config_fn = nullptr;
    if (has_config)
      config_fn = [](kiln_config *c, void *ud) -> kiln_status * {
        return kiln::detail::status_of([&] {
          const Config got = static_cast<Fns *>(ud)->config();
          kiln::detail::check(kiln_config_update(c, got.get()));
        });
      };
    kiln::detail::check(kiln_optimizer_set_learning_rate_fn(
        get(), class_name.c_str(),
        [](double *out_lr, int64_t step, void *ud) -> kiln_status * {
          return kiln::detail::status_of([&] { *out_lr = static_cast<Fns *>(ud)->call(step); });
        },
        config_fn, [](void *ud) { delete static_cast<Fns *>(ud); }, owned.get()));
    owned.release();  // the optimizer frees it
  }
  /// iterations, the class's own state (Nadam's u_product), then the slots
  /// (kiln_optimizer_get_variables).
  std::vector<Variable> variables() const {
    return detail::variables_from([this](kiln_variable **out, size_t capacity, size_t *count) {
      return kiln_optimizer_get_variables(out, capacity, count, get());
    });
  }
  /// The slot of var ("momentum", "velocity", ... or "m", "v", "vhat").
  Variable get_slot(const Variable &var, const std::string &slot_name) const {
    kiln_variable *h = nullptr;
    kiln::detail::check(kiln_optimizer_get_slot(&h, get(), var.get(), slot_name.c_str()));
    return Variable(h);
  }
  /// exclude_from_weight_decay(var_list, var_names): before the first step.
  void exclude_from_weight_decay(const std::vector<Variable> &var_list = {},
                                 const std::vector<std::string> &var_names = {}) {
    std::vector<kiln_variable *> vs;
    for (const Variable &v : var_list) vs.push_back(v.get());
    std::vector<const char *> ns;
    for (const std::string &s : var_names) ns.push_back(s.c_str());
    kiln::detail::check(
        kiln_optimizer_exclude_from_weight_decay(get(), vs.data(), vs.size(), ns.data(), ns.size()));
  }

 private:
  Config config_of(kiln_status *(*fn)(kiln_config **, const kiln_optimizer *)) const {
    kiln_config *h = nullptr;
    kiln::detail::check(fn(&h, get()));
    return Config(h);
  }
};

/// The base optimizer's options (Keras's names; unset means Keras's default).
struct OptimizerOptions {
  bool has_weight_decay = false;
  double weight_decay = 0.0;      ///< with has_weight_decay (AdamW: 0.004 when unset)
  double clipnorm = 0.0;          ///< > 0: clip each gradient to this norm
  double clipvalue = 0.0;         ///< > 0: clip each element to [-clipvalue, clipvalue]
  double global_clipnorm = 0.0;   ///< > 0: clip all gradients together to this norm
  std::vector<std::string> exclude_from_weight_decay;  ///< name patterns (var_names)
  std::string name;                                    ///< "": Keras's default ("adam", "adam_1", ...)
  bool use_ema = false;                                ///< keep a moving average of each variable
  double ema_momentum = 0.99;                          ///< with use_ema, in [0, 1]
  int64_t ema_overwrite_frequency = 0;                 ///< > 0: variables take their averages every N steps
  double loss_scale_factor = 0.0;                      ///< != 0: fit differentiates loss * factor
  int64_t gradient_accumulation_steps = 0;             ///< >= 2: update every N steps with the mean gradient
};

namespace detail {
inline Config base_config(const LearningRate &lr, const OptimizerOptions &o) {
  Config c;
  lr.set_in(c);
  if (o.has_weight_decay) c.set("weight_decay", o.weight_decay);
  if (o.clipnorm > 0) c.set("clipnorm", o.clipnorm);
  if (o.clipvalue > 0) c.set("clipvalue", o.clipvalue);
  if (o.global_clipnorm > 0) c.set("global_clipnorm", o.global_clipnorm);
  if (!o.exclude_from_weight_decay.empty()) c.set("exclude_from_weight_decay", o.exclude_from_weight_decay);
  if (!o.name.empty()) c.set("name", o.name);
  if (o.use_ema) c.set("use_ema", true).set("ema_momentum", o.ema_momentum);
  if (o.ema_overwrite_frequency != 0) c.set("ema_overwrite_frequency", o.ema_overwrite_frequency);
  if (o.loss_scale_factor != 0.0) c.set("loss_scale_factor", o.loss_scale_factor);
  if (o.gradient_accumulation_steps != 0) c.set("gradient_accumulation_steps", o.gradient_accumulation_steps);
  return c;
}
}  // namespace detail

struct SGDOptions : OptimizerOptions {
  double momentum = 0.0;
  bool nesterov = false;
};
inline Optimizer SGD(const LearningRate &learning_rate = 0.01, const SGDOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("momentum", o.momentum).set("nesterov", o.nesterov);
  return Optimizer::create("SGD", c);
}

struct AdamOptions : OptimizerOptions {
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
};
namespace detail {
inline Optimizer adam_like(const char *cls, const LearningRate &lr, const AdamOptions &o, bool amsgrad) {
  Config c = base_config(lr, o);
  c.set("beta_1", o.beta_1).set("beta_2", o.beta_2).set("epsilon", o.epsilon);
  if (amsgrad) c.set("amsgrad", o.amsgrad);
  return Optimizer::create(cls, c);
}
}  // namespace detail
inline Optimizer Adam(const LearningRate &learning_rate = 0.001, const AdamOptions &o = {}) {
  return detail::adam_like("Adam", learning_rate, o, true);
}
/// AdamW: Adam with decoupled weight decay, 0.004 unless o.has_weight_decay.
inline Optimizer AdamW(const LearningRate &learning_rate = 0.001, const AdamOptions &o = {}) {
  return detail::adam_like("AdamW", learning_rate, o, true);
}
/// Nadam: Adam's options without amsgrad.
inline Optimizer Nadam(const LearningRate &learning_rate = 0.001, const AdamOptions &o = {}) {
  return detail::adam_like("Nadam", learning_rate, o, false);
}

struct RMSpropOptions : OptimizerOptions {
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
};
inline Optimizer RMSprop(const LearningRate &learning_rate = 0.001, const RMSpropOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("rho", o.rho).set("momentum", o.momentum).set("epsilon", o.epsilon).set("centered", o.centered);
  return Optimizer::create("RMSprop", c);
}

struct AdagradOptions : OptimizerOptions {
  double initial_accumulator_value = 0.1;
  double epsilon = 1e-7;
};
inline Optimizer Adagrad(const LearningRate &learning_rate = 0.001, const AdagradOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("initial_accumulator_value", o.initial_accumulator_value).set("epsilon", o.epsilon);
  return Optimizer::create("Adagrad", c);
}

struct AdadeltaOptions : OptimizerOptions {
  double rho = 0.95;
  double epsilon = 1e-7;
};
inline Optimizer Adadelta(const LearningRate &learning_rate = 0.001, const AdadeltaOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("rho", o.rho).set("epsilon", o.epsilon);
  return Optimizer::create("Adadelta", c);
}

/// Adamax's and Lamb's options (Adam's without amsgrad).
struct AdamaxOptions : OptimizerOptions {
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
};
using LambOptions = AdamaxOptions;
namespace detail {
inline Optimizer betas_and_epsilon(const char *cls, const LearningRate &lr, const AdamaxOptions &o) {
  Config c = base_config(lr, o);
  c.set("beta_1", o.beta_1).set("beta_2", o.beta_2).set("epsilon", o.epsilon);
  return Optimizer::create(cls, c);
}
}  // namespace detail
/// keras.optimizers.Adamax (slots momentum and norm).
inline Optimizer Adamax(const LearningRate &learning_rate = 0.001, const AdamaxOptions &o = {}) {
  return detail::betas_and_epsilon("Adamax", learning_rate, o);
}

struct LionOptions : OptimizerOptions {
  double beta_1 = 0.9;  ///< in (0, 1]
  double beta_2 = 0.99;
};
/// keras.optimizers.Lion: w -= lr * sign(beta_1 m + (1 - beta_1) g); m = beta_2 m + (1 - beta_2) g.
inline Optimizer Lion(const LearningRate &learning_rate = 0.001, const LionOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("beta_1", o.beta_1).set("beta_2", o.beta_2);
  return Optimizer::create("Lion", c);
}

struct FtrlOptions : OptimizerOptions {
  double learning_rate_power = -0.5;  ///< <= 0; 0 keeps the learning rate fixed
  double initial_accumulator_value = 0.1;
  double l1_regularization_strength = 0.0;
  double l2_regularization_strength = 0.0;
  double l2_shrinkage_regularization_strength = 0.0;
  double beta = 0.0;
};
/// keras.optimizers.Ftrl (McMahan et al. 2013; slots accumulator and linear).
inline Optimizer Ftrl(const LearningRate &learning_rate = 0.001, const FtrlOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("learning_rate_power", o.learning_rate_power)
      .set("initial_accumulator_value", o.initial_accumulator_value)
      .set("l1_regularization_strength", o.l1_regularization_strength)
      .set("l2_regularization_strength", o.l2_regularization_strength)
      .set("l2_shrinkage_regularization_strength", o.l2_shrinkage_regularization_strength)
      .set("beta", o.beta);
  return Optimizer::create("Ftrl", c);
}

/// keras.optimizers.Lamb: Adam's direction scaled per variable by |w| / |direction| (slots momentum,
/// velocity).
inline Optimizer Lamb(const LearningRate &learning_rate = 0.001, const LambOptions &o = {}) {
  return detail::betas_and_epsilon("Lamb", learning_rate, o);
}

struct AdafactorOptions : OptimizerOptions {
  double beta_2_decay = -0.8;
  double epsilon_1 = 1e-30;
  double epsilon_2 = 1e-3;
  double clip_threshold = 1.0;
  bool relative_step = true;  ///< with a float learning rate: min(learning_rate, 1 / sqrt(step))
};
/// keras.optimizers.Adafactor (Shazeer and Stern 2018): the second moment of each variable of rank
/// >= 2 factored over its last two axes (slots r, c, velocity; velocity alone for rank < 2).
inline Optimizer Adafactor(const LearningRate &learning_rate = 0.001, const AdafactorOptions &o = {}) {
  Config c = detail::base_config(learning_rate, o);
  c.set("beta_2_decay", o.beta_2_decay)
      .set("epsilon_1", o.epsilon_1)
      .set("epsilon_2", o.epsilon_2)
      .set("clip_threshold", o.clip_threshold)
      .set("relative_step", o.relative_step);
  return Optimizer::create("Adafactor", c);
}

/// keras.optimizers.get: by name ("adam"), with Keras's defaults.
inline Optimizer get(const std::string &identifier) { return Optimizer::create(identifier); }

/// BERT/ALBERT's "AdamWarmup" (TF Model Garden's official.nlp.optimization.create_optimizer):
/// AdamW(beta_1 0.9, beta_2 0.999, epsilon 1e-6, weight_decay 0.01, LayerNorm and bias excluded)
/// with its learning rate PolynomialDecay(init_lr, num_train_steps, end_lr), wrapped in WarmUp
/// (init_lr * step / num_warmup_steps over the warm-up) when num_warmup_steps > 0.
inline Optimizer create_optimizer(double init_lr, int64_t num_train_steps, int64_t num_warmup_steps,
                                  double end_lr = 0.0, double weight_decay = 0.01) {
  schedules::PolynomialDecayOptions decay;
  decay.end_learning_rate = end_lr;
  AdamOptions o;
  o.epsilon = 1e-6;
  o.has_weight_decay = true;
  o.weight_decay = weight_decay;
  o.exclude_from_weight_decay = {"LayerNorm", "layer_norm", "bias"};
  const schedules::LearningRateSchedule poly =
      schedules::PolynomialDecay(init_lr, static_cast<double>(num_train_steps), decay);
  return AdamW(
      num_warmup_steps > 0 ? schedules::WarmUp(init_lr, poly, static_cast<double>(num_warmup_steps)) : poly,
      o);
}

}  // namespace optimizers

// ---- the input pipeline (kiln/data.h) ----

namespace detail {
template <>
struct handle_traits<kiln_dataset> {
  static void destroy(kiln_dataset *h) noexcept { kiln_dataset_free(h); }
  static kiln_status *clone(kiln_dataset **out, const kiln_dataset *h) { return kiln_dataset_clone(out, h); }
};
template <>
struct handle_traits<kiln_iterator> {
  static void destroy(kiln_iterator *h) noexcept { kiln_iterator_free(h); }
  // No clone: an iterator is one pass, owned by one object (move-only).
};
}  // namespace detail

/// tf.data: datasets, iterators and the readers. Errors throw kiln::Error; an exception thrown by
/// a map, filter or generator function comes out of the iteration with its code and message.
///
///   auto ds = kiln::data::Dataset::from_tensor_slices({x, y}).shuffle(1024, 7).batch(64);
///   for (const kiln::data::Element &b : ds) train_step(b[0], b[1]);
namespace data {

/// tf.data.AUTOTUNE (num_parallel_calls, prefetch), and the cardinality markers.
constexpr int64_t AUTOTUNE = KILN_DATASET_AUTOTUNE;
constexpr int64_t INFINITE_CARDINALITY = KILN_DATASET_INFINITE_CARDINALITY;
constexpr int64_t UNKNOWN_CARDINALITY = KILN_DATASET_UNKNOWN_CARDINALITY;

/// An element: its components in order (one tensor, a tuple, or a dict's values in names() order).
using Element = std::vector<Tensor>;
/// A map function. With num_parallel_calls > 1 it runs on worker threads, several at once.
using MapFn = std::function<Element(const Element &)>;
using PredicateFn = std::function<bool(const Element &)>;
/// One pass of a generator: writes the next element and returns true, or returns false at the end.
using NextFn = std::function<bool(Element &)>;
/// Called for every pass (tf's from_generator calls its generator anew): returns the pass's NextFn.
using GeneratorFn = std::function<NextFn()>;

namespace detail {
inline Element from_borrowed(const kiln_tensor_list *list) { return kiln::detail::from_list(list); }
// Appends an element's tensors to a C list the callback fills.
inline void append_all(kiln_tensor_list *out, const Element &e) {
  for (const Tensor &t : e) kiln::detail::check(kiln_tensor_list_append(out, t.get()));
}
template <typename F>
void destroy_fn(void *p) {
  delete static_cast<F *>(p);
}
}  // namespace detail

/// One pass over a dataset (iter(ds)); move-only. next() gives false at the end.
class Iterator : public kiln::detail::handle<kiln_iterator> {
 public:
  Iterator() = default;
  explicit Iterator(kiln_iterator *h) noexcept : handle(h) {}
  /// The next element into out; false (and out left alone) at the end.
  bool next(Element &out) {
    kiln_tensor_list *list = nullptr;
    bool end = false;
    kiln::detail::check(kiln_iterator_next(&list, &end, get()));
    if (end) return false;
    kiln::detail::handle<kiln_tensor_list> owned(list);
    out = kiln::detail::from_list(list);
    return true;
  }
};

/// CSV reading options (kiln_csv_options): header line, delimiter, one type per column (empty:
/// every column auto), and whether text columns are skipped (else an error).
struct CsvOptions {
  bool header = true;
  char delimiter = ',';
  std::vector<kiln_csv_type> column_types;
  bool skip_text_columns = false;
};

/// tf.data.Dataset: an immutable description of a sequence of elements. Copies are handles to
/// the same dataset; every transformation returns a new one.
class Dataset : public kiln::detail::handle<kiln_dataset> {
 public:
  Dataset() = default;
  explicit Dataset(kiln_dataset *h) noexcept : handle(h) {}

  /// One element per row of dim 0; names (optional) make dict elements.
  static Dataset from_tensor_slices(const std::vector<Tensor> &components, const std::vector<std::string> &names = {}) {
    return from_components(kiln_dataset_from_tensor_slices, components, names);
  }
  /// The components as one element.
  static Dataset from_tensors(const std::vector<Tensor> &components, const std::vector<std::string> &names = {}) {
    return from_components(kiln_dataset_from_tensors, components, names);
  }
  /// int64 scalars 0 .. stop-1, or start, start+step, ... before stop.
  static Dataset range(int64_t stop) { return range(0, stop, 1); }
  static Dataset range(int64_t start, int64_t stop, int64_t step = 1) {
    return make([&](kiln_dataset **o) { return kiln_dataset_range(o, start, stop, step); });
  }
  /// Elements from C++ code: generator() starts each pass (it runs on the thread that pulls from
  /// the dataset, as kiln_generator_callbacks says).
  static Dataset from_generator(GeneratorFn generator) {
    kiln_generator_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.start = [](void **state, void *ud) -> kiln_status * {
      return kiln::detail::status_of([&] { *state = new NextFn((*static_cast<GeneratorFn *>(ud))()); });
    };
    cb.next = [](kiln_tensor_list *out, bool *end, void *state, void *) -> kiln_status * {
      return kiln::detail::status_of([&] {
        Element e;
        *end = !(*static_cast<NextFn *>(state))(e);
        if (!*end) detail::append_all(out, e);
      });
    };
    cb.finish = [](void *state, void *) { delete static_cast<NextFn *>(state); };
    cb.destroy = detail::destroy_fn<GeneratorFn>;
    return adopt_callbacks<GeneratorFn>(std::move(generator), [&](kiln_dataset **o, void *ud) {
      return kiln_dataset_from_generator(o, &cb, ud);
    });
  }
  /// Elements of the datasets side by side, components one after the other.
  static Dataset zip(const std::vector<Dataset> &datasets) {
    std::vector<const kiln_dataset *> hs;
    for (const Dataset &d : datasets) hs.push_back(d.get());
    return make([&](kiln_dataset **o) { return kiln_dataset_zip(o, hs.data(), hs.size()); });
  }
  /// make_csv_dataset's simple form: one dict element per record.
  static Dataset from_csv(const std::string &path, const CsvOptions &options = {}) {
    kiln_csv_options o;
    kiln::detail::check(kiln_csv_options_init(&o, sizeof o));
    o.header = options.header;
    o.delimiter = options.delimiter;
    o.column_types = options.column_types.data();
    o.num_column_types = options.column_types.size();
    o.skip_text_columns = options.skip_text_columns;
    return make([&](kiln_dataset **out) { return kiln_dataset_from_csv(out, path.c_str(), &o); });
  }

  /// seed < 0: the next value of the global seed sequence.
  Dataset shuffle(int64_t buffer_size, int64_t seed = -1, bool reshuffle_each_iteration = true) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_shuffle(o, get(), buffer_size, seed, reshuffle_each_iteration); });
  }
  Dataset batch(int64_t batch_size, bool drop_remainder = false) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_batch(o, get(), batch_size, drop_remainder); });
  }
  /// padded_shapes: one per component (-1 dims, or {}, pad to the batch's longest), or none at
  /// all; padding_values: one scalar per component, or none for zeros.
  Dataset padded_batch(int64_t batch_size, const std::vector<Dims> &padded_shapes = {},
                       const std::vector<Tensor> &padding_values = {}, bool drop_remainder = false) const {
    Dims dims;
    std::vector<size_t> ranks;
    for (const Dims &s : padded_shapes) {
      dims.insert(dims.end(), s.begin(), s.end());
      ranks.push_back(s.size());
    }
    auto pads = kiln::detail::to_list(padding_values);
    return make([&](kiln_dataset **o) {
      return kiln_dataset_padded_batch(o, get(), batch_size, dims.data(), ranks.data(), ranks.size(),
                                       padding_values.empty() ? nullptr : pads.get(), drop_remainder);
    });
  }
  /// num_parallel_calls > 1 or AUTOTUNE: fn runs on worker threads, several at once (it must be
  /// thread-safe); the output order stays the input's.
  Dataset map(MapFn fn, int64_t num_parallel_calls = 0) const {
    kiln_map_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.map = [](kiln_tensor_list *out, const kiln_tensor_list *in, void *ud) -> kiln_status * {
      return kiln::detail::status_of(
          [&] { detail::append_all(out, (*static_cast<MapFn *>(ud))(detail::from_borrowed(in))); });
    };
    cb.destroy = detail::destroy_fn<MapFn>;
    return adopt_callbacks<MapFn>(std::move(fn), [&](kiln_dataset **o, void *ud) {
      return kiln_dataset_map(o, get(), num_parallel_calls, &cb, ud);
    });
  }
  Dataset filter(PredicateFn predicate) const {
    kiln_predicate_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.predicate = [](bool *keep, const kiln_tensor_list *in, void *ud) -> kiln_status * {
      return kiln::detail::status_of([&] { *keep = (*static_cast<PredicateFn *>(ud))(detail::from_borrowed(in)); });
    };
    cb.destroy = detail::destroy_fn<PredicateFn>;
    return adopt_callbacks<PredicateFn>(std::move(predicate), [&](kiln_dataset **o, void *ud) {
      return kiln_dataset_filter(o, get(), &cb, ud);
    });
  }
  Dataset repeat(int64_t count = -1) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_repeat(o, get(), count); });
  }
  Dataset take(int64_t count) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_take(o, get(), count); });
  }
  Dataset skip(int64_t count) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_skip(o, get(), count); });
  }
  /// tf's shard(num_shards, index): a data-parallel rank's share is shard(size, rank).
  Dataset shard(int64_t num_shards, int64_t index) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_shard(o, get(), num_shards, index); });
  }
  Dataset concatenate(const Dataset &other) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_concatenate(o, get(), other.get()); });
  }
  Dataset cache() const {
    return make([&](kiln_dataset **o) { return kiln_dataset_cache(o, get()); });
  }
  Dataset prefetch(int64_t buffer_size = AUTOTUNE) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_prefetch(o, get(), buffer_size); });
  }
  Dataset unbatch() const {
    return make([&](kiln_dataset **o) { return kiln_dataset_unbatch(o, get()); });
  }
  /// (int64 index, components...).
  Dataset enumerate(int64_t start = 0) const {
    return make([&](kiln_dataset **o) { return kiln_dataset_enumerate(o, get(), start); });
  }

  /// The number of elements, INFINITE_CARDINALITY or UNKNOWN_CARDINALITY.
  int64_t cardinality() const {
    int64_t n = 0;
    kiln::detail::check(kiln_dataset_get_cardinality(&n, get()));
    return n;
  }
  /// The dict keys of the elements; empty for tuples.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (size_t i = 0, n = kiln_dataset_get_num_names(get()); i < n; ++i) out.emplace_back(kiln_dataset_get_name(get(), i));
    return out;
  }
  /// A new pass (iter(ds)).
  Iterator make_iterator() const {
    kiln_iterator *it = nullptr;
    kiln::detail::check(kiln_dataset_make_iterator(&it, get()));
    return Iterator(it);
  }

  /// Range-for support: `for (const Element &e : ds)` runs one pass.
  class iterator {
   public:
    using value_type = Element;
    using difference_type = std::ptrdiff_t;
    using reference = const Element &;
    using pointer = const Element *;
    using iterator_category = std::input_iterator_tag;
    iterator() = default;
    explicit iterator(Iterator it) : state_(std::make_shared<State>()) {
      state_->it = std::move(it);
      ++*this;
    }
    reference operator*() const { return state_->current; }
    pointer operator->() const { return &state_->current; }
    iterator &operator++() {
      if (!state_->it.next(state_->current)) state_.reset();
      return *this;
    }
    bool operator==(const iterator &o) const { return state_ == o.state_; }
    bool operator!=(const iterator &o) const { return state_ != o.state_; }

   private:
    struct State {
      Iterator it;
      Element current;
    };
    std::shared_ptr<State> state_;  // null at the end
  };
  iterator begin() const { return iterator(make_iterator()); }
  iterator end() const { return iterator(); }

 private:
  template <typename F>
  static Dataset make(F &&f) {
    kiln_dataset *out = nullptr;
    kiln::detail::check(f(&out));
    return Dataset(out);
  }
  static Dataset from_components(kiln_status *(*fn)(kiln_dataset **, const kiln_tensor_list *, const char *const *),
                                 const std::vector<Tensor> &components, const std::vector<std::string> &names) {
    auto list = kiln::detail::to_list(components);
    std::vector<const char *> ns;
    for (const std::string &n : names) ns.push_back(n.c_str());
    return make([&](kiln_dataset **o) { return fn(o, list.get(), names.empty() ? nullptr : ns.data()); });
  }
  // Hands a heap copy of a function to a C constructor as user_data; kiln frees it through the
  // table's destroy once the call succeeds, this on failure.
  template <typename Fn, typename F>
  static Dataset adopt_callbacks(Fn fn, F &&create) {
    auto owned = std::make_unique<Fn>(std::move(fn));
    kiln_dataset *out = nullptr;
    kiln::detail::check(create(&out, owned.get()));
    owned.release();
    return Dataset(out);
  }
};

/// An IDX (MNIST-format) file, gzip or plain, as a tensor.
inline Tensor read_idx(const std::string &path) {
  return kiln::detail::make(kiln_read_idx, path.c_str());
}

/// keras.datasets.fashion_mnist.load_data(): ((x_train, y_train), (x_test, y_test)), uint8.
struct FashionMnist {
  Tensor x_train, y_train, x_test, y_test;
};
/// dir "": Debian's /usr/share/datasets/fashion-mnist.
inline FashionMnist load_fashion_mnist(const std::string &dir = "") {
  kiln_tensor *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
  kiln::detail::check(kiln_load_fashion_mnist(&a, &b, &c, &d, dir.empty() ? nullptr : dir.c_str()));
  return FashionMnist{Tensor(a), Tensor(b), Tensor(c), Tensor(d)};
}

/// The CSV file's numeric columns as whole 1-D tensors (read_csv), with their names.
struct CsvColumns {
  std::vector<std::string> names;
  std::vector<Tensor> columns;
};
inline CsvColumns read_csv(const std::string &path, const CsvOptions &options = {}) {
  Dataset rows = Dataset::from_csv(path, options);
  const int64_t n = rows.cardinality();
  CsvColumns out{rows.names(), {}};
  if (n > 0) rows.batch(n).make_iterator().next(out.columns);
  return out;
}

}  // namespace data

// ---------------------------------------------------------------------------------------------
// Callbacks (kiln/callbacks.h)

namespace detail {
template <>
struct handle_traits<kiln_callback> {
  static void destroy(kiln_callback *h) noexcept { kiln_callback_free(h); }
  static kiln_status *clone(kiln_callback **out, const kiln_callback *h) { return kiln_callback_clone(out, h); }
};
}  // namespace detail

/// Keras's logs: log names to floats in the order fit wrote them ("loss", "accuracy", "val_loss").
/// A hook with nothing to log gets empty ones (and so does one called with C's NULL);
/// Callback::set_log changes a hook's logs.
class Logs {
 public:
  Logs() = default;
  /// From a config of name -> number (a borrowed handle; NULL gives empty logs).
  static Logs from_c(const kiln_config *c) {
    Logs l;
    if (!c) return l;
    detail::BorrowedConfig b(c);
    for (const std::string &k : b.c.keys()) l.set(k, b.c.get_float(k));
    return l;
  }
  Config to_config() const {
    Config c;
    for (const auto &kv : items_) c.set(kv.first, kv.second);
    return c;
  }
  const std::vector<std::pair<std::string, double>> &items() const noexcept { return items_; }
  bool empty() const noexcept { return items_.empty(); }
  bool contains(const std::string &name) const noexcept { return find(name) != nullptr; }
  /// The value of name, or def when the logs have none.
  double get(const std::string &name, double def) const noexcept {
    const double *v = find(name);
    return v ? *v : def;
  }
  /// The value of name; NOT_FOUND when the logs have none.
  double at(const std::string &name) const {
    const double *v = find(name);
    if (!v) throw Error(KILN_STATUS_NOT_FOUND, "logs: no value named '" + name + "'");
    return *v;
  }
  /// Replaces the value of name, or appends it.
  Logs &set(const std::string &name, double value) {
    for (auto &kv : items_)
      if (kv.first == name) {
        kv.second = value;
        return *this;
      }
    items_.emplace_back(name, value);
    return *this;
  }
  /// Removes name (nothing when the logs have none).
  Logs &erase(const std::string &name) {
    for (auto it = items_.begin(); it != items_.end(); ++it)
      if (it->first == name) {
        items_.erase(it);
        break;
      }
    return *this;
  }

 private:
  const double *find(const std::string &name) const noexcept {
    for (const auto &kv : items_)
      if (kv.first == name) return &kv.second;
    return nullptr;
  }
  std::vector<std::pair<std::string, double>> items_;
};

/// A Keras callback for fit, evaluate and predict (kiln/callbacks.h): a handle to a built-in
/// callback (copies share one callback), and the base class of custom callbacks.
///
/// A custom callback subclasses Callback, passes its class name to the constructor and overrides
/// the hooks it needs (Keras's Callback subclassing); model() is the model being trained:
///
///     struct StopAtLoss : kiln::Callback {
///       StopAtLoss() : Callback("StopAtLoss") {}
///       void on_epoch_end(int64_t epoch, const kiln::Logs &logs) override {
///         if (logs.get("loss", 1e9) < 0.1) model().set_stop_training(true);  // Model's training API
///         set_log("best_so_far", best_ = std::min(best_, logs.get("loss", 1e9)));  // logs["..."] = v
///       }
///       double best_ = 1e9;
///     };
///
/// Hooks run on the thread calling fit, one at a time; an exception from a hook stops fit, which
/// throws it again (its code; the message names the class and the hook). Keep the object alive
/// while fit runs: fit calls back into it (a hook arriving after it is destroyed is an error).
class Callback : public detail::handle<kiln_callback> {
 public:
  Callback() = default;
  /// Takes ownership of a C handle.
  explicit Callback(kiln_callback *h) noexcept : handle(h) {}
  /// Copies and assignment as Layer's.
  Callback(const Callback &o) : handle(o), link_(nullptr), model_(o.model_) {}
  Callback &operator=(const Callback &o) {
    handle::operator=(o);
    model_ = o.model_;
    return *this;
  }
  Callback(Callback &&o) noexcept
      : handle(std::move(o)), link_(std::exchange(o.link_, nullptr)), model_(std::move(o.model_)) {
    if (link_) link_->self = this;
  }
  Callback &operator=(Callback &&o) noexcept {
    if (this != &o)
      detail::move_assign_linked(*this, o, &Callback::link_, [&] {
        handle::operator=(std::move(o));
        model_ = std::move(o.model_);
      });
    return *this;
  }
  virtual ~Callback() {
    if (link_) link_->self = nullptr;  // hooks arriving after this report the object gone
  }

  /// A built-in callback by class name ("History", "EarlyStopping", ...).
  static Callback create(const std::string &class_name, const Config &config = Config()) {
    kiln_callback *h = nullptr;
    detail::check(kiln_callback_create(&h, class_name.c_str(), config.get()));
    return Callback(h);
  }
  std::string class_name() const {
    return detail::handle_string(kiln_callback_get_class_name(get()), "kiln::Callback::class_name");
  }

  /// Keras's callback.set_model (fit does it itself).
  void set_model(const Layer &model) { detail::check(kiln_callback_set_model(get(), model.get())); }
  /// Keras's callback.params: {"verbose", "epochs", "steps"} as fit set them.
  Config params() const { return config_of(kiln_callback_get_params); }
  /// A built-in's state, as Keras's attributes: EarlyStopping's {"wait", "stopped_epoch",
  /// "best_epoch", "best"}, ReduceLROnPlateau's {"wait", "cooldown_counter", "best"},
  /// ModelCheckpoint's {"best", "epochs_since_last_save", "last_saved_filepath"},
  /// BackupAndRestore's {"resumed_epoch"}.
  Config attributes() const { return config_of(kiln_callback_get_attributes); }
  /// Runs a hook by its Keras name, as calling callback.on_epoch_end(epoch, logs) in Keras:
  /// returns the logs as the hook left them.
  Logs call_hook(const std::string &hook, int64_t index = 0, const Logs &logs = Logs()) {
    Config c = logs.to_config();
    detail::check(kiln_callback_call_hook(get(), hook.c_str(), index, c.get()));
    return Logs::from_c(c.get());
  }

  /// Hooks for subclasses (Keras's names; epoch and batch count from 0).
  virtual void on_train_begin(const Logs &) {}
  virtual void on_train_end(const Logs &) {}
  virtual void on_epoch_begin(int64_t /*epoch*/, const Logs &) {}
  virtual void on_epoch_end(int64_t /*epoch*/, const Logs &) {}
  virtual void on_train_batch_begin(int64_t /*batch*/, const Logs &) {}
  virtual void on_train_batch_end(int64_t /*batch*/, const Logs &) {}
  virtual void on_test_begin(const Logs &) {}
  virtual void on_test_end(const Logs &) {}
  virtual void on_test_batch_begin(int64_t /*batch*/, const Logs &) {}
  virtual void on_test_batch_end(int64_t /*batch*/, const Logs &) {}
  virtual void on_predict_begin(const Logs &) {}
  virtual void on_predict_end(const Logs &) {}
  virtual void on_predict_batch_begin(int64_t /*batch*/, const Logs &) {}
  virtual void on_predict_batch_end(int64_t /*batch*/, const Logs &) {}

 protected:
  /// For subclasses: a custom callback of class class_name.
  explicit Callback(const std::string &class_name) { init_custom(class_name); }
  /// Keras's self.model: the model fit runs (a handle sharing it), set before each hook; an
  /// empty handle (valid() false) before the first hook that had one.
  Model &model() { return model_; }
  /// Keras's logs[name] = value and del logs[name] inside a hook: the hook's logs argument shows
  /// the change, and so do the callbacks after this one, History and the progress bar (not the
  /// trainer's own logs: evaluate's result stays). value may be NaN or infinite.
  /// FAILED_PRECONDITION outside a hook, or in a hook run through kiln_callback_call_hook with
  /// NULL logs (fit, evaluate and predict hand every hook logs, empty when there is nothing to
  /// log, as Keras does).
  void set_log(const std::string &name, double value) { hook_logs("set_log", name).set(name, value); }
  void erase_log(const std::string &name) { hook_logs("erase_log", name).erase(name); }

 private:
  // What C's user_data points to: the C++ object while it lives. C owns it (destroy frees it).
  struct Link {
    std::atomic<Callback *> self;
  };
  static void on_destroy(void *p) {
    Link *link = static_cast<Link *>(p);
    if (Callback *self = link->self) self->link_ = nullptr;  // the object may outlive its callback
    delete link;
  }
  Config config_of(kiln_status *(*fn)(kiln_config **, const kiln_callback *)) const {
    kiln_config *c = nullptr;
    detail::check(fn(&c, get()));
    return Config(c);
  }

  void init_custom(const std::string &class_name) {
    kiln_callback_table t{};
    t.struct_size = sizeof t;
    t.on_train_begin = &plain<&Callback::on_train_begin>;
    t.on_train_end = &plain<&Callback::on_train_end>;
    t.on_epoch_begin = &indexed<&Callback::on_epoch_begin>;
    t.on_epoch_end = &indexed<&Callback::on_epoch_end>;
    t.on_train_batch_begin = &indexed<&Callback::on_train_batch_begin>;
    t.on_train_batch_end = &indexed<&Callback::on_train_batch_end>;
    t.on_test_begin = &plain<&Callback::on_test_begin>;
    t.on_test_end = &plain<&Callback::on_test_end>;
    t.on_test_batch_begin = &indexed<&Callback::on_test_batch_begin>;
    t.on_test_batch_end = &indexed<&Callback::on_test_batch_end>;
    t.on_predict_begin = &plain<&Callback::on_predict_begin>;
    t.on_predict_end = &plain<&Callback::on_predict_end>;
    t.on_predict_batch_begin = &indexed<&Callback::on_predict_batch_begin>;
    t.on_predict_batch_end = &indexed<&Callback::on_predict_batch_end>;
    t.destroy = &Callback::on_destroy;
    Link *link = new Link{this};
    kiln_callback *h = nullptr;
    kiln_status *st = kiln_callback_create_custom(&h, class_name.c_str(), &t, link);
    if (st) delete link;  // not handed over on failure
    detail::check(st);
    static_cast<handle &>(*this) = handle(h);
    link_ = link;
  }

  // Runs fn on the C++ object behind user_data with model() set, turning exceptions into statuses.
  template <typename F>
  static kiln_status *guarded(void *user_data, kiln_layer *model, F &&fn) {
    Callback *self = static_cast<Link *>(user_data)->self;
    if (!self)
      return kiln_status_create(KILN_STATUS_FAILED_PRECONDITION,
                                "the C++ object of this callback was destroyed while fit still used it");
    return detail::status_of([&] {
      if (model && (!self->model_.valid() || self->model_.id() != kiln_layer_get_id(model))) {
        kiln_layer *h = nullptr;
        detail::check(kiln_layer_clone(&h, model));
        self->model_ = Model(h);
      }
      fn(*self);
    });
  }
  Logs &hook_logs(const char *what, const std::string &name) {
    if (!hook_logs_)
      throw Error(KILN_STATUS_FAILED_PRECONDITION,
                  std::string(what) +
                      ": only inside a hook that was given logs (this one was called with NULL logs)");
    hook_touched_.push_back(name);
    return *hook_logs_;
  }
  // Runs a hook on logs read from C; the entries set_log/erase_log touched go back into the C
  // config (the trampoline's own for this call, so it may be written), which C passes on.
  template <typename F>
  static kiln_status *with_logs(void *user_data, kiln_layer *model, const kiln_config *logs, F &&hook) {
    return guarded(user_data, model, [&](Callback &self) {
      Logs l = Logs::from_c(logs);
      struct Scope {  // restores the enclosing hook's logs (a hook may run fit or evaluate)
        Callback &s;
        Logs *logs;
        std::vector<std::string> touched;
        ~Scope() {
          s.hook_logs_ = logs;
          s.hook_touched_ = std::move(touched);
        }
      } scope{self, self.hook_logs_, std::move(self.hook_touched_)};
      self.hook_logs_ = logs ? &l : nullptr;
      self.hook_touched_.clear();
      hook(self, l);
      if (!logs) return;
      detail::BorrowedConfig b(logs);
      for (const std::string &k : self.hook_touched_) {
        if (!l.contains(k)) {
          if (b.c.has(k)) b.c.remove(k);
        } else if (std::isfinite(l.at(k))) {
          b.c.set(k, l.at(k));
        } else {  // a setting must be finite; JSON text carries NaN and infinities into a log
          Config one;
          one.set(k, 0.0);
          std::string text = one.to_json();
          const double v = l.at(k);
          text = text.substr(0, text.rfind(':') + 1) +
                 (v != v  ? "NaN"
                  : v > 0 ? "Infinity"
                          : "-Infinity") +
                 "}";
          b.c.update(Config::from_json(text));
        }
      }
    });
  }
  template <void (Callback::*Hook)(const Logs &)>
  static kiln_status *plain(kiln_layer *model, const kiln_config *logs, void *user_data) {
    return with_logs(user_data, model, logs, [](Callback &self, const Logs &l) { (self.*Hook)(l); });
  }
  template <void (Callback::*Hook)(int64_t, const Logs &)>
  static kiln_status *indexed(kiln_layer *model, int64_t i, const kiln_config *logs, void *user_data) {
    return with_logs(user_data, model, logs, [i](Callback &self, const Logs &l) { (self.*Hook)(i, l); });
  }

  Link *link_ = nullptr;
  Model model_;
  Logs *hook_logs_ = nullptr;              // the running hook's logs (set_log, erase_log)
  std::vector<std::string> hook_touched_;  // the names they set or erased
};

/// keras.callbacks.History: what fit returns. history() maps each log name ("loss",
/// "val_accuracy", ...) to its per-epoch values; keys() gives the names in the order first seen.
class History : public Callback {
 public:
  /// A new History (fit adds one itself; pass your own to keep a handle to it).
  History() : Callback(create("History")) {}
  /// Takes ownership of a C handle (FAILED_PRECONDITION on reads if it is not a History).
  explicit History(kiln_callback *h) noexcept : Callback(h) {}
  /// Keras's history.history.
  std::map<std::string, std::vector<double>> history() const {
    Config r = record();
    Config values = r.get_config("history");
    std::map<std::string, std::vector<double>> out;
    for (const std::string &k : r.get_string_list("keys")) out[k] = values.get_float_list(k);
    return out;
  }
  /// The log names in the order first seen (Keras's history.history.keys()).
  std::vector<std::string> keys() const { return record().get_string_list("keys"); }
  /// Keras's history.epoch: the epochs recorded (counted from 0).
  std::vector<int64_t> epoch() const { return record().get_int_list("epoch"); }
  /// Everything at once: {"epoch": [...], "keys": [...], "history": {name: [...]}}.
  Config record() const {
    kiln_config *c = nullptr;
    detail::check(kiln_callback_get_history(&c, get()));
    return Config(c);
  }
};

/// The built-in Keras callbacks (keras.callbacks.*) with Keras's arguments and defaults.
namespace callbacks {

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int64_t patience = 0;
  int verbose = 0;
  std::string mode = "auto";  ///< "auto", "min" or "max"
  bool has_baseline = false;  ///< false: Keras's baseline=None
  double baseline = 0.0;
  bool restore_best_weights = false;
  int64_t start_from_epoch = 0;
};
/// keras.callbacks.EarlyStopping: stops fit when monitor stops improving; with
/// restore_best_weights the model gets the best epoch's weights back at train end.
inline Callback EarlyStopping(const EarlyStoppingOptions &o = {}) {
  Config c;
  c.set("monitor", o.monitor).set("min_delta", o.min_delta).set("patience", o.patience);
  c.set("verbose", static_cast<int64_t>(o.verbose)).set("mode", o.mode);
  if (o.has_baseline) c.set("baseline", o.baseline);
  c.set("restore_best_weights", o.restore_best_weights).set("start_from_epoch", o.start_from_epoch);
  return Callback::create("EarlyStopping", c);
}

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int64_t patience = 10;
  int verbose = 0;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int64_t cooldown = 0;
  double min_lr = 0.0;
};
/// keras.callbacks.ReduceLROnPlateau: the learning rate times factor after patience epochs
/// without improvement (an optimizer with a schedule object is FAILED_PRECONDITION).
inline Callback ReduceLROnPlateau(const ReduceLROnPlateauOptions &o = {}) {
  Config c;
  c.set("monitor", o.monitor).set("factor", o.factor).set("patience", o.patience);
  c.set("verbose", static_cast<int64_t>(o.verbose)).set("mode", o.mode).set("min_delta", o.min_delta);
  c.set("cooldown", o.cooldown).set("min_lr", o.min_lr);
  return Callback::create("ReduceLROnPlateau", c);
}

/// keras.callbacks.LearningRateScheduler: at each epoch begin the learning rate becomes
/// schedule(epoch, current learning rate). schedule runs on the fit thread; an exception from it
/// stops fit.
inline Callback LearningRateScheduler(std::function<double(int64_t epoch, double lr)> schedule, int verbose = 0) {
  using Fn = std::function<double(int64_t, double)>;
  if (!schedule) throw Error(KILN_STATUS_INVALID_ARGUMENT, "LearningRateScheduler: the schedule function is empty");
  auto owned = std::make_unique<Fn>(std::move(schedule));
  kiln_callback *h = nullptr;
  detail::check(kiln_callback_create_lr_scheduler(
      &h, verbose,
      [](double *out_lr, int64_t epoch, double lr, void *ud) -> kiln_status * {
        return detail::status_of([&] { *out_lr = (*static_cast<Fn *>(ud))(epoch, lr); });
      },
      [](void *ud) { delete static_cast<Fn *>(ud); }, owned.get()));
  owned.release();  // the callback frees it
  return Callback(h);
}

/// keras.callbacks.CSVLogger: one row per epoch, as Keras writes it.
inline Callback CSVLogger(const std::string &filename, const std::string &separator = ",", bool append = false) {
  Config c;
  c.set("filename", filename).set("separator", separator).set("append", append);
  return Callback::create("CSVLogger", c);
}

/// keras.callbacks.TerminateOnNaN: stops training after a batch whose loss is NaN or infinite
/// (with raise_error, fit fails instead).
inline Callback TerminateOnNaN(bool raise_error = false) {
  Config c;
  c.set("raise_error", raise_error);
  return Callback::create("TerminateOnNaN", c);
}

/// keras.callbacks.SwapEMAWeights: with an optimizer made with use_ema, evaluate and predict run
/// on the weights' moving averages; with swap_on_epoch also from each epoch's end to the next's begin.
inline Callback SwapEMAWeights(bool swap_on_epoch = false) {
  Config c;
  c.set("swap_on_epoch", swap_on_epoch);
  return Callback::create("SwapEMAWeights", c);
}

/// keras.callbacks.ProgbarLogger: fit adds one itself when verbose is not 0.
inline Callback ProgbarLogger() { return Callback::create("ProgbarLogger"); }

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  int verbose = 0;
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";  ///< "auto", "min" or "max"
  int64_t save_freq = 0;      ///< 0: every epoch (Keras's "epoch"); N > 0: every N training batches
  bool has_initial_value_threshold = false;  ///< false: Keras's initial_value_threshold=None
  double initial_value_threshold = 0.0;
};
/// keras.callbacks.ModelCheckpoint (tf.keras 2): after each epoch (or every save_freq batches,
/// counted across epochs) saves the model to filepath, formatted as Python's str.format with epoch
/// (from 1), batch (per-batch saves) and the logs: "ckpt/weights.{epoch:02d}-{val_loss:.2f}": the
/// SavedModel directory (model.save), or with save_weights_only a TF-format checkpoint of the
/// weights and the optimizer (save_weights). A name the logs lack fails fit with INVALID_ARGUMENT.
/// save_best_only saves only when monitor improves.
inline Callback ModelCheckpoint(const std::string &filepath, const ModelCheckpointOptions &o = {}) {
  Config c;
  c.set("filepath", filepath).set("monitor", o.monitor).set("verbose", static_cast<int64_t>(o.verbose));
  c.set("save_best_only", o.save_best_only).set("save_weights_only", o.save_weights_only).set("mode", o.mode);
  if (o.save_freq == 0) {
    c.set("save_freq", std::string("epoch"));
  } else {
    c.set("save_freq", o.save_freq);
  }
  if (o.has_initial_value_threshold) c.set("initial_value_threshold", o.initial_value_threshold);
  return Callback::create("ModelCheckpoint", c);
}

struct BackupAndRestoreOptions {
  int64_t save_freq = 0;  ///< 0: every epoch (Keras's "epoch"); N > 0: every N training batches; -1: never
  bool delete_checkpoint = true;  ///< delete the backup when fit completes
};
/// keras.callbacks.BackupAndRestore (tf.keras 2's layout in backup_dir/chief): fit backs up the
/// model, its optimizer and the epoch; a later fit with a backup there (a fresh process, a fresh
/// model) restores them and continues after the saved epoch. The model must be built before fit.
inline Callback BackupAndRestore(const std::string &backup_dir, const BackupAndRestoreOptions &o = {}) {
  Config c;
  c.set("backup_dir", backup_dir).set("delete_checkpoint", o.delete_checkpoint);
  if (o.save_freq == 0) {
    c.set("save_freq", std::string("epoch"));
  } else if (o.save_freq == -1) {
    c.set("save_freq", false);
  } else {
    c.set("save_freq", o.save_freq);
  }
  return Callback::create("BackupAndRestore", c);
}

struct TensorBoardOptions {
  int64_t histogram_freq = 0;  ///< epochs between weight histograms (0: none)
  bool write_graph = true;     ///< the model's Keras JSON config ("keras", step 0): TensorBoard's graph
  bool write_images = false;   ///< with histogram_freq, each weight as an image too
  bool write_steps_per_second = false;
  int64_t update_freq = 0;    ///< 0: every epoch (Keras's "epoch"); N > 0: batch_* every N training batches
  int64_t profile_batch = 0;  ///< the first training batch traced (counted from 1; 0: no trace)
  int64_t profile_batch_stop = 0;  ///< the last one (0: profile_batch alone)
};
/// keras.callbacks.TensorBoard: event files for `tensorboard --logdir log_dir` in log_dir/train and
/// log_dir/validation, with tf.keras's tags: epoch_<name> (step = epoch) of each log (val_<name> in
/// validation), epoch_learning_rate, the model's graph, with histogram_freq the weights'
/// histograms "<layer>/<weight>_0/histogram" (and images), with update_freq N batch_<name> every N
/// batches, evaluation_<name>_vs_iterations at the optimizer's iterations after each validation,
/// and with profile_batch the op timings of those batches. The embedding projector
/// (embeddings_freq) is not supported.
inline Callback TensorBoard(const std::string &log_dir = "logs", const TensorBoardOptions &o = {}) {
  Config c;
  c.set("log_dir", log_dir).set("histogram_freq", o.histogram_freq).set("write_graph", o.write_graph);
  c.set("write_images", o.write_images).set("write_steps_per_second", o.write_steps_per_second);
  if (o.update_freq == 0) {
    c.set("update_freq", std::string("epoch"));
  } else {
    c.set("update_freq", o.update_freq);
  }
  if (o.profile_batch_stop == 0) {
    c.set("profile_batch", o.profile_batch);
  } else {
    c.set("profile_batch", std::vector<int64_t>{o.profile_batch, o.profile_batch_stop});
  }
  return Callback::create("TensorBoard", c);
}

/// TensorBoard's hp.KerasCallback(log_dir, hparams, trial_id): the hparams plugin's session start
/// (hparams: name -> number, bool or string) when fit begins and its end ("success", or "failure"
/// when the last loss is not finite or fit failed) in an event file in log_dir, the run's
/// directory. trial_id empty: a digest of the values names the session group.
inline Callback HParams(const std::string &log_dir, const Config &hparams, const std::string &trial_id = "") {
  Config c;
  c.set("log_dir", log_dir).set("hparams", hparams);
  if (!trial_id.empty()) c.set("trial_id", trial_id);
  return Callback::create("HParams", c);
}

/// keras.callbacks.LambdaCallback's functions (any may be empty).
struct LambdaHooks {
  std::function<void(int64_t epoch, const Logs &logs)> on_epoch_begin, on_epoch_end;
  std::function<void(const Logs &logs)> on_train_begin, on_train_end;
  std::function<void(int64_t batch, const Logs &logs)> on_train_batch_begin, on_train_batch_end;
};
/// keras.callbacks.LambdaCallback: a callback made of functions. They run on the fit thread; an
/// exception stops fit.
inline Callback LambdaCallback(LambdaHooks hooks) {
  struct Impl {
    static LambdaHooks &of(void *ud) { return *static_cast<LambdaHooks *>(ud); }
    static kiln_status *plain(const std::function<void(const Logs &)> &f, const kiln_config *logs) {
      return detail::status_of([&] { f(Logs::from_c(logs)); });
    }
    static kiln_status *indexed(const std::function<void(int64_t, const Logs &)> &f, int64_t i,
                                const kiln_config *logs) {
      return detail::status_of([&] { f(i, Logs::from_c(logs)); });
    }
  };
  kiln_callback_table t{};
  t.struct_size = sizeof t;
  if (hooks.on_train_begin)
    t.on_train_begin = [](kiln_layer *, const kiln_config *l, void *ud) {
      return Impl::plain(Impl::of(ud).on_train_begin, l);
    };
  if (hooks.on_train_end)
    t.on_train_end = [](kiln_layer *, const kiln_config *l, void *ud) {
      return Impl::plain(Impl::of(ud).on_train_end, l);
    };
  if (hooks.on_epoch_begin)
    t.on_epoch_begin = [](kiln_layer *, int64_t e, const kiln_config *l, void *ud) {
      return Impl::indexed(Impl::of(ud).on_epoch_begin, e, l);
    };
  if (hooks.on_epoch_end)
    t.on_epoch_end = [](kiln_layer *, int64_t e, const kiln_config *l, void *ud) {
      return Impl::indexed(Impl::of(ud).on_epoch_end, e, l);
    };
  if (hooks.on_train_batch_begin)
    t.on_train_batch_begin = [](kiln_layer *, int64_t b, const kiln_config *l, void *ud) {
      return Impl::indexed(Impl::of(ud).on_train_batch_begin, b, l);
    };
  if (hooks.on_train_batch_end)
    t.on_train_batch_end = [](kiln_layer *, int64_t b, const kiln_config *l, void *ud) {
      return Impl::indexed(Impl::of(ud).on_train_batch_end, b, l);
    };
  t.destroy = [](void *ud) { delete static_cast<LambdaHooks *>(ud); };
  auto owned = std::make_unique<LambdaHooks>(std::move(hooks));
  kiln_callback *h = nullptr;
  detail::check(kiln_callback_create_custom(&h, "LambdaCallback", &t, owned.get()));
  owned.release();  // the callback frees it
  return Callback(h);
}

}  // namespace callbacks

namespace detail {
// A text callback's functions. Kept for the process's life: a callback replaced on one thread
// may still be running on another.
struct TextSink {
  std::function<void(const std::string &)> fn;
  std::function<bool()> is_terminal;
};
inline TextSink *keep_text_sink(TextSink sink) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<TextSink>> kept;
  std::lock_guard<std::mutex> lock(mu);
  kept.push_back(std::make_unique<TextSink>(std::move(sink)));
  return kept.back().get();
}
inline void write_text(const char *text, void *user) noexcept {
  try {
    static_cast<TextSink *>(user)->fn(text);
  } catch (...) {  // text has nowhere else to go; C must not see the exception
  }
}
inline bool text_is_terminal(void *user) noexcept {
  try {
    return static_cast<TextSink *>(user)->is_terminal();
  } catch (...) {
    return false;
  }
}
}  // namespace detail

/// Where progress text goes (kiln_set_progress_callback): fn receives each piece (the progress
/// bar with its \r and \b, callbacks' verbose messages) instead of stdout; is_terminal says
/// whether it reaches a terminal (then the bar redraws in place; empty: never). An empty fn
/// restores stdout. Process-wide; fn runs on the thread printing.
inline void set_progress_callback(std::function<void(const std::string &)> fn,
                                  std::function<bool()> is_terminal = nullptr) {
  if (!fn) {
    detail::check(kiln_set_progress_callback(nullptr, nullptr, nullptr));
    return;
  }
  const bool has_terminal = static_cast<bool>(is_terminal);
  detail::TextSink *sink = detail::keep_text_sink({std::move(fn), std::move(is_terminal)});
  detail::check(kiln_set_progress_callback(&detail::write_text,
                                           has_terminal ? &detail::text_is_terminal : nullptr, sink));
}
/// Where warnings go (kiln_set_warning_callback: callbacks' warnings, a checkpoint's unused
/// values): fn instead of stderr; an empty fn restores stderr. Process-wide.
inline void set_warning_callback(std::function<void(const std::string &)> fn) {
  if (!fn) {
    detail::check(kiln_set_warning_callback(nullptr, nullptr));
    return;
  }
  detail::TextSink *sink = detail::keep_text_sink({std::move(fn), nullptr});
  detail::check(kiln_set_warning_callback(&detail::write_text, sink));
}
// ---------------------------------------------------------------------------------------------
// Training (kiln/training.h): compile, fit, evaluate, predict and the overridable steps of
// kiln::Model (declared in the Model class above).
//
//     model.compile(kiln::optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
//     kiln::History history = model.fit(x, y, kiln::FitOptions().with_epochs(5).with_validation_split(0.2));
//     std::map<std::string, double> logs = model.evaluate(x_test, y_test);   // {"accuracy", "loss"}
//     kiln::Tensor probabilities = model.predict(x_test);

/// keras.Optimizer (Keras 3 exports the optimizer base at the top level too).
using Optimizer = optimizers::Optimizer;

/// Keras's compile arguments. The optimizer is an object or a name (Keras's default "rmsprop");
/// the losses are objects or names (one for every output, or one per output); the metrics are
/// names ("accuracy" is resolved from the loss and the shapes, as Keras does) or objects.
struct CompileOptions {
  Optimizer optimizer;  ///< empty: optimizer_name
  std::string optimizer_name = "rmsprop";
  std::vector<Loss> losses;  ///< or loss_names
  std::vector<std::string> loss_names;
  std::vector<double> loss_weights;  ///< empty: all 1; else one per output
  std::vector<std::string> metric_names;
  std::vector<Metric> metrics;
  /// Keras's compile list when names and objects mix: one entry per metric in compile order,
  /// true for the next of metrics, false for the next of metric_names. Empty: names, then objects.
  std::vector<bool> metric_is_object;
  /// Keras's weighted_metrics: updated with the sample weight (sample_weight and class_weight, as
  /// the loss); they follow `metrics` in the logs, and one whose name is taken is
  /// "weighted_<name>". Names and objects as metric_names / metrics / metric_is_object.
  std::vector<std::string> weighted_metric_names;
  std::vector<Metric> weighted_metrics;
  std::vector<bool> weighted_metric_is_object;
  bool run_eagerly = false;  ///< accepted; kiln always runs eagerly

  CompileOptions &with_optimizer(const Optimizer &o) {
    optimizer = o;
    return *this;
  }
  CompileOptions &with_optimizer(const std::string &name) {
    optimizer = Optimizer();
    optimizer_name = name;
    return *this;
  }
  CompileOptions &with_loss(const Loss &l) {
    losses = {l};
    loss_names.clear();
    return *this;
  }
  CompileOptions &with_loss(const std::string &name) {
    loss_names = {name};
    losses.clear();
    return *this;
  }
  CompileOptions &with_losses(const std::vector<Loss> &l) {
    losses = l;
    loss_names.clear();
    return *this;
  }
  CompileOptions &with_losses(const std::vector<std::string> &names) {
    loss_names = names;
    losses.clear();
    return *this;
  }
  CompileOptions &with_loss_weights(const std::vector<double> &w) {
    loss_weights = w;
    return *this;
  }
  CompileOptions &with_metrics(const std::vector<std::string> &names) {
    metric_names = names;
    return *this;
  }
  CompileOptions &with_metrics(const std::vector<Metric> &m) {
    metrics = m;
    return *this;
  }
  CompileOptions &with_weighted_metrics(const std::vector<std::string> &names) {
    weighted_metric_names = names;
    return *this;
  }
  CompileOptions &with_weighted_metrics(const std::vector<Metric> &m) {
    weighted_metrics = m;
    return *this;
  }
  CompileOptions &with_run_eagerly(bool r) {
    run_eagerly = r;
    return *this;
  }
};

/// Keras's fit arguments with Keras's defaults, keyword style:
/// FitOptions().with_epochs(3).with_batch_size(64).with_validation_split(0.2).
struct FitOptions {
  int64_t batch_size = 32;  ///< ignored for datasets (they come batched); -1: Keras's None (32, or
                            ///< the samples over steps_per_epoch when it is given)
  int64_t epochs = 1;
  int verbose = -1;  ///< -1 "auto" (1 on a terminal, else 2); 0 silent; 1 bar; 2 a line per epoch
  std::vector<Callback> callbacks;
  double validation_split = 0.0;     ///< the last fraction of x/y, taken before shuffling
  std::vector<Tensor> validation_x;  ///< validation_data (x, y[, sample_weight]) ...
  std::vector<Tensor> validation_y;
  Tensor validation_sample_weight;
  data::Dataset validation_dataset;  ///< ... or a dataset of batches
  /// Empty: every epoch; {N}: every N epochs; more values: the 1-based epochs listed.
  std::vector<int64_t> validation_freq;
  bool shuffle = true;                 ///< x/y only
  std::map<int, double> class_weight;  ///< class index -> weight (classes not listed weigh 1)
  Tensor sample_weight;                ///< one weight per sample of x/y
  int64_t initial_epoch = 0;
  int64_t steps_per_epoch = -1;        ///< -1: until the data ends
  int64_t validation_steps = -1;       ///< -1: until the validation data ends
  int64_t validation_batch_size = -1;  ///< -1: batch_size (both -1: 32, or over validation_steps)
  size_t num_inputs = 1;               ///< a dataset element's x components (then y, then [sample weight])
  /// Data-parallel over its ranks (kiln_fit_options.distribution); empty: one process.
  Communicator distribution;

  FitOptions &with_distribution(const Communicator &c) {
    distribution = c;
    return *this;
  }
  FitOptions &with_batch_size(int64_t n) {
    batch_size = n;
    return *this;
  }
  FitOptions &with_epochs(int64_t n) {
    epochs = n;
    return *this;
  }
  FitOptions &with_verbose(int v) {
    verbose = v;
    return *this;
  }
  FitOptions &with_callbacks(const std::vector<Callback> &c) {
    callbacks = c;
    return *this;
  }
  FitOptions &with_validation_split(double f) {
    validation_split = f;
    return *this;
  }
  FitOptions &with_validation_data(const Tensor &x, const Tensor &y, const Tensor &sw = Tensor()) {
    return with_validation_data(std::vector<Tensor>{x}, std::vector<Tensor>{y}, sw);
  }
  FitOptions &with_validation_data(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                                   const Tensor &sw = Tensor()) {
    validation_x = x;
    validation_y = y;
    validation_sample_weight = sw;
    return *this;
  }
  FitOptions &with_validation_data(const data::Dataset &d) {
    validation_dataset = d;
    return *this;
  }
  FitOptions &with_validation_freq(const std::vector<int64_t> &f) {
    validation_freq = f;
    return *this;
  }
  FitOptions &with_shuffle(bool s) {
    shuffle = s;
    return *this;
  }
  FitOptions &with_class_weight(const std::map<int, double> &w) {
    class_weight = w;
    return *this;
  }
  FitOptions &with_sample_weight(const Tensor &w) {
    sample_weight = w;
    return *this;
  }
  FitOptions &with_initial_epoch(int64_t e) {
    initial_epoch = e;
    return *this;
  }
  FitOptions &with_steps_per_epoch(int64_t n) {
    steps_per_epoch = n;
    return *this;
  }
  FitOptions &with_validation_steps(int64_t n) {
    validation_steps = n;
    return *this;
  }
  FitOptions &with_validation_batch_size(int64_t n) {
    validation_batch_size = n;
    return *this;
  }
  FitOptions &with_num_inputs(size_t n) {
    num_inputs = n;
    return *this;
  }
};

/// Keras's evaluate arguments with Keras's defaults.
struct EvaluateOptions {
  int64_t batch_size = 32;  ///< ignored for datasets; -1: Keras's None (32, or the samples / steps)
  int verbose = -1;         ///< -1 "auto"
  Tensor sample_weight;
  int64_t steps = -1;  ///< -1: until the data ends
  std::vector<Callback> callbacks;
  size_t num_inputs = 1;  ///< a dataset element's x components

  EvaluateOptions &with_batch_size(int64_t n) {
    batch_size = n;
    return *this;
  }
  EvaluateOptions &with_verbose(int v) {
    verbose = v;
    return *this;
  }
  EvaluateOptions &with_sample_weight(const Tensor &w) {
    sample_weight = w;
    return *this;
  }
  EvaluateOptions &with_steps(int64_t n) {
    steps = n;
    return *this;
  }
  EvaluateOptions &with_callbacks(const std::vector<Callback> &c) {
    callbacks = c;
    return *this;
  }
  EvaluateOptions &with_num_inputs(size_t n) {
    num_inputs = n;
    return *this;
  }
};

/// Keras's predict arguments with Keras's defaults.
struct PredictOptions {
  int64_t batch_size = 32;  ///< ignored for datasets; -1: Keras's None (32, or the samples / steps)
  int verbose = -1;         ///< -1 "auto"
  int64_t steps = -1;       ///< -1: until the data ends
  std::vector<Callback> callbacks;
  size_t num_inputs = 1;  ///< a dataset element's x components (the rest is ignored)

  PredictOptions &with_batch_size(int64_t n) {
    batch_size = n;
    return *this;
  }
  PredictOptions &with_verbose(int v) {
    verbose = v;
    return *this;
  }
  PredictOptions &with_steps(int64_t n) {
    steps = n;
    return *this;
  }
  PredictOptions &with_callbacks(const std::vector<Callback> &c) {
    callbacks = c;
    return *this;
  }
  PredictOptions &with_num_inputs(size_t n) {
    num_inputs = n;
    return *this;
  }
};

namespace detail {
// How the batches of the running fit / evaluate / *_on_batch call are laid out (x components,
// y components; -1: not known, e.g. a dataset's y or a call from C), for Model::unpack_data.
// Steps run on the thread that called fit, so the layout is per thread.
struct StepLayout {
  int64_t num_x = -1, num_y = -1;
};
inline StepLayout &step_layout() {
  static thread_local StepLayout layout;
  return layout;
}
class StepLayoutScope {
 public:
  explicit StepLayoutScope(StepLayout layout) : previous_(step_layout()) { step_layout() = layout; }
  ~StepLayoutScope() { step_layout() = previous_; }
  StepLayoutScope(const StepLayoutScope &) = delete;
  StepLayoutScope &operator=(const StepLayoutScope &) = delete;

 private:
  StepLayout previous_;
};

// Takes a C logs config: name -> value.
inline std::map<std::string, double> take_logs(kiln_config *logs) {
  Config c(logs);
  std::map<std::string, double> out;
  for (const std::string &k : c.keys()) {
    const Config::Type t = c.type(k);
    if (t == Config::Type::floating)
      out[k] = c.get_float(k);
    else if (t == Config::Type::integer)
      out[k] = static_cast<double>(c.get_int(k));
  }
  return out;
}
inline std::vector<Tensor> take_list(kiln_tensor_list *list) {
  handle<kiln_tensor_list> owned(list);
  return from_list(list);
}
inline std::vector<kiln_callback *> callback_handles(const std::vector<Callback> &callbacks) {
  std::vector<kiln_callback *> hs;
  for (const Callback &c : callbacks) hs.push_back(c.get());
  return hs;
}
// class_weight as the C array: index -> weight, 1 for the classes not listed (as Keras).
inline std::vector<double> class_weight_array(const std::map<int, double> &class_weight, const char *op) {
  std::vector<double> w;
  for (const auto &kv : class_weight) {
    if (kv.first < 0)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string(op) + ": class_weight has class " +
                                                    std::to_string(kv.first) +
                                                    "; expected class indices >= 0");
    if (static_cast<size_t>(kv.first) >= w.size()) w.resize(static_cast<size_t>(kv.first) + 1, 1.0);
    w[static_cast<size_t>(kv.first)] = kv.second;
  }
  return w;
}
// An optional list: NULL for no tensors.
inline handle<kiln_tensor_list> list_or_null(const std::vector<Tensor> &tensors) {
  return tensors.empty() ? handle<kiln_tensor_list>() : to_list(tensors);
}

// The fields fit, evaluate and predict options share: the inputs (tensors or a dataset), the
// batch size, verbosity and callbacks (the vector stays the caller's for the call).
template <typename C, typename O>
void set_loop_options(C &c, const kiln_tensor_list *x, const kiln_dataset *dataset, const O &o,
                      const std::vector<kiln_callback *> &callbacks) {
  c.x = x;
  c.dataset = dataset;
  c.num_inputs = o.num_inputs;
  c.batch_size = o.batch_size;
  c.verbose = o.verbose;
  c.callbacks = callbacks.data();
  c.num_callbacks = callbacks.size();
}

inline History fit_model(kiln_layer *model, const kiln_tensor_list *x, const kiln_tensor_list *y,
                         const kiln_dataset *dataset, const FitOptions &o, StepLayout layout) {
  kiln_fit_options c;
  check(kiln_fit_options_init(&c, sizeof c));
  const std::vector<kiln_callback *> callbacks = callback_handles(o.callbacks);
  set_loop_options(c, x, dataset, o, callbacks);
  c.y = y;
  c.sample_weight = o.sample_weight.get();
  c.epochs = o.epochs;
  c.validation_split = o.validation_split;
  const auto vx = list_or_null(o.validation_x), vy = list_or_null(o.validation_y);
  c.validation_x = vx.get();
  c.validation_y = vy.get();
  c.validation_sample_weight = o.validation_sample_weight.get();
  c.validation_dataset = o.validation_dataset.get();
  c.validation_freq = o.validation_freq.empty() ? nullptr : o.validation_freq.data();
  c.num_validation_freq = o.validation_freq.size();
  c.shuffle = o.shuffle;
  const std::vector<double> class_weight = class_weight_array(o.class_weight, "Model::fit");
  c.class_weight = class_weight.empty() ? nullptr : class_weight.data();
  c.num_class_weight = class_weight.size();
  c.initial_epoch = o.initial_epoch;
  c.steps_per_epoch = o.steps_per_epoch;
  c.validation_steps = o.validation_steps;
  c.validation_batch_size = o.validation_batch_size;
  c.distribution = o.distribution.get();
  StepLayoutScope scope(layout);
  kiln_callback *history = nullptr;
  check(kiln_model_fit(&history, model, &c));
  return History(history);
}

inline std::map<std::string, double> evaluate_model(kiln_layer *model, const kiln_tensor_list *x,
                                                    const kiln_tensor_list *y, const kiln_dataset *dataset,
                                                    const EvaluateOptions &o, StepLayout layout) {
  kiln_evaluate_options c;
  check(kiln_evaluate_options_init(&c, sizeof c));
  const std::vector<kiln_callback *> callbacks = callback_handles(o.callbacks);
  set_loop_options(c, x, dataset, o, callbacks);
  c.y = y;
  c.sample_weight = o.sample_weight.get();
  c.steps = o.steps;
  StepLayoutScope scope(layout);
  kiln_config *logs = nullptr;
  check(kiln_model_evaluate(&logs, model, &c));
  return take_logs(logs);
}

inline std::vector<Tensor> predict_model(kiln_layer *model, const kiln_tensor_list *x,
                                         const kiln_dataset *dataset, const PredictOptions &o) {
  kiln_predict_options c;
  check(kiln_predict_options_init(&c, sizeof c));
  const std::vector<kiln_callback *> callbacks = callback_handles(o.callbacks);
  set_loop_options(c, x, dataset, o, callbacks);
  c.steps = o.steps;
  kiln_tensor_list *out = nullptr;
  check(kiln_model_predict(&out, model, &c));
  return take_list(out);
}

inline Tensor single_output(std::vector<Tensor> outputs, const char *op) {
  if (outputs.size() != 1)
    throw Error(KILN_STATUS_INVALID_ARGUMENT, std::string(op) + ": the model has " +
                                                  std::to_string(outputs.size()) +
                                                  " outputs; use the std::vector<Tensor> form for several");
  return std::move(outputs[0]);
}

inline StepLayout layout_of(const std::vector<Tensor> &x, const std::vector<Tensor> &y) {
  return StepLayout{static_cast<int64_t>(x.size()), static_cast<int64_t>(y.size())};
}
// One tensor, or none for an empty (default) Tensor: an x or y that was not given.
inline std::vector<Tensor> tensors_or_none(const Tensor &t) {
  return t.valid() ? std::vector<Tensor>{t} : std::vector<Tensor>{};
}

// compile's positional arguments.
inline void set_optimizer(CompileOptions &o, const Optimizer &optimizer) { o.with_optimizer(optimizer); }
inline void set_optimizer(CompileOptions &o, const std::string &name) { o.with_optimizer(name); }
inline void set_loss(CompileOptions &o, const Loss &loss) { o.with_loss(loss); }
inline void set_loss(CompileOptions &o, const std::string &name) { o.with_loss(name); }
inline void set_loss(CompileOptions &o, const std::vector<Loss> &losses) { o.with_losses(losses); }
inline void set_loss(CompileOptions &o, const std::vector<std::string> &names) { o.with_losses(names); }
inline void set_metrics(CompileOptions &o, const std::vector<std::string> &names) { o.with_metrics(names); }
inline void set_metrics(CompileOptions &o, const std::vector<Metric> &metrics) { o.with_metrics(metrics); }
}  // namespace detail

inline Model::Model(const Layer &layer) : Layer(layer) {
  if (valid() && !is_model())
    throw Error(KILN_STATUS_INVALID_ARGUMENT,
                "kiln::Model: layer '" + name() + "' (" + class_name() +
                    ") is not a model; expected a Sequential or a Model subclass");
}

inline Model::Model(Model &&o) noexcept
    : Layer(std::move(o)), step_link_(std::exchange(o.step_link_, nullptr)) {
  if (step_link_) step_link_->self = this;
}

inline Model &Model::operator=(Model &&o) noexcept {
  if (this != &o)
    detail::move_assign_linked(*this, o, &Model::step_link_, [&] { Layer::operator=(std::move(o)); });
  return *this;
}

inline Model::~Model() {
  if (step_link_) step_link_->self = nullptr;  // steps arriving after this report the object gone
}

inline Model::Model(const std::string &class_name, const Config &base) : Layer(ModelTag{}, class_name, base) {
  kiln_model_step_callbacks cb{};
  cb.struct_size = sizeof cb;
  cb.train_step = &Model::on_train_step;
  cb.test_step = &Model::on_test_step;
  cb.destroy = &Model::on_step_destroy;
  auto *link = new StepLink{this};
  kiln_status *st = kiln_model_set_step_callbacks(get(), &cb, link);
  if (st) delete link;  // not handed over on failure
  detail::check(st);
  step_link_ = link;
}

inline kiln_status *Model::on_train_step(kiln_config *logs, kiln_layer *, const kiln_tensor_list *data,
                                         void *user_data) {
  Model *self = static_cast<StepLink *>(user_data)->self;
  if (!self)
    return kiln_status_create(KILN_STATUS_FAILED_PRECONDITION,
                              "the C++ object of this model was destroyed before its train_step");
  return detail::status_of([&] { self->write_logs(logs, self->train_step(detail::from_list(data))); });
}

inline kiln_status *Model::on_test_step(kiln_config *logs, kiln_layer *, const kiln_tensor_list *data,
                                        void *user_data) {
  Model *self = static_cast<StepLink *>(user_data)->self;
  if (!self)
    return kiln_status_create(KILN_STATUS_FAILED_PRECONDITION,
                              "the C++ object of this model was destroyed before its test_step");
  return detail::status_of([&] { self->write_logs(logs, self->test_step(detail::from_list(data))); });
}

inline void Model::on_step_destroy(void *user_data) {
  auto *link = static_cast<StepLink *>(user_data);
  if (Model *self = link->self) self->step_link_ = nullptr;
  delete link;
}

// A step's logs in Keras's order: metrics_names first ("loss", then the compiled metrics), then
// any other names the step gave.
inline void Model::write_logs(kiln_config *logs, const std::map<std::string, double> &values) const {
  std::vector<std::string> order = metrics_names();
  for (const auto &kv : values)
    if (std::find(order.begin(), order.end(), kv.first) == order.end()) order.push_back(kv.first);
  for (const std::string &name : order) {
    auto it = values.find(name);
    if (it != values.end()) detail::check(kiln_config_set_float(logs, name.c_str(), it->second));
  }
}

inline void Model::compile(const CompileOptions &o) {
  kiln_compile_options c;
  detail::check(kiln_compile_options_init(&c, sizeof c));
  c.optimizer = o.optimizer.get();
  c.optimizer_name = o.optimizer.valid() || o.optimizer_name.empty() ? nullptr : o.optimizer_name.c_str();
  std::vector<kiln_loss *> losses;
  for (const Loss &l : o.losses) losses.push_back(l.get());
  c.losses = losses.empty() ? nullptr : losses.data();
  c.num_losses = losses.size();
  std::vector<const char *> loss_names;
  for (const std::string &n : o.loss_names) loss_names.push_back(n.c_str());
  c.loss_names = loss_names.empty() ? nullptr : loss_names.data();
  c.num_loss_names = loss_names.size();
  c.loss_weights = o.loss_weights.empty() ? nullptr : o.loss_weights.data();
  c.num_loss_weights = o.loss_weights.size();
  // C takes one list: `metrics`, then weighted_metrics, each flagged in metric_is_weighted.
  std::vector<const char *> metric_names;
  std::vector<kiln_metric *> metrics;
  std::vector<bool> is_object, is_weighted;
  auto add_group = [&](const std::vector<std::string> &names, const std::vector<Metric> &objects,
                       const std::vector<bool> &order, bool weighted, const char *what) {
    for (const std::string &n : names) metric_names.push_back(n.c_str());
    for (const Metric &m : objects) metrics.push_back(m.get());
    const size_t n = names.size() + objects.size();
    if (order.empty()) {
      is_object.insert(is_object.end(), names.size(), false);
      is_object.insert(is_object.end(), objects.size(), true);
    } else if (order.size() != n ||
               static_cast<size_t>(std::count(order.begin(), order.end(), true)) != objects.size()) {
      throw Error(
          KILN_STATUS_INVALID_ARGUMENT,
          std::string("Model::compile: CompileOptions::") + what + " has " + std::to_string(order.size()) +
              " entries; expected one per metric, true for each of the " + std::to_string(objects.size()) +
              " objects and false for each of the " + std::to_string(names.size()) + " names");
    } else {
      is_object.insert(is_object.end(), order.begin(), order.end());
    }
    is_weighted.insert(is_weighted.end(), n, weighted);
  };
  add_group(o.metric_names, o.metrics, o.metric_is_object, false, "metric_is_object");
  add_group(o.weighted_metric_names, o.weighted_metrics, o.weighted_metric_is_object, true,
            "weighted_metric_is_object");
  const bool any_weighted = !o.weighted_metric_names.empty() || !o.weighted_metrics.empty();
  std::unique_ptr<bool[]> flags(new bool[2 * std::max<size_t>(is_object.size(), 1)]);
  std::copy(is_object.begin(), is_object.end(), flags.get());
  std::copy(is_weighted.begin(), is_weighted.end(), flags.get() + is_object.size());
  c.metric_names = metric_names.empty() ? nullptr : metric_names.data();
  c.num_metric_names = metric_names.size();
  c.metrics = metrics.empty() ? nullptr : metrics.data();
  c.num_metrics = metrics.size();
  c.metric_is_object = is_object.empty() ? nullptr : flags.get();
  c.num_metric_is_object = is_object.size();
  c.metric_is_weighted = any_weighted ? flags.get() + is_object.size() : nullptr;
  c.num_metric_is_weighted = any_weighted ? is_weighted.size() : 0;
  c.run_eagerly = o.run_eagerly;
  detail::check(kiln_model_compile(get(), &c));
}

template <typename O, typename L, typename M>
void Model::compile(const O &optimizer, const L &loss, const M &metrics) {
  CompileOptions o;
  detail::set_optimizer(o, optimizer);
  detail::set_loss(o, loss);
  detail::set_metrics(o, metrics);
  compile(o);
}

inline bool Model::is_compiled() const noexcept { return kiln_model_is_compiled(get()); }

inline Optimizer Model::optimizer() const {
  kiln_optimizer *h = nullptr;
  detail::check(kiln_model_get_optimizer(&h, get()));
  return Optimizer(h);
}

inline bool Model::stop_training() const noexcept { return kiln_model_get_stop_training(get()); }
inline void Model::set_stop_training(bool stop) { detail::check(kiln_model_set_stop_training(get(), stop)); }

inline std::vector<std::string> Model::metrics_names() const {
  kiln_config *c = nullptr;
  detail::check(kiln_model_get_metrics_names(&c, get()));
  return Config(c).get_string_list("names");
}

inline std::vector<Metric> Model::metrics() const {
  return detail::handles_from<Metric, kiln_metric>([this](kiln_metric **out, size_t capacity, size_t *count) {
    return kiln_model_get_metrics(out, capacity, count, get());
  });
}

inline History Model::fit(const Tensor &x, const Tensor &y) { return fit(x, y, FitOptions()); }
inline History Model::fit(const Tensor &x, const Tensor &y, const FitOptions &options) {
  return fit(std::vector<Tensor>{x}, detail::tensors_or_none(y), options);
}
inline History Model::fit(const Tensor &x) { return fit(x, Tensor(), FitOptions()); }
inline History Model::fit(const Tensor &x, const FitOptions &options) { return fit(x, Tensor(), options); }
inline History Model::fit(const std::vector<Tensor> &x, const std::vector<Tensor> &y) {
  return fit(x, y, FitOptions());
}
inline History Model::fit(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                          const FitOptions &options) {
  const auto xs = detail::to_list(x), ys = detail::to_list(y);
  return detail::fit_model(get(), xs.get(), ys.get(), nullptr, options, detail::layout_of(x, y));
}
inline int64_t Layer::vocabulary_size() const {
  const Config c = get_config();
  if (!c.has("vocabulary_size")) return get_vocabulary(true).num_elements();  // fails naming the layer
  if (c.type("vocabulary_size") != Config::Type::null) return c.get_int("vocabulary_size");
  // no vocabulary yet (any sets the size): the mask (output_mode "int") and OOV indices
  const bool mask = c.type("mask_token") != Config::Type::null && c.get_string("output_mode") == "int";
  return (mask ? 1 : 0) + c.get_int("num_oov_indices");
}
inline void Layer::adapt(const data::Dataset &dataset) {
  detail::check(kiln_layer_adapt_dataset(get(), dataset.get()));
}
inline History Model::fit(const data::Dataset &dataset) { return fit(dataset, FitOptions()); }
inline History Model::fit(const data::Dataset &dataset, const FitOptions &options) {
  return detail::fit_model(get(), nullptr, nullptr, dataset.get(), options,
                           detail::StepLayout{static_cast<int64_t>(options.num_inputs), -1});
}

inline std::map<std::string, double> Model::evaluate(const Tensor &x, const Tensor &y) {
  return evaluate(x, y, EvaluateOptions());
}
inline std::map<std::string, double> Model::evaluate(const Tensor &x, const Tensor &y,
                                                     const EvaluateOptions &options) {
  return evaluate(std::vector<Tensor>{x}, detail::tensors_or_none(y), options);
}
inline std::map<std::string, double> Model::evaluate(const Tensor &x) {
  return evaluate(x, Tensor(), EvaluateOptions());
}
inline std::map<std::string, double> Model::evaluate(const Tensor &x, const EvaluateOptions &options) {
  return evaluate(x, Tensor(), options);
}
inline std::map<std::string, double> Model::evaluate(const std::vector<Tensor> &x,
                                                     const std::vector<Tensor> &y) {
  return evaluate(x, y, EvaluateOptions());
}
inline std::map<std::string, double> Model::evaluate(const std::vector<Tensor> &x,
                                                     const std::vector<Tensor> &y,
                                                     const EvaluateOptions &options) {
  const auto xs = detail::to_list(x), ys = detail::to_list(y);
  return detail::evaluate_model(get(), xs.get(), ys.get(), nullptr, options, detail::layout_of(x, y));
}
inline std::map<std::string, double> Model::evaluate(const data::Dataset &dataset) {
  return evaluate(dataset, EvaluateOptions());
}
inline std::map<std::string, double> Model::evaluate(const data::Dataset &dataset,
                                                     const EvaluateOptions &options) {
  return detail::evaluate_model(get(), nullptr, nullptr, dataset.get(), options,
                                detail::StepLayout{static_cast<int64_t>(options.num_inputs), -1});
}

inline Tensor Model::predict(const Tensor &x) { return predict(x, PredictOptions()); }
inline Tensor Model::predict(const Tensor &x, const PredictOptions &options) {
  return detail::single_output(predict(std::vector<Tensor>{x}, options), "Model::predict");
}
inline std::vector<Tensor> Model::predict(const std::vector<Tensor> &x) {
  return predict(x, PredictOptions());
}
inline std::vector<Tensor> Model::predict(const std::vector<Tensor> &x, const PredictOptions &options) {
  const auto xs = detail::to_list(x);
  return detail::predict_model(get(), xs.get(), nullptr, options);
}
inline std::vector<Tensor> Model::predict(const data::Dataset &dataset) {
  return predict(dataset, PredictOptions());
}
inline std::vector<Tensor> Model::predict(const data::Dataset &dataset, const PredictOptions &options) {
  return detail::predict_model(get(), nullptr, dataset.get(), options);
}

inline std::map<std::string, double> Model::train_on_batch(const Tensor &x, const Tensor &y,
                                                           const Tensor &sample_weight,
                                                           const std::map<int, double> &class_weight) {
  return train_on_batch(std::vector<Tensor>{x}, detail::tensors_or_none(y), sample_weight, class_weight);
}
inline std::map<std::string, double> Model::train_on_batch(const std::vector<Tensor> &x,
                                                           const std::vector<Tensor> &y,
                                                           const Tensor &sample_weight,
                                                           const std::map<int, double> &class_weight) {
  const auto xs = detail::to_list(x), ys = detail::to_list(y);
  const std::vector<double> cw = detail::class_weight_array(class_weight, "Model::train_on_batch");
  detail::StepLayoutScope scope(detail::layout_of(x, y));
  kiln_config *logs = nullptr;
  detail::check(kiln_model_train_on_batch(&logs, get(), xs.get(), ys.get(), sample_weight.get(),
                                          cw.empty() ? nullptr : cw.data(), cw.size()));
  return detail::take_logs(logs);
}
inline std::map<std::string, double> Model::test_on_batch(const Tensor &x, const Tensor &y,
                                                          const Tensor &sample_weight) {
  return test_on_batch(std::vector<Tensor>{x}, detail::tensors_or_none(y), sample_weight);
}
inline std::map<std::string, double> Model::test_on_batch(const std::vector<Tensor> &x,
                                                          const std::vector<Tensor> &y,
                                                          const Tensor &sample_weight) {
  const auto xs = detail::to_list(x), ys = detail::to_list(y);
  detail::StepLayoutScope scope(detail::layout_of(x, y));
  kiln_config *logs = nullptr;
  detail::check(kiln_model_test_on_batch(&logs, get(), xs.get(), ys.get(), sample_weight.get()));
  return detail::take_logs(logs);
}
inline Tensor Model::predict_on_batch(const Tensor &x) {
  return detail::single_output(predict_on_batch(std::vector<Tensor>{x}), "Model::predict_on_batch");
}
inline std::vector<Tensor> Model::predict_on_batch(const std::vector<Tensor> &x) {
  const auto xs = detail::to_list(x);
  kiln_tensor_list *out = nullptr;
  detail::check(kiln_model_predict_on_batch(&out, get(), xs.get()));
  return detail::take_list(out);
}

inline Model::StepData Model::unpack_data(const std::vector<Tensor> &data) {
  const detail::StepLayout layout = detail::step_layout();
  const size_t nx = layout.num_x > 0 ? static_cast<size_t>(layout.num_x) : 1;
  if (data.size() < nx)
    throw Error(KILN_STATUS_INVALID_ARGUMENT,
                "Model::unpack_data: the batch has " + std::to_string(data.size()) +
                    " tensors; expected at least the " + std::to_string(nx) + " inputs");
  const size_t rest = data.size() - nx;
  // Unknown y count (a dataset): as Keras's (x, y, sample_weight) tuple, the last of two or more.
  const size_t ny = layout.num_y >= 0 ? static_cast<size_t>(layout.num_y) : (rest >= 2 ? rest - 1 : rest);
  if (rest != ny && rest != ny + 1)
    throw Error(KILN_STATUS_INVALID_ARGUMENT, "Model::unpack_data: the batch has " +
                                                  std::to_string(data.size()) + " tensors; expected " +
                                                  std::to_string(nx) + " inputs, " + std::to_string(ny) +
                                                  " targets and at most one sample weight");
  StepData d;
  d.x.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(nx));
  d.y.assign(data.begin() + static_cast<std::ptrdiff_t>(nx),
             data.begin() + static_cast<std::ptrdiff_t>(nx + ny));
  if (rest == ny + 1) d.sample_weight = data.back();
  return d;
}

namespace detail {
// The default steps' targets: with the y count unknown (a dataset), one y per model output, then
// optionally a sample weight, as kiln's built-in steps split them.
inline void split_by_outputs(const std::vector<Tensor> &data, size_t num_outputs, std::vector<Tensor> &y,
                             Tensor &sample_weight) {
  if (step_layout().num_y >= 0) return;
  const size_t nx = step_layout().num_x > 0 ? static_cast<size_t>(step_layout().num_x) : 1;
  const size_t rest = data.size() - std::min(nx, data.size());
  if (rest != num_outputs && rest != num_outputs + 1) return;  // compute_loss names the mismatch
  y.assign(data.begin() + static_cast<std::ptrdiff_t>(nx),
           data.begin() + static_cast<std::ptrdiff_t>(nx + num_outputs));
  sample_weight = rest > num_outputs ? data.back() : Tensor();
}
}  // namespace detail

inline std::map<std::string, double> Model::train_step(const std::vector<Tensor> &data) {
  StepData d = unpack_data(data);
  std::vector<Tensor> y_pred, grads;
  std::vector<Variable> vars;
  {
    GradientTape tape;
    y_pred = (*this)(d.x, true);
    detail::split_by_outputs(data, y_pred.size(), d.y, d.sample_weight);
    // Keras differentiates optimizer.scale_loss(loss); apply_gradients divides by the factor.
    const Tensor loss = optimizer().scale_loss(compute_loss(d.x, d.y, y_pred, d.sample_weight));
    tape.stop();
    vars = trainable_variables();
    grads = tape.gradient(loss, vars);
  }
  optimizer().apply_gradients(grads, vars);
  return compute_metrics(d.x, d.y, y_pred, d.sample_weight);
}

inline std::map<std::string, double> Model::test_step(const std::vector<Tensor> &data) {
  StepData d = unpack_data(data);
  const std::vector<Tensor> y_pred = (*this)(d.x, false);
  detail::split_by_outputs(data, y_pred.size(), d.y, d.sample_weight);
  compute_loss(d.x, d.y, y_pred, d.sample_weight);
  return compute_metrics(d.x, d.y, y_pred, d.sample_weight);
}

inline Tensor Model::compute_loss(const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                                  const std::vector<Tensor> &y_pred, const Tensor &sample_weight) {
  const auto xs = detail::list_or_null(x), ys = detail::to_list(y), ps = detail::to_list(y_pred);
  kiln_tensor *out = nullptr;
  detail::check(kiln_model_compute_loss(&out, get(), xs.get(), ys.get(), ps.get(), sample_weight.get()));
  return Tensor(out);
}
inline Tensor Model::compute_loss(const Tensor &x, const Tensor &y, const Tensor &y_pred,
                                  const Tensor &sample_weight) {
  return compute_loss(detail::tensors_or_none(x), detail::tensors_or_none(y), std::vector<Tensor>{y_pred},
                      sample_weight);
}
inline std::map<std::string, double> Model::compute_metrics(const std::vector<Tensor> &x,
                                                            const std::vector<Tensor> &y,
                                                            const std::vector<Tensor> &y_pred,
                                                            const Tensor &sample_weight) {
  const auto xs = detail::list_or_null(x), ys = detail::to_list(y), ps = detail::to_list(y_pred);
  kiln_config *logs = nullptr;
  detail::check(kiln_model_compute_metrics(&logs, get(), xs.get(), ys.get(), ps.get(), sample_weight.get()));
  return detail::take_logs(logs);
}
inline std::map<std::string, double> Model::compute_metrics(const Tensor &x, const Tensor &y,
                                                            const Tensor &y_pred,
                                                            const Tensor &sample_weight) {
  return compute_metrics(detail::tensors_or_none(x), detail::tensors_or_none(y), std::vector<Tensor>{y_pred},
                         sample_weight);
}

// ---- TensorFlow checkpoints (kiln/checkpoint.h) ----

namespace detail {
template <>
struct handle_traits<kiln_checkpoint_reader> {
  static void destroy(kiln_checkpoint_reader *h) noexcept { kiln_checkpoint_reader_free(h); }
  // No clone: a reader is one open checkpoint, owned by one object (move-only).
};
}  // namespace detail

/// tf.train's checkpoint reading: load_checkpoint, list_variables and CheckpointReader, over
/// TensorFlow's tensor-bundle files (TF2 object-based and TF1 name-based checkpoints, and kiln's).
///
///   auto reader = kiln::train::load_checkpoint("ckpt_dir");   // or a prefix: "ckpt_dir/ckpt-3"
///   for (const auto &[name, shape] : reader.get_variable_to_shape_map()) ...
///   int64_t step = reader.get_tensor("global_step").item<int64_t>();
namespace train {

/// One variable of a checkpoint as its index describes it.
struct CheckpointVariable {
  std::string name;
  std::string dtype;                ///< TensorFlow's name: "float32", "int64", "string", ...
  std::optional<DType> kiln_dtype;  ///< what get_tensor gives; empty when kiln has no such dtype
  Dims shape;
  size_t byte_size = 0;  ///< its bytes in the data file
};

/// tf.train.CheckpointReader: an open checkpoint (move-only). Reading never changes it, so one
/// reader may serve several threads.
class CheckpointReader : public kiln::detail::handle<kiln_checkpoint_reader> {
 public:
  CheckpointReader() = default;
  explicit CheckpointReader(kiln_checkpoint_reader *h) noexcept : handle(h) {}
  /// Opens a prefix, a directory (its latest checkpoint, through the `checkpoint` state file) or
  /// one of a checkpoint's files; throws NOT_FOUND / DATA_LOSS as kiln_checkpoint_reader_open.
  explicit CheckpointReader(const std::string &path) {
    kiln_checkpoint_reader *h = nullptr;
    kiln::detail::check(kiln_checkpoint_reader_open(&h, path.c_str()));
    *this = CheckpointReader(h);
  }

  /// The prefix opened (for a directory, its latest checkpoint).
  std::string prefix() const {
    const char *s = nullptr;
    kiln::detail::check(kiln_checkpoint_reader_get_prefix(&s, get()));
    return s;
  }
  size_t num_variables() const {
    size_t n = 0;
    kiln::detail::check(kiln_checkpoint_reader_get_num_variables(&n, get()));
    return n;
  }
  /// Variable index (0 .. num_variables()-1, in name order).
  CheckpointVariable variable(size_t index) const {
    CheckpointVariable v;
    const char *s = nullptr;
    kiln::detail::check(kiln_checkpoint_reader_get_name(&s, get(), index));
    v.name = s;
    kiln::detail::check(kiln_checkpoint_reader_get_dtype_name(&s, get(), index));
    v.dtype = s;
    kiln_dtype d = static_cast<kiln_dtype>(0);
    kiln::detail::check(kiln_checkpoint_reader_get_dtype(&d, get(), index));
    if (d != 0) v.kiln_dtype = static_cast<DType>(d);
    size_t rank = 0;
    kiln::detail::check(kiln_checkpoint_reader_get_shape(nullptr, 0, &rank, get(), index));
    v.shape.resize(rank);
    kiln::detail::check(kiln_checkpoint_reader_get_shape(v.shape.data(), rank, &rank, get(), index));
    kiln::detail::check(kiln_checkpoint_reader_get_byte_size(&v.byte_size, get(), index));
    return v;
  }
  /// Every variable, in name order.
  std::vector<CheckpointVariable> variables() const {
    std::vector<CheckpointVariable> out;
    for (size_t i = 0, n = num_variables(); i < n; ++i) out.push_back(variable(i));
    return out;
  }
  /// The variable called name; throws NOT_FOUND naming it when absent.
  CheckpointVariable variable(const std::string &name) const {
    size_t index = 0;
    kiln::detail::check(kiln_checkpoint_reader_find(&index, get(), name.c_str()));
    return variable(index);
  }
  /// name -> shape, for every variable.
  std::map<std::string, Dims> get_variable_to_shape_map() const {
    std::map<std::string, Dims> m;
    for (CheckpointVariable &v : variables()) m.emplace(std::move(v.name), std::move(v.shape));
    return m;
  }
  /// name -> TensorFlow's dtype name ("float32", "int64", "string", ...).
  std::map<std::string, std::string> get_variable_to_dtype_map() const {
    std::map<std::string, std::string> m;
    for (CheckpointVariable &v : variables()) m.emplace(std::move(v.name), std::move(v.dtype));
    return m;
  }
  bool has_tensor(const std::string &name) const {
    bool b = false;
    kiln::detail::check(kiln_checkpoint_reader_has_tensor(&b, get(), name.c_str()));
    return b;
  }
  /// The variable's value, its size and CRC32C checked: NOT_FOUND for an unknown name, DATA_LOSS
  /// for corrupt bytes, UNIMPLEMENTED for a dtype kiln has none for (the string object graph).
  Tensor get_tensor(const std::string &name) const {
    kiln_tensor *t = nullptr;
    kiln::detail::check(kiln_checkpoint_reader_get_tensor(&t, get(), name.c_str()));
    return Tensor(t);
  }
};

/// tf.train.load_checkpoint(path): a reader of a prefix or of a directory's latest checkpoint.
inline CheckpointReader load_checkpoint(const std::string &path) { return CheckpointReader(path); }

/// tf.train.list_variables(path): (name, shape) of every variable, sorted by name.
inline std::vector<std::pair<std::string, Dims>> list_variables(const std::string &path) {
  std::vector<std::pair<std::string, Dims>> out;
  for (CheckpointVariable &v : CheckpointReader(path).variables())
    out.emplace_back(std::move(v.name), std::move(v.shape));
  return out;
}

}  // namespace train

// ---- Writing and restoring checkpoints (kiln/checkpoint.h) ----

namespace detail {
template <>
struct handle_traits<kiln_checkpoint> {
  static void destroy(kiln_checkpoint *h) noexcept { kiln_checkpoint_free(h); }
  // No clone: one Checkpoint object per set of tracked objects (move-only).
};
template <>
struct handle_traits<kiln_checkpoint_load_status> {
  static void destroy(kiln_checkpoint_load_status *h) noexcept { kiln_checkpoint_load_status_free(h); }
};
template <>
struct handle_traits<kiln_checkpoint_manager> {
  static void destroy(kiln_checkpoint_manager *h) noexcept { kiln_checkpoint_manager_free(h); }
};
/// A path the C API gave (a new string, or NULL for none), as an optional.
inline std::optional<std::string> take_optional_string(char *s) {
  if (!s) return std::nullopt;
  return take_string(s);
}
}  // namespace detail

/// tf.train.Checkpoint, CheckpointManager, latest_checkpoint and Keras's save_weights /
/// load_weights: TF2's object-based checkpoints, with Keras 2.13's layout, so TensorFlow reads
/// what kiln writes and kiln restores what TensorFlow wrote. Optimizer slots and iterations are
/// saved too, and the global random state when tracked: training resumes bit for bit.
///
///   kiln::train::Checkpoint ckpt({{"model", model}, {"optimizer", model.optimizer()},
///                                 {"rng", kiln::train::get_global_generator()}});
///   kiln::train::CheckpointManager manager(ckpt, "ckpt_dir", 3);   // keep the newest 3
///   manager.restore_or_initialize();
///   ...train...
///   std::string path = manager.save();                               // "ckpt_dir/ckpt-1"
///   ckpt.restore("ckpt_dir").assert_existing_objects_matched();      // a later process
namespace train {

/// What a restore matched (TF's CheckpointLoadStatus; move-only). The checks return the status,
/// so they chain: ckpt.restore(path).expect_partial().assert_existing_objects_matched(). Values
/// waiting for objects not made yet (an optimizer's slots) land when those are made. A status
/// destroyed with values no object took warns (kiln_set_warning_callback) unless expect_partial.
class LoadStatus : public kiln::detail::handle<kiln_checkpoint_load_status> {
 public:
  LoadStatus() = default;
  /// Takes ownership of a C handle.
  explicit LoadStatus(kiln_checkpoint_load_status *h) noexcept : handle(h) {}
  /// Values without objects are intended: no warning for them.
  const LoadStatus &expect_partial() const {
    kiln::detail::check(kiln_checkpoint_load_status_expect_partial(get()));
    return *this;
  }
  /// Throws kiln::Error (FAILED_PRECONDITION) naming the values no object took (or still waiting)
  /// and the objects that got no value.
  const LoadStatus &assert_consumed() const {
    kiln::detail::check(kiln_checkpoint_load_status_assert_consumed(get()));
    return *this;
  }
  /// Throws kiln::Error (FAILED_PRECONDITION) naming the tracked objects that got no value.
  const LoadStatus &assert_existing_objects_matched() const {
    kiln::detail::check(kiln_checkpoint_load_status_assert_existing_objects_matched(get()));
    return *this;
  }
  /// Throws kiln::Error (FAILED_PRECONDITION) when nothing below the root matched.
  const LoadStatus &assert_nontrivial_match() const {
    kiln::detail::check(kiln_checkpoint_load_status_assert_nontrivial_match(get()));
    return *this;
  }
  /// The checkpoint prefix restored from.
  std::string path() const { return info().get_string("path"); }
  /// Values restored so far (waiting ones count once they land).
  int64_t restored_count() const { return info().get_int("restored_count"); }
  /// Checkpoint paths no object took ("optimizer/_iterations", ...).
  std::vector<std::string> unmatched_values() const { return info().get_string_list("unmatched_values"); }
  /// Checkpoint paths waiting for their objects (an optimizer's slots before its first step).
  std::vector<std::string> pending_values() const { return info().get_string_list("pending_values"); }
  /// Tracked objects that got no value.
  std::vector<std::string> unmatched_objects() const { return info().get_string_list("unmatched_objects"); }

 private:
  Config info() const {
    kiln_config *c = nullptr;
    kiln::detail::check(kiln_checkpoint_load_status_get_info(&c, get()));
    return Config(c);
  }
};

class Checkpoint;

/// The global random state, TF's tf.random.get_global_generator(): the global seed (set_seed),
/// the draws made of the global op-seed sequence (random ops, Dropout and shuffles without a seed)
/// and the calls made with each op seed. Tracked in a Checkpoint ({"rng", get_global_generator()})
/// it is saved as one int64 variable `rng/_state-<k>/...`, and a restore replaces the whole state,
/// so what is drawn after the restore is what was drawn after the save, also in a fresh process.
/// There is one state per library; this value only names it.
struct GlobalGenerator {};
/// The global random state, to track in a Checkpoint. Thread-safety: safe.
inline GlobalGenerator get_global_generator() { return GlobalGenerator{}; }

/// An object a Checkpoint tracks: a model or layer, an optimizer, a variable, another
/// Checkpoint, or the global random state (converted implicitly, for Checkpoint's {name, object}
/// pairs). It refers to the object only until it is tracked.
class Trackable {
 public:
  // Implicit on purpose: {"model", model} pairs name the objects themselves.
  Trackable(const Layer &layer)
      : track_([&layer](kiln_checkpoint *c, const char *name) {
          return kiln_checkpoint_track_layer(c, name, layer.get());
        }) {}
  Trackable(const optimizers::Optimizer &optimizer)
      : track_([&optimizer](kiln_checkpoint *c, const char *name) {
          return kiln_checkpoint_track_optimizer(c, name, optimizer.get());
        }) {}
  Trackable(const Variable &variable)
      : track_([&variable](kiln_checkpoint *c, const char *name) {
          return kiln_checkpoint_track_variable(c, name, variable.get());
        }) {}
  Trackable(const Checkpoint &checkpoint);
  Trackable(GlobalGenerator)
      : track_(
            [](kiln_checkpoint *c, const char *name) { return kiln_checkpoint_track_global_rng(c, name); }) {}

  /// Tracks the object in checkpoint c under name.
  void track_in(kiln_checkpoint *c, const std::string &name) const {
    kiln::detail::check(track_(c, name.c_str()));
  }

 private:
  std::function<kiln_status *(kiln_checkpoint *, const char *)> track_;
};

/// tf.train.Checkpoint(model=..., optimizer=...): named objects saved and restored together
/// (move-only). Calls on one checkpoint are serialised inside.
class Checkpoint : public kiln::detail::handle<kiln_checkpoint> {
 public:
  /// Tracks each {name, object} pair, in name order as TensorFlow orders keyword arguments.
  /// Throws kiln::Error (INVALID_ARGUMENT) for an empty or repeated name, "save_counter", or an
  /// empty handle.
  explicit Checkpoint(std::vector<std::pair<std::string, Trackable>> objects = {}) {
    kiln_checkpoint *h = nullptr;
    kiln::detail::check(kiln_checkpoint_create(&h));
    *this = Checkpoint(h);
    std::stable_sort(objects.begin(), objects.end(),
                     [](const auto &a, const auto &b) { return a.first < b.first; });
    for (size_t i = 0; i < objects.size(); ++i) {
      if (i > 0 && objects[i - 1].first == objects[i].first)
        throw Error(KILN_STATUS_INVALID_ARGUMENT,
                    "Checkpoint: two objects are named '" + objects[i].first + "'");
      objects[i].second.track_in(get(), objects[i].first);
    }
  }
  /// Takes ownership of a C handle.
  explicit Checkpoint(kiln_checkpoint *h) noexcept : handle(h) {}

  /// Tracks another object under name, or replaces the one under it (TF's `ckpt.name = object`).
  void track(const std::string &name, const Trackable &object) { object.track_in(get(), name); }
  /// save_counter += 1, writes "<file_prefix>-<save_counter>", records it in the directory's
  /// `checkpoint` state file; returns that path ("dir/ckpt-3").
  std::string save(const std::string &file_prefix) {
    char *path = nullptr;
    kiln::detail::check(kiln_checkpoint_save(&path, get(), file_prefix.c_str()));
    return kiln::detail::take_string(path);
  }
  /// Writes exactly file_prefix; neither save_counter nor the state file changes.
  std::string write(const std::string &file_prefix) {
    char *path = nullptr;
    kiln::detail::check(kiln_checkpoint_write(&path, get(), file_prefix.c_str()));
    return kiln::detail::take_string(path);
  }
  /// Restores from a prefix, or from a directory's latest checkpoint (save_counter too). Throws
  /// kiln::Error (NOT_FOUND, INVALID_ARGUMENT naming both shapes, DATA_LOSS) and changes nothing
  /// then.
  LoadStatus restore(const std::string &save_path) {
    kiln_checkpoint_load_status *s = nullptr;
    kiln::detail::check(kiln_checkpoint_restore(&s, get(), save_path.c_str()));
    return LoadStatus(s);
  }
  /// Restores from exactly the prefix save_path (write's counterpart).
  LoadStatus read(const std::string &save_path) {
    kiln_checkpoint_load_status *s = nullptr;
    kiln::detail::check(kiln_checkpoint_read(&s, get(), save_path.c_str()));
    return LoadStatus(s);
  }
  /// The number of saves (restored by restore); 0 before the first save or restore.
  int64_t save_counter() const {
    int64_t n = 0;
    kiln::detail::check(kiln_checkpoint_get_save_counter(&n, get()));
    return n;
  }
};

inline Trackable::Trackable(const Checkpoint &checkpoint)
    : track_([&checkpoint](kiln_checkpoint *c, const char *name) {
        return kiln_checkpoint_track_checkpoint(c, name, checkpoint.get());
      }) {}

/// tf.train.CheckpointManager(checkpoint, directory, max_to_keep, keep_checkpoint_every_n_hours,
/// checkpoint_name): numbered saves of a checkpoint in directory, the newest max_to_keep kept
/// (std::nullopt: all) and the rest deleted, listed in the directory's `checkpoint` state file, so
/// a manager made later on the directory (or TensorFlow) carries on (move-only). The manager
/// keeps the checkpoint's objects alive.
class CheckpointManager : public kiln::detail::handle<kiln_checkpoint_manager> {
 public:
  CheckpointManager(const Checkpoint &checkpoint, const std::string &directory,
                    std::optional<int64_t> max_to_keep,
                    std::optional<double> keep_checkpoint_every_n_hours = std::nullopt,
                    const std::string &checkpoint_name = "ckpt") {
    Config options;
    if (max_to_keep)
      options.set("max_to_keep", *max_to_keep);
    else
      options.set_null("max_to_keep");
    if (keep_checkpoint_every_n_hours)
      options.set("keep_checkpoint_every_n_hours", *keep_checkpoint_every_n_hours);
    options.set("checkpoint_name", checkpoint_name);
    kiln_checkpoint_manager *h = nullptr;
    kiln::detail::check(
        kiln_checkpoint_manager_create(&h, checkpoint.get(), directory.c_str(), options.get()));
    *this = CheckpointManager(h);
  }
  /// Takes ownership of a C handle.
  explicit CheckpointManager(kiln_checkpoint_manager *h) noexcept : handle(h) {}

  /// Saves "<directory>/<checkpoint_name>-<n>" (n: checkpoint_number, else the checkpoint's
  /// save_counter after it goes up by one), deletes those past max_to_keep; returns the path.
  std::string save(std::optional<int64_t> checkpoint_number = std::nullopt) {
    if (checkpoint_number && *checkpoint_number < 0)
      throw Error(KILN_STATUS_INVALID_ARGUMENT,
                  "CheckpointManager::save: checkpoint_number must be >= 0; got " +
                      std::to_string(*checkpoint_number));
    char *path = nullptr;
    kiln::detail::check(
        kiln_checkpoint_manager_save(&path, get(), checkpoint_number ? *checkpoint_number : -1));
    return kiln::detail::take_string(path);
  }
  /// The newest checkpoint's prefix; empty before any.
  std::optional<std::string> latest_checkpoint() const {
    char *path = nullptr;
    kiln::detail::check(kiln_checkpoint_manager_get_latest_checkpoint(&path, get()));
    return kiln::detail::take_optional_string(path);
  }
  /// The checkpoints kept, oldest first.
  std::vector<std::string> checkpoints() const {
    kiln_config *c = nullptr;
    kiln::detail::check(kiln_checkpoint_manager_get_checkpoints(&c, get()));
    return Config(c).get_string_list("checkpoints");
  }
  std::string directory() const {
    const char *s = nullptr;
    kiln::detail::check(kiln_checkpoint_manager_get_directory(&s, get()));
    return s;
  }
  /// Restores the latest checkpoint and returns its path, or returns empty when there is none
  /// (the objects keep their initial values).
  std::optional<std::string> restore_or_initialize() {
    char *path = nullptr;
    kiln::detail::check(kiln_checkpoint_manager_restore_or_initialize(&path, get()));
    return kiln::detail::take_optional_string(path);
  }
};

/// tf.train.latest_checkpoint(checkpoint_dir): the prefix the directory's `checkpoint` state file
/// names as newest; empty when there is none.
inline std::optional<std::string> latest_checkpoint(const std::string &checkpoint_dir) {
  char *path = nullptr;
  kiln::detail::check(kiln_latest_checkpoint(&path, checkpoint_dir.c_str()));
  return kiln::detail::take_optional_string(path);
}

}  // namespace train

inline void Model::save_weights(const std::string &filepath) {
  detail::check(kiln_model_save_weights(get(), filepath.c_str()));
}

inline train::LoadStatus Model::load_weights(const std::string &filepath) {
  kiln_checkpoint_load_status *s = nullptr;
  detail::check(kiln_model_load_weights(&s, get(), filepath.c_str()));
  return train::LoadStatus(s);
}

// ---- Pretrained values by name: init_from_checkpoint (kiln/init_from_checkpoint.h) ----

namespace train {

/// One pair of an assignment map (tf.compat.v1.train.init_from_checkpoint's dict entry): a
/// checkpoint name, or a scope ending in '/' ("/" for the root), and the variable, the variable's
/// name, or the variable scope ("/" for every variable) it goes to. Scopes pair with scopes.
struct CheckpointAssignment {
  std::string checkpoint_name;
  std::string variable_name;  ///< empty when variable is given
  Variable variable;          ///< an empty handle when variable_name is given
  CheckpointAssignment(std::string checkpoint, std::string variable_name_or_scope)
      : checkpoint_name(std::move(checkpoint)), variable_name(std::move(variable_name_or_scope)) {}
  CheckpointAssignment(std::string checkpoint, const char *variable_name_or_scope)
      : CheckpointAssignment(std::move(checkpoint), std::string(variable_name_or_scope)) {}
  CheckpointAssignment(std::string checkpoint, const Variable &target)
      : checkpoint_name(std::move(checkpoint)), variable(target) {}
};

/// The switches of kiln_init_from_checkpoint_options (see kiln/init_from_checkpoint.h).
struct InitFromCheckpointOptions {
  bool skip_optimizer_state = true;  ///< leave out adam_m/adam_v/global_step/... unless named
  bool allow_missing = false;        ///< a name the checkpoint lacks: listed in missing, not NOT_FOUND
  bool skip_mismatched = false;      ///< a dtype/shape that does not fit: listed in mismatched
  bool allow_reshape = false;        ///< [H, H] into [H, heads, H / heads] and the like
};

/// What init_from_checkpoint did.
struct InitFromCheckpointReport {
  struct Match {
    std::string checkpoint_name, checkpoint_key, variable;
    Dims checkpoint_shape;
    bool reshaped = false;
  };
  struct Mismatch {
    std::string checkpoint_name, variable, checkpoint_dtype, variable_dtype;
    Dims checkpoint_shape, variable_shape;
  };
  struct Missing {
    std::string checkpoint_name, variable;
  };
  std::string checkpoint;  ///< the prefix read
  std::vector<Match> matched;
  std::vector<std::string> unmatched_checkpoint_names;  ///< names no pair took, in key order
  std::vector<std::string> skipped_checkpoint_names;    ///< optimizer state, the object graph
  std::vector<std::string> unmatched_variables;         ///< the model's / list's variables left as they were
  std::vector<Missing> missing;                         ///< allow_missing
  std::vector<Mismatch> mismatched;                     ///< skip_mismatched
  std::string summary;                                  ///< a readable account of all of it
};

}  // namespace train

namespace detail {
// The C call behind train::init_from_checkpoint; the report comes back as a config.
inline train::InitFromCheckpointReport init_from_checkpoint_impl(
    const std::string &ckpt_dir_or_file, const std::vector<train::CheckpointAssignment> &assignment_map,
    const kiln_layer *model, const std::vector<Variable> &variables,
    const train::InitFromCheckpointOptions &options) {
  std::vector<kiln_variable *> vars;
  for (const Variable &v : variables) vars.push_back(v.get());
  std::vector<const char *> ckpt_names, var_names;
  std::vector<kiln_variable *> targets;
  for (const train::CheckpointAssignment &a : assignment_map) {
    ckpt_names.push_back(a.checkpoint_name.c_str());
    var_names.push_back(a.variable.valid() ? nullptr : a.variable_name.c_str());
    targets.push_back(a.variable.get());
  }
  kiln_init_from_checkpoint_options o;
  check(kiln_init_from_checkpoint_options_init(&o, sizeof o));
  o.skip_optimizer_state = options.skip_optimizer_state;
  o.allow_missing = options.allow_missing;
  o.skip_mismatched = options.skip_mismatched;
  o.allow_reshape = options.allow_reshape;
  kiln_config *report = nullptr;
  check(kiln_init_from_checkpoint(&report, model, vars.data(), vars.size(), ckpt_dir_or_file.c_str(),
                                  ckpt_names.data(), var_names.data(), targets.data(), assignment_map.size(),
                                  &o));
  Config c(report);
  train::InitFromCheckpointReport r;
  r.checkpoint = c.get_string("checkpoint");
  for (const Config &m : c.get_config_list("matched"))
    r.matched.push_back(train::InitFromCheckpointReport::Match{
        m.get_string("checkpoint_name"), m.get_string("checkpoint_key"), m.get_string("variable"),
        m.get_int_list("checkpoint_shape"), m.get_bool("reshaped")});
  r.unmatched_checkpoint_names = c.get_string_list("unmatched_checkpoint_names");
  r.skipped_checkpoint_names = c.get_string_list("skipped_checkpoint_names");
  r.unmatched_variables = c.get_string_list("unmatched_variables");
  for (const Config &m : c.get_config_list("missing"))
    r.missing.push_back(
        train::InitFromCheckpointReport::Missing{m.get_string("checkpoint_name"), m.get_string("variable")});
  for (const Config &m : c.get_config_list("mismatched"))
    r.mismatched.push_back(train::InitFromCheckpointReport::Mismatch{
        m.get_string("checkpoint_name"), m.get_string("variable"), m.get_string("checkpoint_dtype"),
        m.get_string("variable_dtype"), m.get_int_list("checkpoint_shape"),
        m.get_int_list("variable_shape")});
  r.summary = c.get_string("summary");
  return r;
}
}  // namespace detail

namespace train {

/// tf.compat.v1.train.init_from_checkpoint(ckpt_dir_or_file, assignment_map) into a model:
/// variable names and scopes are looked up among model.variables() (build the model first).
/// Throws as kiln_init_from_checkpoint (nothing changes then).
///
///   auto report = kiln::train::init_from_checkpoint("bert_model.ckpt",
///       {{"bert/embeddings/word_embeddings", "bert/embeddings/word_embeddings/embeddings"},
///        {"bert/pooler/dense/", "bert/pooler/"}}, model);
///   std::cout << report.summary;
inline InitFromCheckpointReport init_from_checkpoint(const std::string &ckpt_dir_or_file,
                                                     const std::vector<CheckpointAssignment> &assignment_map,
                                                     const Layer &model,
                                                     const InitFromCheckpointOptions &options = {}) {
  return kiln::detail::init_from_checkpoint_impl(ckpt_dir_or_file, assignment_map, model.get(), {}, options);
}
/// The same with names looked up among variables.
inline InitFromCheckpointReport init_from_checkpoint(const std::string &ckpt_dir_or_file,
                                                     const std::vector<CheckpointAssignment> &assignment_map,
                                                     const std::vector<Variable> &variables,
                                                     const InitFromCheckpointOptions &options = {}) {
  return kiln::detail::init_from_checkpoint_impl(ckpt_dir_or_file, assignment_map, nullptr, variables,
                                                 options);
}

}  // namespace train

// ---- The SavedModel (kiln/saved_model.h) ----

/// tf.saved_model: a model written to a directory with its architecture (the layers' configs),
/// weights, compile state and serving signatures, loaded back without the code that defined it
/// and served from any number of threads.
///
///   kiln::saved_model::save(model, "export");                 // or model.save("export")
///   kiln::saved_model::SavedModel loaded = kiln::saved_model::load("export");
///   kiln::saved_model::Signature serve = loaded.signature("serving_default");
///   kiln::Tensor probabilities = serve(images);                // one input, one output
///   kiln::Model again = kiln::models::load_model("export");    // predict, evaluate, fit
namespace saved_model {

/// A signature's tensor: name, dtype, dims (-1 unknown).
struct TensorSpec {
  std::string name;
  DType dtype = DType::float32;
  Dims shape;
};

/// The serving_default signature's specs: one input spec per model input (an empty name or
/// shape keeps the default: Keras's names, the built shape with the batch dim unknown), and one
/// output name per output. Empty lists keep every default.
struct SaveOptions {
  std::vector<TensorSpec> inputs;
  std::vector<std::string> output_names;
};

/// tf.saved_model.save(model, export_dir): see kiln_saved_model_save (atomic; replaces an
/// earlier SavedModel there; refuses a directory of other files). Throws kiln::Error.
inline void save(const Layer &model, const std::string &export_dir, const SaveOptions &options = {}) {
  Config c;
  if (!options.inputs.empty()) {
    std::vector<Config> inputs;
    for (const TensorSpec &s : options.inputs) {
      Config spec;
      if (!s.name.empty()) spec.set("name", s.name);
      spec.set("dtype", std::string(detail::dtype_name(s.dtype)));
      if (!s.shape.empty()) spec.set("shape", s.shape);
      inputs.push_back(std::move(spec));
    }
    c.set("inputs", inputs);
  }
  if (!options.output_names.empty()) c.set("output_names", options.output_names);
  detail::check(kiln_saved_model_save(model.get(), export_dir.c_str(), c.get()));
}

/// A signature of a loaded SavedModel (TF's .signatures[key]). Copies share the SavedModel, which
/// stays alive while any of them does. Thread-safe.
class Signature {
 public:
  const std::string &key() const { return key_; }
  const std::vector<TensorSpec> &inputs() const { return inputs_; }
  const std::vector<TensorSpec> &outputs() const { return outputs_; }
  /// Runs the model on one tensor per input (the signature's order); the outputs in its order.
  std::vector<Tensor> operator()(const std::vector<Tensor> &inputs) const {
    std::vector<const kiln_tensor *> in;
    for (const Tensor &t : inputs) in.push_back(t.get());
    kiln_tensor_list *out = nullptr;
    detail::check(kiln_saved_model_signature_run(&out, sig_, in.data(), in.size()));
    detail::handle<kiln_tensor_list> owned(out);
    return detail::from_list(out);
  }
  /// A signature with one input and one output.
  Tensor operator()(const Tensor &input) const {
    std::vector<Tensor> out = (*this)(std::vector<Tensor>{input});
    if (out.size() != 1)
      throw Error(KILN_STATUS_INVALID_ARGUMENT, "signature '" + key_ + "' has " + std::to_string(out.size()) +
                                                    " outputs; call it with a vector to get them all");
    return out[0];
  }
  /// TF's signature(**inputs): inputs by name, outputs by name.
  std::map<std::string, Tensor> operator()(const std::map<std::string, Tensor> &inputs) const {
    std::vector<const char *> names;
    std::vector<const kiln_tensor *> in;
    for (const auto &item : inputs) {
      names.push_back(item.first.c_str());
      in.push_back(item.second.get());
    }
    kiln_tensor_list *out = nullptr;
    detail::check(kiln_saved_model_signature_run_named(&out, sig_, names.data(), in.data(), in.size()));
    detail::handle<kiln_tensor_list> owned(out);
    std::vector<Tensor> values = detail::from_list(out);
    std::map<std::string, Tensor> result;
    for (size_t i = 0; i < values.size() && i < outputs_.size(); ++i) result[outputs_[i].name] = values[i];
    return result;
  }

 private:
  friend class SavedModel;
  static std::vector<TensorSpec> specs(const kiln_saved_model_signature *sig, bool outputs) {
    size_t n = 0;
    detail::check(outputs ? kiln_saved_model_signature_get_num_outputs(&n, sig)
                          : kiln_saved_model_signature_get_num_inputs(&n, sig));
    std::vector<TensorSpec> r;
    for (size_t i = 0; i < n; ++i) {
      const char *name = nullptr;
      kiln_dtype dtype = KILN_DTYPE_FLOAT32;
      int64_t dims[KILN_MAX_RANK];
      size_t rank = 0;
      detail::check(
          outputs ? kiln_saved_model_signature_get_output(&name, &dtype, dims, KILN_MAX_RANK, &rank, sig, i)
                  : kiln_saved_model_signature_get_input(&name, &dtype, dims, KILN_MAX_RANK, &rank, sig, i));
      r.push_back(TensorSpec{name, static_cast<DType>(dtype),
                             Dims(dims, dims + std::min<size_t>(rank, KILN_MAX_RANK))});
    }
    return r;
  }
  Signature(std::shared_ptr<kiln_saved_model> owner, const kiln_saved_model_signature *sig, std::string key)
      : owner_(std::move(owner)),
        sig_(sig),
        key_(std::move(key)),
        inputs_(specs(sig, false)),
        outputs_(specs(sig, true)) {}
  std::shared_ptr<kiln_saved_model> owner_;
  const kiln_saved_model_signature *sig_;
  std::string key_;
  std::vector<TensorSpec> inputs_, outputs_;
};

/// A loaded SavedModel (tf.saved_model.load): the model and its signatures.
class SavedModel {
 public:
  /// Takes ownership of a C handle.
  explicit SavedModel(kiln_saved_model *h) : h_(h, kiln_saved_model_free) {}
  /// The model, for predict, evaluate, fit and the rest.
  Model model() const {
    kiln_layer *m = nullptr;
    detail::check(kiln_saved_model_get_model(&m, h_.get()));
    return Model(m);
  }
  /// The kiln version that wrote it.
  std::string kiln_version() const {
    const char *v = nullptr;
    detail::check(kiln_saved_model_get_kiln_version(&v, h_.get()));
    return v;
  }
  std::vector<std::string> signature_keys() const {
    size_t n = 0;
    detail::check(kiln_saved_model_get_num_signatures(&n, h_.get()));
    std::vector<std::string> keys;
    for (size_t i = 0; i < n; ++i) {
      const char *k = nullptr;
      detail::check(kiln_saved_model_get_signature_key(&k, h_.get(), i));
      keys.emplace_back(k);
    }
    return keys;
  }
  /// The signature under key; throws kiln::Error (NOT_FOUND listing the keys) otherwise.
  Signature signature(const std::string &key = "serving_default") const {
    const kiln_saved_model_signature *sig = nullptr;
    detail::check(kiln_saved_model_get_signature(&sig, h_.get(), key.c_str()));
    return Signature(h_, sig, key);
  }
  /// Every signature by key (TF's .signatures).
  std::map<std::string, Signature> signatures() const {
    std::map<std::string, Signature> r;
    for (const std::string &k : signature_keys()) r.emplace(k, signature(k));
    return r;
  }
  const kiln_saved_model *get() const noexcept { return h_.get(); }

 private:
  std::shared_ptr<kiln_saved_model> h_;
};

/// tf.saved_model.load(export_dir); compile=false leaves the model uncompiled. inference_weights
/// "bfloat16" or "int8" makes the Dense layers read their kernels rounded to bfloat16 or
/// quantized to int8 in calls no tape records with at most 8 rows (faster batch-1 serving;
/// bfloat16 within about 2^-9 relative, int8 TFLite-style dynamic-range quantization with its
/// error bound in kiln_saved_model_load); "float32" (the default) keeps the saved bits. Throws kiln::Error
/// (NOT_FOUND, DATA_LOSS naming the damaged file, INVALID_ARGUMENT for another inference_weights).
inline SavedModel load(const std::string &export_dir, bool compile = true,
                       const std::string &inference_weights = "float32") {
  Config c;
  c.set("compile", compile);
  c.set("inference_weights", inference_weights);
  kiln_saved_model *h = nullptr;
  detail::check(kiln_saved_model_load(&h, export_dir.c_str(), c.get()));
  return SavedModel(h);
}

}  // namespace saved_model

/// TensorBoard logging (tf.summary): event files TensorBoard opens unchanged. Each thread has a
/// stack of default writers (SummaryWriter::as_default) and a default step (set_step); the
/// summary functions write to the thread's default writer and return false when it has none.
///
///   auto writer = kiln::summary::create_file_writer("logs/run1");
///   auto scope = writer.as_default();
///   kiln::summary::set_step(optimizer);                 // step = optimizer.iterations
///   kiln::summary::scalar("loss", mean.result());
namespace summary {

/// tf.summary.create_file_writer's arguments and defaults.
struct WriterOptions {
  int64_t max_queue = 10;
  int64_t flush_millis = 120000;
  std::string filename_suffix = ".v2";
};

namespace detail {
inline const int64_t *step_ptr(const std::optional<int64_t> &step) { return step ? &*step : nullptr; }
inline const char *text_ptr(const std::string &s) { return s.empty() ? nullptr : s.c_str(); }
}  // namespace detail

/// The scope of SummaryWriter::as_default: pops the writer (and restores the default step the
/// push replaced) when it ends. Move-only.
class DefaultScope {
 public:
  DefaultScope(DefaultScope &&o) noexcept : active_(std::exchange(o.active_, false)) {}
  DefaultScope(const DefaultScope &) = delete;
  DefaultScope &operator=(const DefaultScope &) = delete;
  DefaultScope &operator=(DefaultScope &&) = delete;
  ~DefaultScope() {
    if (active_) kiln_status_free(kiln_summary_writer_pop_default());
  }

 private:
  friend class SummaryWriter;
  DefaultScope() = default;
  bool active_ = true;
};

/// tf.summary.SummaryWriter. Copies share the writer; it closes when the last copy (and any
/// default-writer stack holding it) lets go.
class SummaryWriter : public kiln::detail::handle<kiln_summary_writer> {
 public:
  SummaryWriter() = default;
  explicit SummaryWriter(kiln_summary_writer *h) : handle(h) {}
  /// Blocks until every summary written so far is in the file.
  void flush() const { kiln::detail::check(kiln_summary_writer_flush(get())); }
  void close() const { kiln::detail::check(kiln_summary_writer_close(get())); }
  std::string path() const {
    return kiln::detail::handle_string(kiln_summary_writer_get_path(get()), "kiln::SummaryWriter::path");
  }
  std::string logdir() const {
    return kiln::detail::handle_string(kiln_summary_writer_get_logdir(get()), "kiln::SummaryWriter::logdir");
  }
  /// writer.as_default(step): this writer is the thread's default until the scope ends.
  [[nodiscard]] DefaultScope as_default(std::optional<int64_t> step = std::nullopt) const {
    kiln::detail::check(kiln_summary_writer_push_default(get(), detail::step_ptr(step)));
    return DefaultScope();
  }
  /// writer.set_as_default(step): the thread's default from now on.
  void set_as_default(std::optional<int64_t> step = std::nullopt) const {
    kiln::detail::check(kiln_summary_writer_push_default(get(), detail::step_ptr(step)));
  }
};

inline SummaryWriter create_file_writer(const std::string &logdir, const WriterOptions &options = {}) {
  kiln_summary_writer_options o;
  kiln::detail::check(kiln_summary_writer_options_init(&o, sizeof o));
  o.max_queue = options.max_queue;
  o.flush_millis = options.flush_millis;
  o.filename_suffix = options.filename_suffix.c_str();
  kiln_summary_writer *h = nullptr;
  kiln::detail::check(kiln_summary_create_file_writer(&h, logdir.c_str(), &o));
  return SummaryWriter(h);
}

/// tf.summary.experimental.set_step / get_step (per thread): a number, a variable, or an
/// optimizer's iterations (read at each summary).
inline void set_step(int64_t step) { kiln::detail::check(kiln_summary_set_step(step)); }
inline void set_step(const Variable &variable) {
  kiln::detail::check(kiln_summary_set_step_variable(variable.get()));
}
inline void set_step(const optimizers::Optimizer &optimizer);
inline void clear_step() { kiln::detail::check(kiln_summary_clear_step()); }
inline std::optional<int64_t> get_step() {
  int64_t s = 0;
  bool has = false;
  kiln::detail::check(kiln_summary_get_step(&s, &has));
  return has ? std::optional<int64_t>(s) : std::nullopt;
}
/// tf.summary.record_if(condition) for this thread.
inline void record_if(bool condition) { kiln::detail::check(kiln_summary_record_if(condition)); }
/// tf.summary.should_record_summaries: a default writer and recording on.
inline bool should_record_summaries() {
  bool out = false;
  kiln::detail::check(kiln_summary_should_record(&out));
  return out;
}

inline bool scalar(const std::string &tag, double value, std::optional<int64_t> step = std::nullopt,
                   const std::string &description = "") {
  bool w = false;
  kiln::detail::check(
      kiln_summary_scalar(tag.c_str(), value, detail::step_ptr(step), detail::text_ptr(description), &w));
  return w;
}
inline bool histogram(const std::string &tag, const Tensor &data, std::optional<int64_t> step = std::nullopt,
                      int64_t buckets = 30, const std::string &description = "") {
  bool w = false;
  kiln::detail::check(kiln_summary_histogram(tag.c_str(), data.get(), detail::step_ptr(step), buckets,
                                             detail::text_ptr(description), &w));
  return w;
}
inline bool image(const std::string &tag, const Tensor &data, std::optional<int64_t> step = std::nullopt,
                  int64_t max_outputs = 3, const std::string &description = "") {
  bool w = false;
  kiln::detail::check(kiln_summary_image(tag.c_str(), data.get(), detail::step_ptr(step), max_outputs,
                                         detail::text_ptr(description), &w));
  return w;
}
inline bool text(const std::string &tag, const std::string &data, std::optional<int64_t> step = std::nullopt,
                 const std::string &description = "") {
  bool w = false;
  kiln::detail::check(kiln_summary_text(tag.c_str(), data.c_str(), detail::step_ptr(step),
                                        detail::text_ptr(description), &w));
  return w;
}
/// hp.hparams: this run's hyperparameter values (name -> number, bool or string).
inline bool hparams(const Config &values, const std::string &trial_id = "") {
  bool w = false;
  kiln::detail::check(kiln_summary_hparams(values.get(), detail::text_ptr(trial_id), &w));
  return w;
}
inline bool hparams_end(const std::string &status = "success") {
  bool w = false;
  kiln::detail::check(kiln_summary_hparams_end(status.c_str(), &w));
  return w;
}
/// hp.hparams_config: {"hparams": [...], "metrics": [...]} (see kiln_summary_hparams_config).
inline bool hparams_config(const Config &config) {
  bool w = false;
  kiln::detail::check(kiln_summary_hparams_config(config.get(), &w));
  return w;
}
/// tf.summary.trace_on / trace_export / trace_off: per-op timings of what this thread runs.
inline void trace_on() { kiln::detail::check(kiln_summary_trace_on()); }
inline bool trace_export(const std::string &name, std::optional<int64_t> step = std::nullopt) {
  bool w = false;
  kiln::detail::check(kiln_summary_trace_export(name.c_str(), detail::step_ptr(step), &w));
  return w;
}
inline void trace_off() { kiln::detail::check(kiln_summary_trace_off()); }
/// Reads an event file, verifying every record's CRCs (see kiln_summary_read_events).
inline Config read_events(const std::string &path) {
  kiln_config *h = nullptr;
  kiln::detail::check(kiln_summary_read_events(&h, path.c_str()));
  return Config(h);
}

}  // namespace summary

namespace models {
/// keras.models.load_model(export_dir, compile=True): the model of a SavedModel.
/// inference_weights as in saved_model::load.
inline Model load_model(const std::string &export_dir, bool compile = true,
                        const std::string &inference_weights = "float32") {
  Config c;
  c.set("compile", compile);
  c.set("inference_weights", inference_weights);
  kiln_layer *h = nullptr;
  detail::check(kiln_saved_model_load_model(&h, export_dir.c_str(), c.get()));
  return Model(h);
}
}  // namespace models

inline void Model::save(const std::string &export_dir) const { saved_model::save(*this, export_dir); }

inline void summary::set_step(const optimizers::Optimizer &optimizer) {
  kiln::detail::check(kiln_summary_set_step_optimizer(optimizer.get()));
}

/// Data-parallel training over MPI (kiln/distributed.h): link libkiln_mpi (-lkiln_mpi) to use it.
///
///   kiln::distributed::init();
///   model.fit(x, y, kiln::FitOptions().with_batch_size(128).with_distribution(kiln::distributed::world()));
///   // a custom loop: kiln::distributed::DistributedOptimizer(opt); world().broadcast_variables(vars);
namespace distributed {
/// hvd.init(): starts MPI or attaches to it. timeout_seconds < 0 and threads_per_process < 0 keep
/// the defaults (300 s or KILN_DIST_TIMEOUT_SECONDS; the processors shared among the local ranks).
inline void init(double timeout_seconds = -1, int threads_per_process = -1) {
  Config c;
  if (timeout_seconds >= 0) c.set("timeout_seconds", timeout_seconds);
  if (threads_per_process >= 0) c.set("threads_per_process", static_cast<int64_t>(threads_per_process));
  kiln::detail::check(kiln_dist_init(c.get()));
}
inline void finalize() { kiln::detail::check(kiln_dist_finalize()); }
inline bool is_initialized() { return kiln_dist_is_initialized(); }
[[noreturn]] inline void abort(int code = 1) {
  kiln_dist_abort(code);
  std::abort();
}
namespace detail {
inline int get_int(kiln_status *(*fn)(int *)) {
  int out = 0;
  kiln::detail::check(fn(&out));
  return out;
}
}  // namespace detail
inline int rank() { return detail::get_int(kiln_dist_rank); }
inline int size() { return detail::get_int(kiln_dist_size); }
inline int local_rank() { return detail::get_int(kiln_dist_local_rank); }
inline int local_size() { return detail::get_int(kiln_dist_local_size); }
/// The element-wise "mean" (default, Horovod's) or "sum" of t over the ranks.
inline Tensor allreduce(const Tensor &t, const std::string &op = "mean") {
  kiln_tensor *h = nullptr;
  kiln::detail::check(kiln_dist_allreduce(&h, t.get(), op.c_str()));
  return Tensor(h);
}
/// allreduce in place on a variable (Horovod's allreduce_).
inline void allreduce_(Variable &v, const std::string &op = "mean") {
  kiln::detail::check(kiln_dist_allreduce_variable(v.get(), op.c_str()));
}
/// root's t on every rank.
inline Tensor broadcast(const Tensor &t, int root = 0) {
  kiln_tensor *h = nullptr;
  kiln::detail::check(kiln_dist_broadcast(&h, t.get(), root));
  return Tensor(h);
}
/// The ranks' tensors concatenated along axis 0 in rank order.
inline Tensor allgather(const Tensor &t) {
  kiln_tensor *h = nullptr;
  kiln::detail::check(kiln_dist_allgather(&h, t.get()));
  return Tensor(h);
}
inline void barrier() { kiln::detail::check(kiln_dist_barrier()); }
/// The communicator over every rank (for FitOptions::with_distribution and set_distributed).
inline Communicator world() {
  kiln_communicator *h = nullptr;
  kiln::detail::check(kiln_dist_communicator(&h));
  return Communicator(h);
}
/// hvd.broadcast_variables over world().
inline void broadcast_variables(const std::vector<Variable> &vars, int root = 0) {
  world().broadcast_variables(vars, root);
}
/// hvd.DistributedOptimizer: opt averages (or sums) its gradients over the ranks from now on;
/// returns it (the same optimizer).
inline optimizers::Optimizer DistributedOptimizer(const optimizers::Optimizer &opt,
                                                  const std::string &op = "mean",
                                                  int64_t fusion_threshold_bytes = int64_t{64} << 20,
                                                  bool overlap = true) {
  optimizers::Optimizer o = opt;
  o.set_distributed(world(), op, fusion_threshold_bytes, overlap);
  return o;
}
/// hvd.DistributedGradientTape: tape's gradients come back averaged (or summed) over the ranks,
/// summed in buckets during the backward pass; returns tape. Use a plain optimizer with it.
inline GradientTape &DistributedGradientTape(GradientTape &tape, const std::string &op = "mean",
                                             int64_t fusion_threshold_bytes = int64_t{64} << 20,
                                             bool overlap = true) {
  tape.set_distributed(world(), op, fusion_threshold_bytes, overlap);
  return tape;
}
}  // namespace distributed

}  // namespace kiln

#endif  // KILN_HPP
