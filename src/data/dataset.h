// The tf.data-style input pipeline: a Dataset is an immutable description of a sequence of
// elements; make_iterator() starts one pass over it (an epoch). An element is an ordered list of
// tensors (its components), optionally named (a dict element, as tf's {"x": ..., "y": ...}).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/utf8.h"

namespace kiln::data {

using Element = std::vector<Tensor>;

// tf.data.INFINITE_CARDINALITY, tf.data.UNKNOWN_CARDINALITY, tf.data.AUTOTUNE.
constexpr int64_t kInfinite = -1;
constexpr int64_t kUnknown = -2;
constexpr int64_t kAutotune = -1;

// One pass over a dataset. Used by one thread at a time.
class Iterator {
 public:
  virtual ~Iterator() = default;
  // The next element into *out, or false at the end. Throws kiln::Error for a failure (a
  // callback's error comes out here with its code and message, on the calling thread); the
  // iteration may go on after an error, as tf's does.
  virtual bool next(Element *out) = 0;
};
using IteratorPtr = std::unique_ptr<Iterator>;

class Dataset;
using DatasetPtr = std::shared_ptr<const Dataset>;

// Always held by a shared_ptr (the factories below make them): iterators keep their dataset
// alive through shared_from_this, so a dataset may be dropped while its iterators run.
class Dataset : public std::enable_shared_from_this<Dataset> {
 public:
  virtual ~Dataset() = default;
  // A new pass over the elements. Thread-safe: several iterators may run at once.
  virtual IteratorPtr make_iterator() const = 0;
  // The number of elements, kInfinite or kUnknown (tf's dataset.cardinality()).
  virtual int64_t cardinality() const = 0;
  // The components' names (dict elements) or empty (a single tensor or a tuple).
  const std::vector<std::string> &names() const { return names_; }

 protected:
  // The names are text (they reach configs and Python dicts): not UTF-8 is INVALID_ARGUMENT.
  explicit Dataset(std::vector<std::string> names = {}) : names_(std::move(names)) {
    for (const std::string &n : names_) require_utf8(n, "Dataset", "a component's name");
  }
  // This dataset as its own type, for the iterators it makes.
  template <typename T>
  std::shared_ptr<const T> self() const {
    return std::static_pointer_cast<const T>(shared_from_this());
  }

 private:
  std::vector<std::string> names_;
};

// One pass of a generator: writes the next element and returns true, or false at the end.
using NextFn = std::function<bool(Element *)>;
// Called once per iterator to start a pass (tf's from_generator calls the generator anew).
using GeneratorFn = std::function<NextFn()>;
using MapFn = std::function<Element(const Element &)>;
using PredicateFn = std::function<bool(const Element &)>;

// ---- sources ----
// The whole list as one element (tf's from_tensors). names: empty or one per component.
DatasetPtr from_tensors(Element components, std::vector<std::string> names = {});
// One element per row of dim 0 (every component needs rank >= 1 and the same dim 0).
DatasetPtr from_tensor_slices(Element components, std::vector<std::string> names = {});
// int64 scalars start, start + step, ... before stop (step != 0).
DatasetPtr range(int64_t start, int64_t stop, int64_t step = 1);
DatasetPtr from_generator(GeneratorFn generator);

// ---- transformations ----
// seed < 0: the next value of kiln's global seed sequence at this call (as kiln's random ops).
DatasetPtr shuffle(DatasetPtr input, int64_t buffer_size, int64_t seed = -1,
                   bool reshuffle_each_iteration = true);
DatasetPtr batch(DatasetPtr input, int64_t batch_size, bool drop_remainder = false);
// padded_shapes: one per component, -1 dims (or an empty list for a component: every dim) pad
// to the batch's longest; empty: every component pads to the longest. padding_values: one
// scalar per component of its dtype, or empty for zeros.
DatasetPtr padded_batch(DatasetPtr input, int64_t batch_size, std::vector<std::vector<int64_t>> padded_shapes,
                        Element padding_values, bool drop_remainder = false);
// num_parallel_calls: 0 or 1 runs fn on the iterating thread; > 1 (or kAutotune) runs it on
// that many worker threads (kernels at one thread each), keeping the input order.
// output_names: the names of fn's outputs (empty: none).
DatasetPtr map(DatasetPtr input, MapFn fn, int64_t num_parallel_calls = 0,
               std::vector<std::string> output_names = {});
DatasetPtr filter(DatasetPtr input, PredicateFn predicate);
DatasetPtr repeat(DatasetPtr input, int64_t count = -1);
DatasetPtr take(DatasetPtr input, int64_t count);
DatasetPtr skip(DatasetPtr input, int64_t count);
// tf.data's shard: the elements whose position p has p % num_shards == index (a data-parallel
// rank's share: shard(size, rank)). InvalidArgument unless num_shards >= 1 and 0 <= index < it.
DatasetPtr shard(DatasetPtr input, int64_t num_shards, int64_t index);
// Elements of each input side by side (their components one after the other); ends with the
// shortest.
DatasetPtr zip(std::vector<DatasetPtr> inputs);
DatasetPtr concatenate(DatasetPtr first, DatasetPtr second);
DatasetPtr cache(DatasetPtr input);
// Fills a buffer of buffer_size elements (kAutotune: 2) on a background thread.
DatasetPtr prefetch(DatasetPtr input, int64_t buffer_size);
DatasetPtr unbatch(DatasetPtr input);
// (int64 index, components...).
DatasetPtr enumerate(DatasetPtr input, int64_t start = 0);

// The number of worker threads kAutotune stands for.
int64_t autotune_parallelism();

}  // namespace kiln::data
