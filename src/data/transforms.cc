// Dataset transformations of one input's elements in order: shuffle, batch, padded_batch, map
// (serial), filter, repeat, take, skip (zip, concatenate, cache, unbatch, enumerate: combine.cc).
#include <algorithm>
#include <atomic>
#include <mutex>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/dataset_internal.h"
#include "data/element_util.h"

namespace kiln::data {

using internal::require_input;
using internal::UnaryDataset;

namespace {

// ---- shuffle: tf's buffer sampling ----

class ShuffleDataset final : public UnaryDataset {
 public:
  ShuffleDataset(DatasetPtr input, int64_t buffer_size, uint64_t key, uint64_t stream, bool reshuffle)
      : UnaryDataset(input, input->names()),
        buffer_size_(buffer_size),
        key_(key),
        stream_(stream),
        reshuffle_(reshuffle) {}
  int64_t cardinality() const override { return input_->cardinality(); }
  IteratorPtr make_iterator() const override {
    // Each pass draws from its own part of the counter space: epoch e's k-th draw is block
    // (e << 40) + k, so every epoch has a new order yet a run repeats exactly.
    const uint64_t epoch = reshuffle_ ? epochs_.fetch_add(1) : 0;
    return std::make_unique<It>(input_->make_iterator(), buffer_size_, Philox(key_, stream_), epoch << 40);
  }

 private:
  class It final : public Iterator {
   public:
    It(IteratorPtr in, int64_t buffer_size, Philox rng, uint64_t counter)
        : in_(std::move(in)), buffer_size_(buffer_size), rng_(rng), counter_(counter) {}
    bool next(Element *out) override {
      while (!in_done_ && static_cast<int64_t>(buffer_.size()) < buffer_size_) {
        Element e;
        if (!in_->next(&e)) {
          in_done_ = true;
          break;
        }
        buffer_.push_back(std::move(e));
      }
      if (buffer_.empty()) return false;
      auto b = rng_.block(counter_++);
      const uint64_t r = (static_cast<uint64_t>(b[0]) << 32) | b[1];
      const size_t i = static_cast<size_t>(r % buffer_.size());
      *out = std::move(buffer_[i]);
      if (i + 1 != buffer_.size()) buffer_[i] = std::move(buffer_.back());
      buffer_.pop_back();
      return true;
    }

   private:
    IteratorPtr in_;
    int64_t buffer_size_;
    Philox rng_;
    uint64_t counter_;
    std::vector<Element> buffer_;
    bool in_done_ = false;
  };

  int64_t buffer_size_;
  uint64_t key_, stream_;
  bool reshuffle_;
  mutable std::atomic<uint64_t> epochs_{0};
};

// ---- batch and padded_batch ----

class BatchDataset final : public UnaryDataset {
 public:
  BatchDataset(DatasetPtr input, int64_t batch_size, bool drop, bool padded,
               std::vector<std::vector<int64_t>> shapes, Element pads)
      : UnaryDataset(input, input->names()),
        batch_size_(batch_size),
        drop_(drop),
        padded_(padded),
        shapes_(std::move(shapes)),
        pads_(std::move(pads)) {}
  int64_t cardinality() const override {
    const int64_t n = input_->cardinality();
    if (n < 0) return n;
    return drop_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  }
  IteratorPtr make_iterator() const override {
    return std::make_unique<It>(self<BatchDataset>(), input_->make_iterator());
  }

 private:
  class It final : public Iterator {
   public:
    It(std::shared_ptr<const BatchDataset> d, IteratorPtr in) : d_(std::move(d)), in_(std::move(in)) {}
    bool next(Element *out) override {
      std::vector<Element> rows;
      Element e;
      while (static_cast<int64_t>(rows.size()) < d_->batch_size_ && in_->next(&e))
        rows.push_back(std::move(e));
      if (rows.empty() || (d_->drop_ && static_cast<int64_t>(rows.size()) < d_->batch_size_)) return false;
      *out = d_->combine(rows);
      return true;
    }

   private:
    std::shared_ptr<const BatchDataset> d_;
    IteratorPtr in_;
  };

  Element combine(const std::vector<Element> &rows) const {
    const char *op = padded_ ? "padded_batch" : "batch";
    const size_t n = rows[0].size();
    for (size_t r = 1; r < rows.size(); ++r)
      if (rows[r].size() != n)
        fail(Code::kInvalidArgument, op, ": element ", r, " of the batch has ", rows[r].size(),
             " components; element 0 has ", n);
    if (padded_ && !shapes_.empty() && shapes_.size() != n)
      fail(Code::kInvalidArgument, op, ": ", shapes_.size(), " padded shapes for elements of ", n,
           " components");
    if (padded_ && pads_.size() > 1 && pads_.size() != n)
      fail(Code::kInvalidArgument, op, ": ", pads_.size(), " padding values for elements of ", n,
           " components (give one for each, or one for all)");
    Element out;
    std::vector<Tensor> column(rows.size());
    for (size_t c = 0; c < n; ++c) {
      for (size_t r = 0; r < rows.size(); ++r) column[r] = rows[r][c];
      if (!padded_) {
        out.push_back(stack_rows(column, op, c));
        continue;
      }
      out.push_back(stack_padded(column, padded_shape(column, c),
                                 pads_.empty() ? Tensor() : pads_[pads_.size() == 1 ? 0 : c], op, c));
    }
    return out;
  }

  // The component's padded shape: the given dims, -1 (or no list) meaning the batch's longest.
  std::vector<int64_t> padded_shape(const std::vector<Tensor> &column, size_t c) const {
    const int rank = column[0].rank();
    std::vector<int64_t> shape = shapes_.empty() || shapes_[c].empty()
                                     ? std::vector<int64_t>(static_cast<size_t>(rank), -1)
                                     : shapes_[c];
    if (static_cast<int>(shape.size()) != rank)
      fail(Code::kInvalidArgument, "padded_batch: the padded shape of component ", c, " has rank ",
           shape.size(), "; the component is ", describe(column[0]));
    for (size_t k = 0; k < shape.size(); ++k) {
      if (shape[k] >= 0) continue;
      int64_t longest = 0;
      for (const Tensor &t : column)
        if (t.rank() == rank) longest = std::max(longest, t.shape()[static_cast<int>(k)]);
      shape[k] = longest;
    }
    return shape;
  }

  int64_t batch_size_;
  bool drop_, padded_;
  std::vector<std::vector<int64_t>> shapes_;
  Element pads_;
};

// ---- map (serial) and filter ----

class MapDataset final : public UnaryDataset {
 public:
  MapDataset(DatasetPtr input, MapFn fn, std::vector<std::string> names)
      : UnaryDataset(std::move(input), std::move(names)), fn_(std::move(fn)) {}
  int64_t cardinality() const override { return input_->cardinality(); }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(std::shared_ptr<const MapDataset> d, IteratorPtr in) : d_(std::move(d)), in_(std::move(in)) {}
      bool next(Element *out) override {
        Element e;
        if (!in_->next(&e)) return false;
        *out = d_->fn_(e);
        return true;
      }

     private:
      std::shared_ptr<const MapDataset> d_;
      IteratorPtr in_;
    };
    return std::make_unique<It>(self<MapDataset>(), input_->make_iterator());
  }

 private:
  MapFn fn_;
};

class FilterDataset final : public UnaryDataset {
 public:
  FilterDataset(DatasetPtr input, PredicateFn fn) : UnaryDataset(input, input->names()), fn_(std::move(fn)) {}
  // As tf.data: unknown, even over an infinite input (a predicate may drop every element).
  int64_t cardinality() const override { return kUnknown; }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(std::shared_ptr<const FilterDataset> d, IteratorPtr in) : d_(std::move(d)), in_(std::move(in)) {}
      bool next(Element *out) override {
        Element e;
        while (in_->next(&e))
          if (d_->fn_(e)) {
            *out = std::move(e);
            return true;
          }
        return false;
      }

     private:
      std::shared_ptr<const FilterDataset> d_;
      IteratorPtr in_;
    };
    return std::make_unique<It>(self<FilterDataset>(), input_->make_iterator());
  }

 private:
  PredicateFn fn_;
};

// ---- repeat, take, skip ----

class RepeatDataset final : public UnaryDataset {
 public:
  RepeatDataset(DatasetPtr input, int64_t count) : UnaryDataset(input, input->names()), count_(count) {}
  int64_t cardinality() const override {
    const int64_t n = input_->cardinality();
    if (n == 0 || count_ == 0) return 0;
    if (count_ < 0 || n == kInfinite) return kInfinite;
    if (n == kUnknown) return kUnknown;
    return n > INT64_MAX / count_ ? kInfinite : n * count_;
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(DatasetPtr input, int64_t count) : input_(std::move(input)), left_(count) {}
      bool next(Element *out) override {
        while (left_ != 0) {
          if (!in_) in_ = input_->make_iterator();
          if (in_->next(out)) {
            empty_pass_ = false;
            return true;
          }
          in_.reset();
          if (left_ > 0) --left_;
          // Repeating forever, an empty pass would go on without giving anything: end instead
          // (as tf). A counted repeat runs all its passes, empty or not (tf's FiniteIterator).
          if (left_ < 0 && empty_pass_) return false;
          empty_pass_ = true;
        }
        return false;
      }

     private:
      DatasetPtr input_;
      IteratorPtr in_;
      int64_t left_;
      bool empty_pass_ = true;
    };
    return std::make_unique<It>(input_, count_);
  }

 private:
  int64_t count_;
};

class TakeSkipDataset final : public UnaryDataset {
 public:
  TakeSkipDataset(DatasetPtr input, int64_t count, bool take)
      : UnaryDataset(input, input->names()), count_(count), take_(take) {}
  int64_t cardinality() const override {
    const int64_t n = input_->cardinality();
    if (take_) {  // as tf.data: an input of unknown size stays unknown, even for take(0)
      if (n == kUnknown) return kUnknown;
      if (n == kInfinite) return count_ < 0 ? kInfinite : count_;
      return count_ < 0 ? n : std::min(n, count_);
    }
    if (n < 0) return n;
    return count_ < 0 ? 0 : std::max<int64_t>(0, n - count_);
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(IteratorPtr in, int64_t count, bool take) : in_(std::move(in)), count_(count), take_(take) {}
      bool next(Element *out) override {
        if (take_) {
          if (count_ == 0) return false;
          if (count_ > 0) --count_;
          return in_->next(out);
        }
        Element e;
        while (count_ != 0) {  // skip(-1) skips everything
          if (!in_->next(&e)) return false;
          if (count_ > 0) --count_;
        }
        return in_->next(out);
      }

     private:
      IteratorPtr in_;
      int64_t count_;
      bool take_;
    };
    return std::make_unique<It>(input_->make_iterator(), count_, take_);
  }

 private:
  int64_t count_;
  bool take_;
};

// tf.data's shard: every num_shards-th element, from the index-th.
class ShardDataset final : public UnaryDataset {
 public:
  ShardDataset(DatasetPtr input, int64_t num_shards, int64_t index)
      : UnaryDataset(input, input->names()), num_shards_(num_shards), index_(index) {}
  int64_t cardinality() const override {
    const int64_t n = input_->cardinality();
    if (n < 0) return n;
    return n / num_shards_ + (n % num_shards_ > index_ ? 1 : 0);
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(IteratorPtr in, int64_t num_shards, int64_t index)
          : in_(std::move(in)), num_shards_(num_shards), skip_(index) {}
      bool next(Element *out) override {
        Element e;
        for (; skip_ > 0; --skip_)
          if (!in_->next(&e)) return false;
        if (!in_->next(out)) return false;
        skip_ = num_shards_ - 1;  // the elements of the other shards before this one's next
        return true;
      }

     private:
      IteratorPtr in_;
      int64_t num_shards_, skip_;
    };
    return std::make_unique<It>(input_->make_iterator(), num_shards_, index_);
  }

 private:
  int64_t num_shards_, index_;
};

}  // namespace

DatasetPtr shard(DatasetPtr input, int64_t num_shards, int64_t index) {
  require_input(input, "shard");
  if (num_shards < 1) fail(Code::kInvalidArgument, "shard: num_shards is ", num_shards, "; expected >= 1");
  if (index < 0 || index >= num_shards)
    fail(Code::kInvalidArgument, "shard: index is ", index, "; expected 0 <= index < num_shards (",
         num_shards, ")");
  return std::make_shared<ShardDataset>(std::move(input), num_shards, index);
}

DatasetPtr shuffle(DatasetPtr input, int64_t buffer_size, int64_t seed, bool reshuffle_each_iteration) {
  require_input(input, "shuffle");
  if (buffer_size <= 0)
    fail(Code::kInvalidArgument, "shuffle: buffer_size is ", buffer_size, "; expected >= 1");
  // As tf.data: a given seed fixes the order (with the global seed); no seed takes the next
  // value of the global sequence, so a program repeats after set_seed.
  const uint64_t stream = seed >= 0 ? static_cast<uint64_t>(seed) : resolve_op_seed(-1);
  return std::make_shared<ShuffleDataset>(std::move(input), buffer_size, global_seed(), stream,
                                          reshuffle_each_iteration);
}

DatasetPtr batch(DatasetPtr input, int64_t batch_size, bool drop_remainder) {
  require_input(input, "batch");
  if (batch_size <= 0) fail(Code::kInvalidArgument, "batch: batch_size is ", batch_size, "; expected >= 1");
  return std::make_shared<BatchDataset>(std::move(input), batch_size, drop_remainder, false,
                                        std::vector<std::vector<int64_t>>{}, Element{});
}

DatasetPtr padded_batch(DatasetPtr input, int64_t batch_size, std::vector<std::vector<int64_t>> padded_shapes,
                        Element padding_values, bool drop_remainder) {
  require_input(input, "padded_batch");
  if (batch_size <= 0)
    fail(Code::kInvalidArgument, "padded_batch: batch_size is ", batch_size, "; expected >= 1");
  for (const auto &s : padded_shapes)
    for (int64_t d : s)
      if (d < -1)
        fail(Code::kInvalidArgument, "padded_batch: padded dim ", d,
             "; expected >= 0, or -1 for the longest");
  return std::make_shared<BatchDataset>(std::move(input), batch_size, drop_remainder, true,
                                        std::move(padded_shapes), std::move(padding_values));
}

DatasetPtr internal::make_serial_map(DatasetPtr input, MapFn fn, std::vector<std::string> output_names) {
  return std::make_shared<MapDataset>(std::move(input), std::move(fn), std::move(output_names));
}

DatasetPtr filter(DatasetPtr input, PredicateFn predicate) {
  require_input(input, "filter");
  if (!predicate) fail(Code::kInvalidArgument, "filter: no predicate");
  return std::make_shared<FilterDataset>(std::move(input), std::move(predicate));
}

DatasetPtr repeat(DatasetPtr input, int64_t count) {
  require_input(input, "repeat");
  return std::make_shared<RepeatDataset>(std::move(input), count < 0 ? -1 : count);
}

DatasetPtr take(DatasetPtr input, int64_t count) {
  require_input(input, "take");
  return std::make_shared<TakeSkipDataset>(std::move(input), count < 0 ? -1 : count, true);
}

DatasetPtr skip(DatasetPtr input, int64_t count) {
  require_input(input, "skip");
  return std::make_shared<TakeSkipDataset>(std::move(input), count < 0 ? -1 : count, false);
}

}  // namespace kiln::data
