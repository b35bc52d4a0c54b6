// Versioned options structs: how every entry point reads the caller's struct, whatever kiln
// version the caller was built against (see "Options structs" in include/kiln/ops.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "core/error.h"

namespace kiln::capi {

// The first version's size of an options struct: the end of its last field, not sizeof (tail
// padding is not part of the contract). Never change a struct's value once released.
#define KILN_OPTIONS_V1_SIZE(type, last_field) (offsetof(type, last_field) + sizeof(type::last_field))

// Checks the struct_size a caller gives for an options struct of type T. `init_call` is the call
// the message advises; NULL: "<type>_init(&options, sizeof options)".
template <typename T>
void require_options_size(size_t struct_size, size_t v1_size, const char *fn, const char *type,
                          const char *init_call = nullptr) {
  if (struct_size < v1_size) {
    if (init_call != nullptr)
      fail(Code::kInvalidArgument, fn, ": ", type, ".struct_size is ", struct_size, "; expected at least ",
           v1_size, " (the first version's size): initialise the struct with ", init_call);
    fail(Code::kInvalidArgument, fn, ": ", type, ".struct_size is ", struct_size, "; expected at least ",
         v1_size, " (the first version's size): initialise the struct with ", type,
         "_init(&options, sizeof options)");
  }
}

// Fills the first struct_size bytes of *options from `defaults` (a complete T) and records
// struct_size: the body of every `<type>_init`.
template <typename T>
void init_options(T *options, size_t struct_size, const T &defaults, size_t v1_size, const char *fn,
                  const char *type) {
  static_assert(std::is_trivially_copyable_v<T>, "options structs are plain C structs");
  if (options == nullptr) fail(Code::kInvalidArgument, fn, ": argument 'options' is NULL");
  require_options_size<T>(struct_size, v1_size, fn, type);
  // A newer caller's struct is larger: its unknown tail is left as the caller's init left it.
  std::memcpy(static_cast<void *>(options), &defaults, std::min(struct_size, sizeof(T)));
  options->struct_size = struct_size;
}

// The options an entry point runs with: `defaults` overwritten by the caller's struct, of which
// only the fields this kiln knows are read (a newer caller's extra fields are ignored, an older
// caller's missing ones keep their defaults). NULL: the defaults. `init_call` as for
// require_options_size.
template <typename T>
T read_options(const T *user, const T &defaults, size_t v1_size, const char *fn, const char *type,
               const char *init_call = nullptr) {
  static_assert(std::is_trivially_copyable_v<T>, "options structs are plain C structs");
  T out = defaults;
  if (user == nullptr) return out;
  require_options_size<T>(user->struct_size, v1_size, fn, type, init_call);
  std::memcpy(static_cast<void *>(&out), user, std::min(user->struct_size, sizeof(T)));
  out.struct_size = sizeof(T);
  return out;
}

}  // namespace kiln::capi
