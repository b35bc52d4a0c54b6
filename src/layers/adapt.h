// Keras's adapt() of preprocessing layers (Normalization): a layer's state computed from data
// before training, reading the data one batch at a time. The layers sit below data/, so the
// batches come from a function: the C API reads them from a tensor or a Dataset.
#pragma once

#include <functional>

#include "core/tensor.h"
#include "layers/layer.h"

namespace kiln::layers {

// Writes the next batch into *out and returns true, or returns false at the end.
using NextBatchFn = std::function<bool(Tensor *out)>;

// What a layer with an adapt() implements. adapt reads every batch, then sets the layer's state
// at once: a batch that fails (a bad shape, an error reading the data) leaves the state as it was.
// A layer not yet built builds from the first batch's shape. Adapts are serialised per layer;
// a call of the layer on another thread while adapt() sets the state sees the old state or the
// new one, never a mix.
class Adaptable {
 public:
  virtual void adapt(const NextBatchFn &next) = 0;
  // adapt() of one array: by default the whole array as one batch. A layer whose Keras adapt
  // reads an array differently from a dataset's batch (IntegerLookup: a 1-D array is a column of
  // one-token samples) overrides it.
  virtual void adapt_array(const Tensor &data);

 protected:
  ~Adaptable() = default;
};

// layer.adapt(batches); INVALID_ARGUMENT naming the layer when its class has no adapt().
void adapt(Layer &layer, const NextBatchFn &next);
// layer.adapt(data) for one array: Adaptable::adapt_array.
void adapt(Layer &layer, const Tensor &data);

}  // namespace kiln::layers
