// Keras's merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) and the
// reshaping layers Permute and RepeatVector. Registered by register_attention_layers().
#include <algorithm>
#include <functional>

#include "core/error.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

std::string shapes_string(const std::vector<PartialShape> &shapes) {
  std::string s = "[";
  for (size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + partial_shape_string(shapes[i]);
  return s + "]";
}

std::vector<PartialShape> shapes_of(const std::vector<Tensor> &xs) {
  std::vector<PartialShape> out;
  for (const Tensor &x : xs) out.push_back(partial_shape_of(x.shape()));
  return out;
}

// ------------------------------------------------------------------ elementwise merges

// How a merge treats its inputs' masks (Keras 3): Add, Subtract and Average ignore them in the
// values; Maximum and Minimum take each position from the inputs valid there
// (_apply_merge_op_and_or_mask); Multiply counts a masked entry as 1 and zeroes the output where
// no input is valid.
enum class MaskedValues { kIgnore, kSelect, kMultiply };

// Keras's Merge: inputs share a batch size; the other dims, aligned from the right, are equal
// or 1 (they broadcast); a lower-rank input gets size-1 axes inserted after its batch axis.
class ElementwiseMerge : public Layer {
 public:
  using Fold = std::function<Tensor(const Tensor &, const Tensor &)>;

  ElementwiseMerge(const char *class_name, const Config &config, Fold fold, bool average = false,
                   bool two_inputs = false, MaskedValues masked = MaskedValues::kIgnore)
      : ElementwiseMerge(class_name, ConfigReader(config, class_name), std::move(fold), average, two_inputs,
                         masked) {}

 private:
  ElementwiseMerge(const char *class_name, ConfigReader &&r, Fold fold, bool average, bool two_inputs,
                   MaskedValues masked)
      : Layer(class_name, r),
        fold_(std::move(fold)),
        average_(average),
        two_inputs_(two_inputs),
        masked_(masked) {
    r.finish();
    set_supports_masking(true);
  }

  // Keras's Merge.compute_mask: the OR of the inputs' masks, and no mask unless every input has one.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                   const std::vector<Tensor> &masks) override {
    if (masks.size() < inputs.size()) return {};
    Tensor m;
    for (const Tensor &k : masks) {
      if (!k.defined()) return {};
      m = m.defined() ? ops::logical_or(m, k) : k;
    }
    if (!m.defined()) return {};
    return {m};
  }

  // Input x's mask (or undefined), broadcast to x's shape over its trailing feature axes.
  static Tensor mask_for(const Tensor &x, const CallContext &ctx, size_t i) {
    const Tensor *m = input_mask(ctx, i);
    if (!m) return Tensor();
    Tensor k = ops::cast(*m, DType::kBool);
    while (k.rank() < x.rank()) k = ops::expand_dims(k, -1);
    return ops::broadcast_to(k, x.shape());
  }

  // Keras's _apply_merge_op_and_or_mask: where an input is masked, the running output stands in
  // for it (and it for the output where that is masked), so a position takes only the inputs
  // valid there (the first input where none is).
  Tensor fold_selecting(const std::vector<Tensor> &xs, const CallContext &ctx) const {
    Tensor y = xs[0], y_mask = mask_for(xs[0], ctx, 0);
    for (size_t i = 1; i < xs.size(); ++i) {
      Tensor x = xs[i];
      const Tensor m = mask_for(x, ctx, i);
      if (m.defined()) x = ops::where(m, x, y);
      if (y_mask.defined()) y = ops::where(y_mask, y, x);
      y_mask = m.defined() && y_mask.defined() ? ops::logical_or(y_mask, m) : Tensor();
      y = fold_(y, x);
    }
    return y;
  }

  // Keras's Multiply with masks: masked entries count as 1; where every input has a mask, the
  // output is 0 outside their OR.
  Tensor fold_multiplying(const std::vector<Tensor> &xs, const CallContext &ctx) const {
    Tensor y, any;
    bool all_masked = true;
    for (size_t i = 0; i < xs.size(); ++i) {
      Tensor x = xs[i];
      const Tensor m = mask_for(x, ctx, i);
      if (m.defined()) {
        x = ops::where(m, x, ops::ones_like(x));
        any = any.defined() ? ops::logical_or(any, m) : m;
      } else {
        all_masked = false;
      }
      y = y.defined() ? fold_(y, x) : x;
    }
    if (all_masked && any.defined()) y = ops::where(any, y, ops::zeros_like(y));
    return y;
  }

  void check_shapes(const std::vector<PartialShape> &shapes) const {
    if (two_inputs_ && shapes.size() != 2)
      bad_input("got " + std::to_string(shapes.size()) + " inputs; a " + class_name() +
                " layer takes exactly 2");
    if (shapes.empty()) bad_input("got 0 inputs; a merge layer takes a list of at least 1 input");
    int64_t batch = kUnknownDim;
    for (const PartialShape &s : shapes) {
      if (s.empty()) bad_input("input shapes " + shapes_string(shapes) + " lack a batch dimension");
      if (s[0] >= 0 && batch >= 0 && s[0] != batch)
        bad_input("cannot merge tensors with different batch sizes; got shapes " + shapes_string(shapes));
      if (s[0] >= 0) batch = s[0];
    }
    // Non-batch dims, right-aligned: equal, unknown or 1 on either side.
    PartialShape out(shapes[0].begin() + 1, shapes[0].end());
    for (size_t k = 1; k < shapes.size(); ++k) {
      PartialShape s(shapes[k].begin() + 1, shapes[k].end());
      if (s.size() > out.size()) std::swap(s, out);
      for (size_t i = 0; i < s.size(); ++i) {
        int64_t &o = out[out.size() - s.size() + i];
        const int64_t d = s[i];
        if (o < 0 || d < 0)
          o = kUnknownDim;
        else if (o == 1)
          o = d;
        else if (d != 1 && d != o)
          bad_input("inputs have incompatible shapes " + shapes_string(shapes));
      }
    }
  }

  void build_impl(const std::vector<PartialShape> &shapes) override { check_shapes(shapes); }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    check_shapes(shapes_of(inputs));
    int64_t rank = 0;
    for (const Tensor &x : inputs) rank = std::max<int64_t>(rank, x.rank());
    std::vector<Tensor> xs;
    for (Tensor x : inputs) {
      while (x.rank() < rank) x = ops::expand_dims(x, 1);
      xs.push_back(x);
    }
    bool masked = false;
    for (size_t i = 0; i < xs.size(); ++i) masked |= input_mask(ctx, i) != nullptr;
    Tensor y;
    if (masked && masked_ == MaskedValues::kSelect) {
      y = fold_selecting(xs, ctx);
    } else if (masked && masked_ == MaskedValues::kMultiply) {
      y = fold_multiplying(xs, ctx);
    } else {
      y = xs[0];
      for (size_t i = 1; i < xs.size(); ++i) y = fold_(y, xs[i]);
    }
    if (average_) y = ops::truediv(y, ops::fill(Shape({}), static_cast<double>(inputs.size()), y.dtype()));
    return {y};
  }

  Fold fold_;
  bool average_, two_inputs_;
  MaskedValues masked_;
};

template <const char *Name, Tensor (*Op)(const Tensor &, const Tensor &), bool Average = false,
          bool Two = false, MaskedValues Masked = MaskedValues::kIgnore>
class MergeOf final : public ElementwiseMerge {
 public:
  explicit MergeOf(const Config &config) : ElementwiseMerge(Name, config, Op, Average, Two, Masked) {}
};

constexpr char kAdd[] = "Add", kSubtract[] = "Subtract", kMultiply[] = "Multiply", kAverage[] = "Average",
               kMaximum[] = "Maximum", kMinimum[] = "Minimum";

// ------------------------------------------------------------------ Concatenate

class Concatenate final : public Layer {
 public:
  explicit Concatenate(const Config &config) : Concatenate(ConfigReader(config, "Concatenate")) {}

 private:
  explicit Concatenate(ConfigReader &&r) : Layer("Concatenate", r) {
    axis_ = r.get_int("axis", -1);
    r.finish();
    set_supports_masking(true);
  }

  // Keras's Concatenate.compute_mask: each input's mask (all true where it has none, widened
  // to the input's rank when it is shorter) concatenated along the axis, then any() over the
  // last axis.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                   const std::vector<Tensor> &masks) override {
    bool any = false;
    for (const Tensor &m : masks) any |= m.defined();
    if (!any) return {};
    const size_t axis = check_shapes(shapes_of(inputs));
    std::vector<Tensor> full;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor &x = inputs[i], &m = masks[i];
      if (!m.defined())
        full.push_back(ops::cast(ops::ones(x.shape()), DType::kBool));
      else if (m.rank() < x.rank())
        full.push_back(ops::broadcast_to(ops::expand_dims(m, -1), x.shape()));
      else
        full.push_back(m);
    }
    return {ops::reduce_any(ops::concat(full, static_cast<int64_t>(axis)), {-1})};
  }

  // The axis for these shapes, after checking that they match everywhere else.
  size_t check_shapes(const std::vector<PartialShape> &shapes) const {
    const std::string who = describe() + ": ";
    if (shapes.empty())
      fail(Code::kInvalidArgument, who, "got 0 inputs; it takes a list of at least 1 input");
    const int64_t rank = static_cast<int64_t>(shapes[0].size());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (rank == 0 || axis < 0 || axis >= rank)
      fail(Code::kInvalidArgument, who, "axis ", axis_, " is out of range for input shapes ",
           shapes_string(shapes));
    for (const PartialShape &s : shapes) {
      bool ok = static_cast<int64_t>(s.size()) == rank;
      for (int64_t i = 0; ok && i < rank; ++i)
        ok =
            i == axis || s[size_t(i)] < 0 || shapes[0][size_t(i)] < 0 || s[size_t(i)] == shapes[0][size_t(i)];
      if (!ok)
        fail(Code::kInvalidArgument, who,
             "requires inputs with matching shapes except for the concatenation axis ", axis_,
             "; got input shapes ", shapes_string(shapes));
    }
    return static_cast<size_t>(axis);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override { check_shapes(shapes); }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const size_t axis = check_shapes(shapes_of(inputs));
    if (inputs.size() == 1) return {inputs[0]};
    return {ops::concat(inputs, static_cast<int64_t>(axis))};
  }

  void add_config(Config &c) const override { c.set("axis", axis_); }

  int64_t axis_;
};

// keras.layers.Dot(axes, normalize=False): the dot product of two inputs' samples along one axis of
// each, as Keras's batch_dot: the batch, then x's other axes, then y's (two rank-2 inputs give
// [B, 1]). axes: an int for both (a negative one counted from each input's end) or [x axis, y axis];
// never the batch axis. normalize: each input L2-normalized along its axis first (the cosine
// proximity; Keras's ops.normalize with epsilon 1e-7). No output mask, as Keras's.
class Dot final : public Layer {
 public:
  explicit Dot(const Config &config) : Dot(ConfigReader(config, "Dot")) {}

 private:
  explicit Dot(ConfigReader &&r) : Layer("Dot", r) {
    if (!r.has("axes")) fail(Code::kInvalidArgument, "Dot: config key 'axes' is required");
    axes_ = IntOrList::read(r, "axes", {});
    if (axes_.values.size() != (axes_.list ? 2u : 1u))
      fail(Code::kInvalidArgument, "Dot: axes must be an int or a list of two ints; got ",
           partial_shape_string(axes_.values));
    normalize_ = r.get_bool("normalize", false);
    r.finish();
    set_supports_masking(true);
  }

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &) override {
    return {};
  }

  // The axis of each input, after Keras's checks.
  std::pair<int64_t, int64_t> axes_for(const std::vector<PartialShape> &shapes) const {
    const std::string who = describe() + ": ";
    if (shapes.size() != 2)
      fail(Code::kInvalidArgument, who, "got ", shapes.size(), " inputs; it takes a list of 2");
    const int64_t r0 = static_cast<int64_t>(shapes[0].size()), r1 = static_cast<int64_t>(shapes[1].size());
    if (r0 < 2 || r1 < 2)
      fail(Code::kInvalidArgument, who, "input shapes ", shapes_string(shapes),
           "; expected inputs of rank 2 or more (a batch axis and a product axis)");
    const std::vector<int64_t> &axes = axes_.values;
    int64_t a0 = axes[0], a1 = axes_.list ? axes[1] : axes[0];
    if (a0 < 0) a0 += r0;
    if (a1 < 0) a1 += r1;
    if (a0 < 0 || a0 >= r0 || a1 < 0 || a1 >= r1)
      fail(Code::kInvalidArgument, who, "axes ", partial_shape_string(axes),
           " are out of range for input shapes ", shapes_string(shapes));
    if (a0 == 0 || a1 == 0)
      fail(Code::kInvalidArgument, who, "axes ", partial_shape_string(axes),
           " name the batch axis 0 of input shapes ", shapes_string(shapes), "; expected axes >= 1");
    const int64_t d0 = shapes[0][size_t(a0)], d1 = shapes[1][size_t(a1)];
    if (d0 >= 0 && d1 >= 0 && d0 != d1)
      fail(Code::kInvalidArgument, who, "incompatible input shapes: axis values ", d0, " (at axis ", a0,
           ") != ", d1, " (at axis ", a1, "); full input shapes ", shapes_string(shapes));
    return {a0, a1};
  }

  void build_impl(const std::vector<PartialShape> &shapes) override { axes_for(shapes); }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const auto [a0, a1] = axes_for(shapes_of(inputs));
    Tensor x = inputs[0], y = inputs[1];
    if (normalize_) {
      x = ops::l2_normalize(x, {a0}, 1e-14f);
      y = ops::l2_normalize(y, {a1}, 1e-14f);
    }
    // einsum: batch 'a', the product axis 'z', the others their own letters.
    std::string xs = "a", ys = "a", out = "a";
    char next = 'b';
    for (int64_t i = 1; i < x.rank(); ++i) {
      xs += i == a0 ? 'z' : next;
      if (i != a0) out += next++;
    }
    for (int64_t i = 1; i < y.rank(); ++i) {
      ys += i == a1 ? 'z' : next;
      if (i != a1) out += next++;
    }
    const Tensor r = ops::einsum(xs + "," + ys + "->" + out, {x, y});
    return {r.rank() == 1 ? ops::expand_dims(r, 1) : r};
  }

  void add_config(Config &c) const override {
    axes_.write(c, "axes");
    c.set("normalize", normalize_);
  }

  IntOrList axes_;
  bool normalize_ = false;
};

// ------------------------------------------------------------------ Permute / RepeatVector

class Permute final : public Layer {
 public:
  explicit Permute(const Config &config) : Permute(ConfigReader(config, "Permute")) {}

 private:
  explicit Permute(ConfigReader &&r) : Layer("Permute", r) {
    if (!r.has("dims")) fail(Code::kInvalidArgument, "Permute: config key 'dims' is required");
    dims_ = r.get_int_list("dims", {});
    std::vector<int64_t> sorted = dims_;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i)
      if (sorted[i] != static_cast<int64_t>(i) + 1)
        fail(Code::kInvalidArgument,
             "Permute: invalid permutation argument dims=", partial_shape_string(dims_),
             "; the indices must be consecutive and start from 1 (the batch axis is not permuted)");
    r.finish();
    input_spec_.ndim = static_cast<int64_t>(dims_.size()) + 1;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    std::vector<int64_t> perm = {0};
    perm.insert(perm.end(), dims_.begin(), dims_.end());
    return {ops::transpose(single_input(*this, inputs), perm)};
  }

  void add_config(Config &c) const override { c.set("dims", dims_); }

  std::vector<int64_t> dims_;
};

class RepeatVector final : public Layer {
 public:
  explicit RepeatVector(const Config &config) : RepeatVector(ConfigReader(config, "RepeatVector")) {}

 private:
  explicit RepeatVector(ConfigReader &&r) : Layer("RepeatVector", r) {
    n_ = r.get_int("n");
    if (n_ <= 0) fail(Code::kInvalidArgument, "RepeatVector: n must be positive; got ", n_);
    r.finish();
    input_spec_.ndim = 2;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    return {ops::tile(ops::expand_dims(single_input(*this, inputs), 1), {1, n_, 1})};
  }

  void add_config(Config &c) const override { c.set("n", n_); }

  int64_t n_;
};

}  // namespace

void register_merge_layers() {
  register_class<MergeOf<kAdd, ops::add>>(kAdd);
  register_class<MergeOf<kSubtract, ops::sub, false, true>>(kSubtract);
  register_class<MergeOf<kMultiply, ops::mul, false, false, MaskedValues::kMultiply>>(kMultiply);
  register_class<MergeOf<kAverage, ops::add, true>>(kAverage);
  register_class<MergeOf<kMaximum, ops::maximum, false, false, MaskedValues::kSelect>>(kMaximum);
  register_class<MergeOf<kMinimum, ops::minimum, false, false, MaskedValues::kSelect>>(kMinimum);
  register_class<Concatenate>("Concatenate");
  register_class<Dot>("Dot");
  register_class<Permute>("Permute");
  register_class<RepeatVector>("RepeatVector");
}

}  // namespace kiln::layers
