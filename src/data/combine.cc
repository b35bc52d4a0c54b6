// Dataset transformations that combine or regroup elements: zip, concatenate, cache (in memory),
// unbatch, enumerate.
#include <algorithm>
#include <cstdint>
#include <mutex>

#include "core/error.h"
#include "data/dataset.h"
#include "data/dataset_internal.h"
#include "data/element_util.h"

namespace kiln::data {

using internal::require_input;
using internal::UnaryDataset;

namespace {
// ---- zip, concatenate ----

class ZipDataset final : public Dataset {
 public:
  explicit ZipDataset(std::vector<DatasetPtr> inputs) : inputs_(std::move(inputs)) {}
  int64_t cardinality() const override {
    int64_t n = kInfinite;
    for (const DatasetPtr &d : inputs_) {
      const int64_t c = d->cardinality();
      if (c == kUnknown) return kUnknown;
      if (c != kInfinite) n = n == kInfinite ? c : std::min(n, c);
    }
    return n;
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      explicit It(std::vector<IteratorPtr> ins) : ins_(std::move(ins)) {}
      bool next(Element *out) override {
        Element all, e;
        for (IteratorPtr &in : ins_) {
          if (!in->next(&e)) return false;
          all.insert(all.end(), e.begin(), e.end());
        }
        *out = std::move(all);
        return true;
      }

     private:
      std::vector<IteratorPtr> ins_;
    };
    std::vector<IteratorPtr> ins;
    for (const DatasetPtr &d : inputs_) ins.push_back(d->make_iterator());
    return std::make_unique<It>(std::move(ins));
  }

 private:
  std::vector<DatasetPtr> inputs_;
};

class ConcatenateDataset final : public Dataset {
 public:
  ConcatenateDataset(DatasetPtr a, DatasetPtr b) : Dataset(a->names()), a_(std::move(a)), b_(std::move(b)) {}
  int64_t cardinality() const override {
    const int64_t x = a_->cardinality(), y = b_->cardinality();
    if (x == kInfinite || y == kInfinite) return kInfinite;
    if (x == kUnknown || y == kUnknown) return kUnknown;
    return x + y;
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(IteratorPtr a, DatasetPtr b) : in_(std::move(a)), b_(std::move(b)) {}
      bool next(Element *out) override {
        if (in_->next(out)) {
          if (first_ && shape_.empty()) shape_ = *out;
          return true;
        }
        if (!b_) return false;
        in_ = b_->make_iterator();
        b_.reset();
        first_ = false;
        if (!in_->next(out)) return false;
        check(*out);
        return true;
      }

     private:
      // The second dataset's elements must match the first's components and dtypes.
      void check(const Element &e) const {
        if (shape_.empty()) return;
        bool same = e.size() == shape_.size();
        for (size_t i = 0; same && i < e.size(); ++i) same = e[i].dtype() == shape_[i].dtype();
        if (!same)
          fail(Code::kInvalidArgument, "concatenate: the second dataset's elements have ", e.size(),
               " components of other dtypes than the first's ", shape_.size());
      }
      IteratorPtr in_;
      DatasetPtr b_;
      Element shape_;
      bool first_ = true;
    };
    return std::make_unique<It>(a_->make_iterator(), b_);
  }

 private:
  DatasetPtr a_, b_;
};

// ---- cache (in memory) ----

class CacheDataset final : public UnaryDataset {
 public:
  explicit CacheDataset(DatasetPtr input) : UnaryDataset(input, input->names()) {}
  int64_t cardinality() const override { return input_->cardinality(); }
  IteratorPtr make_iterator() const override {
    std::shared_ptr<const std::vector<Element>> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done = cached_;
    }
    if (done) return std::make_unique<ReadIt>(std::move(done));
    return std::make_unique<FillIt>(self<CacheDataset>(), input_->make_iterator());
  }

 private:
  class ReadIt final : public Iterator {
   public:
    explicit ReadIt(std::shared_ptr<const std::vector<Element>> c) : c_(std::move(c)) {}
    bool next(Element *out) override {
      if (i_ >= c_->size()) return false;
      *out = (*c_)[i_++];
      return true;
    }

   private:
    std::shared_ptr<const std::vector<Element>> c_;
    size_t i_ = 0;
  };
  // The first pass reads the input and keeps every element; only a pass that reaches the end
  // publishes them (a pass stopped early leaves nothing cached, as tf).
  class FillIt final : public Iterator {
   public:
    FillIt(std::shared_ptr<const CacheDataset> d, IteratorPtr in)
        : d_(std::move(d)), in_(std::move(in)), seen_(std::make_shared<std::vector<Element>>()) {}
    bool next(Element *out) override {
      if (!in_) return false;
      if (in_->next(out)) {
        seen_->push_back(*out);
        return true;
      }
      in_.reset();
      std::lock_guard<std::mutex> lock(d_->mu_);
      if (!d_->cached_) d_->cached_ = std::move(seen_);
      return false;
    }

   private:
    std::shared_ptr<const CacheDataset> d_;
    IteratorPtr in_;
    std::shared_ptr<std::vector<Element>> seen_;
  };

  mutable std::mutex mu_;
  mutable std::shared_ptr<const std::vector<Element>> cached_;
};

// ---- unbatch, enumerate ----

class UnbatchDataset final : public UnaryDataset {
 public:
  explicit UnbatchDataset(DatasetPtr input) : UnaryDataset(input, input->names()) {}
  int64_t cardinality() const override {
    const int64_t n = input_->cardinality();
    return n == kInfinite || n == 0 ? n : kUnknown;
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      explicit It(IteratorPtr in) : in_(std::move(in)) {}
      bool next(Element *out) override {
        while (row_ >= rows_) {
          // A bad batch leaves nothing to slice: the pass goes on with the next one, as tf.data.
          row_ = rows_ = 0;
          batch_.clear();
          Element batch;
          if (!in_->next(&batch)) return false;
          int64_t rows = -1;
          for (size_t i = 0; i < batch.size(); ++i) {
            const Tensor &t = batch[i];
            if (t.rank() == 0 || (rows >= 0 && t.shape()[0] != rows))
              fail(Code::kInvalidArgument, "unbatch: component ", i, " is ", describe(t),
                   "; every component needs rank >= 1 and the same first dim");
            rows = t.shape()[0];
          }
          batch_ = std::move(batch);
          rows_ = std::max<int64_t>(rows, 0);
        }
        out->clear();
        for (const Tensor &t : batch_) out->push_back(slice_row(t, row_));
        ++row_;
        return true;
      }

     private:
      IteratorPtr in_;
      Element batch_;
      int64_t row_ = 0, rows_ = 0;
    };
    return std::make_unique<It>(input_->make_iterator());
  }
};

class EnumerateDataset final : public UnaryDataset {
 public:
  EnumerateDataset(DatasetPtr input, int64_t start) : UnaryDataset(std::move(input), {}), start_(start) {}
  // As tf.data's zip(range(start, int64 max), input): at most INT64_MAX - start elements. An infinite
  // input stays infinite unless that bound is below 2^62 (kiln's practical infinity).
  int64_t cardinality() const override {
    const int64_t n = input_->cardinality();
    if (n == kUnknown || start_ < 0) return n;
    const int64_t left = INT64_MAX - start_;
    if (n == kInfinite) return left < (int64_t{1} << 62) ? left : kInfinite;
    return std::min(n, left);
  }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      It(IteratorPtr in, int64_t start) : in_(std::move(in)), i_(start) {}
      bool next(Element *out) override {
        // As tf.data's zip(range(start, int64 max), input): the counter ends before it would wrap.
        if (i_ == INT64_MAX) return false;
        Element e;
        if (!in_->next(&e)) return false;
        out->clear();
        out->push_back(Tensor::scalar<int64_t>(i_++));
        out->insert(out->end(), e.begin(), e.end());
        return true;
      }

     private:
      IteratorPtr in_;
      int64_t i_;
    };
    return std::make_unique<It>(input_->make_iterator(), start_);
  }

 private:
  int64_t start_;
};

}  // namespace

DatasetPtr zip(std::vector<DatasetPtr> inputs) {
  if (inputs.empty()) fail(Code::kInvalidArgument, "zip: no datasets");
  for (const DatasetPtr &d : inputs) require_input(d, "zip");
  return std::make_shared<ZipDataset>(std::move(inputs));
}

DatasetPtr concatenate(DatasetPtr first, DatasetPtr second) {
  require_input(first, "concatenate");
  require_input(second, "concatenate");
  return std::make_shared<ConcatenateDataset>(std::move(first), std::move(second));
}

DatasetPtr cache(DatasetPtr input) {
  require_input(input, "cache");
  return std::make_shared<CacheDataset>(std::move(input));
}

DatasetPtr unbatch(DatasetPtr input) {
  require_input(input, "unbatch");
  return std::make_shared<UnbatchDataset>(std::move(input));
}

DatasetPtr enumerate(DatasetPtr input, int64_t start) {
  require_input(input, "enumerate");
  return std::make_shared<EnumerateDataset>(std::move(input), start);
}

}  // namespace kiln::data
