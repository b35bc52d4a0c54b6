// Models for the persistence tests (checkpoints, SavedModel, RNG state): Keras's serialized layer
// form and built Sequentials from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "layers/layer.h"
#include "test_util.h"

namespace kiln::testing {

// Keras's serialized form of a layer: {"class_name": cls, "config": cfg}.
inline Config serialized_layer(const std::string &cls, const Config &cfg = Config()) {
  Config ser;
  ser.set("class_name", cls);
  ser.set("config", cfg);
  return ser;
}

// A Dense layer's config: {"units": units, "activation": activation}.
inline Config dense_config(int64_t units, const std::string &activation = "linear") {
  Config c;
  c.set("units", units).set("activation", activation);
  return c;
}

// A Sequential of serialized layers, built for inputs of shape `input` (empty: left unbuilt).
inline layers::LayerPtr sequential_of(const std::vector<Config> &serialized_layers,
                                      const layers::PartialShape &input = {}) {
  Config c;
  c.set("layers", serialized_layers);
  layers::LayerPtr m = layers::create_layer("Sequential", c);
  if (!input.empty()) m->build({input});
  return m;
}

// A classification problem a small Dense model learns: x [n, f] (f >= 4) of pseudo-random values
// in [-1, 1) from an LCG started at `seed`; y (int64) the class 0, 1 or 2 decided by x's first four
// columns.
struct ClassProblem {
  Tensor x, y;
};
inline ClassProblem class_problem(int64_t n, int64_t f, uint32_t seed) {
  std::vector<float> xs;
  std::vector<int64_t> ys;
  uint32_t s = seed;
  for (int64_t i = 0; i < n * f; ++i) {
    s = s * 1664525u + 1013904223u;
    xs.push_back(static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
  for (int64_t i = 0; i < n; ++i) {
    const float *r = &xs[static_cast<size_t>(i * f)];
    ys.push_back(r[0] > r[1] ? (r[2] > r[3] ? 0 : 1) : 2);
  }
  return ClassProblem{make(Shape{n, f}, xs), make_typed<int64_t>(Shape{n}, ys)};
}

}  // namespace kiln::testing
