// Dataset sources: from_tensors, from_tensor_slices, range, from_generator.
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "data/dataset.h"
#include "data/element_util.h"

namespace kiln::data {

namespace {

void check_names(const Element &components, const std::vector<std::string> &names, const char *op) {
  if (!names.empty() && names.size() != components.size())
    fail(Code::kInvalidArgument, op, ": ", names.size(), " names for ", components.size(), " components");
  std::unordered_set<std::string_view> seen;  // a CSV file may have 100000 columns
  for (const std::string &name : names)
    if (!seen.insert(name).second) fail(Code::kInvalidArgument, op, ": the name '", name, "' is given twice");
}

class TensorsDataset final : public Dataset {
 public:
  TensorsDataset(Element components, std::vector<std::string> names, bool slices)
      : Dataset(std::move(names)), components_(std::move(components)), slices_(slices) {
    rows_ = slices_ ? components_[0].shape()[0] : 1;
  }
  int64_t cardinality() const override { return rows_; }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      explicit It(std::shared_ptr<const TensorsDataset> d) : d_(std::move(d)) {}
      bool next(Element *out) override {
        if (i_ >= d_->rows_) return false;
        if (!d_->slices_) {
          *out = d_->components_;
        } else {
          out->clear();
          for (const Tensor &t : d_->components_) out->push_back(slice_row(t, i_));
        }
        ++i_;
        return true;
      }

     private:
      std::shared_ptr<const TensorsDataset> d_;
      int64_t i_ = 0;
    };
    return std::make_unique<It>(self<TensorsDataset>());
  }

 private:
  Element components_;
  bool slices_;
  int64_t rows_;
};

class RangeDataset final : public Dataset {
 public:
  RangeDataset(int64_t start, int64_t stop, int64_t step) : start_(start), stop_(stop), step_(step) {}
  // Counted in unsigned arithmetic: the distance between two int64 values (INT64_MIN to
  // INT64_MAX) exceeds int64. A count beyond INT64_MAX (only with step 1) reads as INT64_MAX.
  int64_t cardinality() const override {
    const uint64_t n = count();
    return n > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(n);
  }
  IteratorPtr make_iterator() const override {
    // Steps wrap modulo 2^64 in unsigned arithmetic, which lands on the right int64 value for
    // every element the range holds (and never overflows a signed integer after the last).
    class It final : public Iterator {
     public:
      It(uint64_t next, uint64_t left, uint64_t step) : next_(next), left_(left), step_(step) {}
      bool next(Element *out) override {
        if (left_ == 0) return false;
        *out = {Tensor::scalar<int64_t>(static_cast<int64_t>(next_))};
        next_ += step_;
        --left_;
        return true;
      }

     private:
      uint64_t next_, left_, step_;
    };
    return std::make_unique<It>(static_cast<uint64_t>(start_), count(), static_cast<uint64_t>(step_));
  }

 private:
  uint64_t count() const {
    const uint64_t start = static_cast<uint64_t>(start_), stop = static_cast<uint64_t>(stop_);
    if (step_ > 0) return stop_ <= start_ ? 0 : (stop - start - 1) / static_cast<uint64_t>(step_) + 1;
    // |step| as unsigned, INT64_MIN included.
    return stop_ >= start_ ? 0 : (start - stop - 1) / (uint64_t{0} - static_cast<uint64_t>(step_)) + 1;
  }

  int64_t start_, stop_, step_;
};

class GeneratorDataset final : public Dataset {
 public:
  explicit GeneratorDataset(GeneratorFn g) : generator_(std::move(g)) {}
  int64_t cardinality() const override { return kUnknown; }
  IteratorPtr make_iterator() const override {
    class It final : public Iterator {
     public:
      explicit It(NextFn f) : next_(std::move(f)) {}
      bool next(Element *out) override {
        if (done_) return false;
        Element e;
        if (!next_(&e)) {
          done_ = true;
          next_ = nullptr;  // ends the pass now (a Python generator is closed here)
          return false;
        }
        require_components(e, "from_generator");
        *out = std::move(e);
        return true;
      }

     private:
      NextFn next_;
      bool done_ = false;
    };
    return std::make_unique<It>(generator_());
  }

 private:
  GeneratorFn generator_;
};

}  // namespace

DatasetPtr from_tensors(Element components, std::vector<std::string> names) {
  const char *op = "from_tensors";
  require_components(components, op);
  check_names(components, names, op);
  return std::make_shared<TensorsDataset>(std::move(components), std::move(names), false);
}

DatasetPtr from_tensor_slices(Element components, std::vector<std::string> names) {
  const char *op = "from_tensor_slices";
  if (components.empty()) fail(Code::kInvalidArgument, op, ": no components; expected at least one tensor");
  require_components(components, op);
  check_names(components, names, op);
  for (size_t i = 0; i < components.size(); ++i) {
    const Tensor &t = components[i];
    if (t.rank() == 0)
      fail(Code::kInvalidArgument, op, ": component ", i, " is a scalar ", describe(t),
           "; slicing needs rank >= 1");
    if (t.shape()[0] != components[0].shape()[0])
      fail(Code::kInvalidArgument, op, ": component ", i, " is ", describe(t), " and component 0 is ",
           describe(components[0]), "; every component needs the same first dim");
  }
  return std::make_shared<TensorsDataset>(std::move(components), std::move(names), true);
}

DatasetPtr range(int64_t start, int64_t stop, int64_t step) {
  if (step == 0) fail(Code::kInvalidArgument, "range: step is 0");
  return std::make_shared<RangeDataset>(start, stop, step);
}

DatasetPtr from_generator(GeneratorFn generator) {
  if (!generator) fail(Code::kInvalidArgument, "from_generator: no generator");
  return std::make_shared<GeneratorDataset>(std::move(generator));
}

}  // namespace kiln::data
