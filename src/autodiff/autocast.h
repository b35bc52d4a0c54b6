// Keras's AutocastScope for mixed precision: which dtype Variable::value() casts floating
// variables to on this thread.
#pragma once

#include <optional>

#include "core/dtype.h"

namespace kiln::autodiff {

// Keras's AutocastScope (mixed precision): while one is alive on this thread, Variable::value()
// of a floating variable gives its value cast to dtype, through a recorded cast, so gradients
// reach the variable in its own dtype. nullopt turns casting off. Scopes nest; the destructor
// restores the outer one. Layers open one around their call (layers/layer.cc).
class AutocastScope {
 public:
  explicit AutocastScope(std::optional<DType> dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope &) = delete;
  AutocastScope &operator=(const AutocastScope &) = delete;
  // The innermost scope's dtype on this thread, nullopt when none casts.
  static std::optional<DType> current();

 private:
  std::optional<DType> saved_;
};

}  // namespace kiln::autodiff
