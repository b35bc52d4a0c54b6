// Helpers shared by the kiln.hpp tests in this folder.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../temp_dir.h"
#include "kiln/kiln.hpp"

namespace kiln::testing {

// A float32 tensor of `shape` whose values repeat with `period`: scale * ((i + shift) % period -
// period / 2), small and varied enough for layer and gradient checks.
inline Tensor sawtooth(const Dims &shape, int64_t period, float scale = 0.1f, int64_t shift = 0) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = scale * static_cast<float>((i + shift) % period - period / 2);
  return Tensor::from_vector(v, shape);
}

// Expects fn to throw a kiln::Error with this code whose message contains fragment.
inline void expect_code(kiln_status_code code, const std::string &fragment, const std::function<void()> &fn) {
  try {
    fn();
    FAIL() << "expected kiln::Error containing '" << fragment << "'";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace kiln::testing
