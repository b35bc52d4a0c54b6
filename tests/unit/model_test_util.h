// Models for the persistence tests (checkpoints, SavedModel, RNG state): Keras's serialized layer
// form and built Sequentials from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "layers/layer.h"

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

}  // namespace kiln::testing
