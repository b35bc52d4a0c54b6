// The small "model" the object-graph target restores into: trackables shaped like a compiled
// Keras model's (two dense layers reached as `layer_with_weights-<i>` and `layer-<i>`, an
// optimizer with `_iterations`, `_learning_rate`, a float64 value restored with conversion, a
// `_variables` list and slots it accepts later), built from train::Trackable directly so the
// target needs only checkpoint.cc, not the layers and optimizers behind make_trackable.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "train/checkpoint.h"

namespace kiln::fuzz {

class FuzzVariable final : public train::Trackable {
 public:
  FuzzVariable(std::string name, Tensor value, bool convert_float = false)
      : name_(std::move(name)),
        value_(std::make_shared<Tensor>(std::move(value))),
        convert_float_(convert_float) {}
  Id id() const override { return Id{this, ""}; }
  std::string description() const override { return "variable '" + name_ + "'"; }
  std::vector<train::TrackableAttribute> attributes() const override {
    train::TrackableAttribute a;
    a.full_name = name_;
    a.dtype = value_->dtype();
    a.shape = value_->shape();
    a.convert_float = convert_float_;
    std::shared_ptr<Tensor> v = value_;
    a.read = [v] { return *v; };
    a.write = [v](const Tensor &t) {
      // restore promises the declared dtype and shape
      if (t.dtype() != v->dtype() || t.shape() != v->shape()) __builtin_trap();
      *v = t;
    };
    return {a};
  }
  const Tensor &value() const { return *value_; }

 private:
  std::string name_;
  std::shared_ptr<Tensor> value_;
  bool convert_float_;
};

class FuzzGroup : public train::Trackable {
 public:
  explicit FuzzGroup(std::string name) : name_(std::move(name)) {}
  Id id() const override { return Id{this, ""}; }
  std::string description() const override { return "object '" + name_ + "'"; }
  std::vector<Child> children() const override { return children_; }
  train::TrackablePtr child(const std::string &name) const override {
    for (const Child &c : children_)
      if (c.name == name) return c.object;
    return nullptr;
  }
  void add(const std::string &name, train::TrackablePtr object) {
    children_.push_back(Child{name, std::move(object)});
  }

 private:
  std::string name_;
  std::vector<Child> children_;
};

// Takes any deferred value (as an optimizer takes slots it makes later) and lands it at once.
class FuzzOptimizer final : public FuzzGroup {
 public:
  FuzzOptimizer() : FuzzGroup("optimizer") {}
  bool defer_child(const std::string &name, const Tensor &value, std::function<void()> on_restored) override {
    if (!value.defined()) __builtin_trap();
    deferred_[name] = value;
    on_restored();
    return true;
  }

 private:
  std::map<std::string, Tensor> deferred_;
};

inline Tensor filled(DType dtype, const Shape &shape, double start) {
  Tensor t = Tensor::empty(dtype, shape);
  const int64_t n = t.num_elements();
  for (int64_t i = 0; i < n; ++i) {
    const double x = start + static_cast<double>(i);
    switch (dtype) {
      case DType::kFloat32:
        t.mutable_data<float>()[i] = static_cast<float>(x);
        break;
      case DType::kFloat64:
        t.mutable_data<double>()[i] = x;
        break;
      case DType::kBFloat16:
        t.mutable_data<bfloat16>()[i] = bfloat16(static_cast<float>(x));
        break;
      case DType::kInt32:
        t.mutable_data<int32_t>()[i] = static_cast<int32_t>(x);
        break;
      case DType::kInt64:
        t.mutable_data<int64_t>()[i] = static_cast<int64_t>(x);
        break;
      case DType::kUInt8:
        t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(i);
        break;
      case DType::kBool:
        t.mutable_data<bool>()[i] = (i % 2) != 0;
        break;
    }
  }
  return t;
}

inline train::TrackablePtr variable(const std::string &name, DType dtype, const Shape &shape, double start,
                                    bool convert_float = false) {
  return std::make_shared<FuzzVariable>(name, filled(dtype, shape, start), convert_float);
}

inline std::shared_ptr<FuzzGroup> dense(const std::string &name, int64_t in, int64_t out, double start) {
  auto d = std::make_shared<FuzzGroup>(name);
  d->add("kernel", variable(name + "/kernel", DType::kFloat32, Shape{in, out}, start));
  d->add("bias", variable(name + "/bias", DType::kFloat32, Shape{out}, start + 100));
  return d;
}

// The root of a tf.train.Checkpoint(model=..., optimizer=...) with its save_counter. With slots,
// the optimizer's list also holds Adam-like m and v for the first kernel: a checkpoint of that
// model restored into one without them defers those values.
inline train::TrackablePtr make_model(double start = 0, bool with_slots = false) {
  auto model = std::make_shared<FuzzGroup>("model");
  auto d0 = dense("dense", 3, 4, start + 1), d1 = dense("dense_1", 4, 2, start + 2);
  model->add("layer_with_weights-0", d0);
  model->add("layer-0", d0);
  model->add("layer_with_weights-1", d1);
  model->add("layer-1", d1);
  model->add("embedding", variable("embedding", DType::kBFloat16, Shape{2, 2}, start + 3));
  model->add("mask", variable("mask", DType::kBool, Shape{3}, 0));
  model->add("counts", variable("counts", DType::kInt32, Shape{2}, start + 4));
  model->add("bytes", variable("bytes", DType::kUInt8, Shape{4}, 0));

  auto opt = std::make_shared<FuzzOptimizer>();
  auto iterations = variable("iterations", DType::kInt64, Shape{}, start + 5);
  opt->add("_iterations", iterations);
  opt->add("_learning_rate", variable("learning_rate", DType::kFloat32, Shape{}, 0.5));
  opt->add("_u_product", variable("u_product", DType::kFloat64, Shape{}, 0.25, /*convert_float=*/true));
  auto list = std::make_shared<FuzzGroup>("_variables");
  list->add("0", iterations);
  if (with_slots) {
    list->add("1", variable("m/dense/kernel", DType::kFloat32, Shape{3, 4}, start + 7));
    list->add("2", variable("v/dense/kernel", DType::kFloat32, Shape{3, 4}, start + 8));
  }
  opt->add("_variables", list);

  auto root = std::make_shared<FuzzGroup>("root");
  root->add("model", model);
  root->add("optimizer", opt);
  root->add("save_counter", variable("save_counter", DType::kInt64, Shape{}, start + 6));
  return root;
}

}  // namespace kiln::fuzz
