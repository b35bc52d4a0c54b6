// The built-in losses, their reduction and their registry. The formulas follow Keras 3's
// losses.py and its TensorFlow backend (nn.py): clipped probabilities when from_logits is false,
// the fused tf.nn.*_cross_entropy_with_logits ops when it is true.
#include "train/losses.h"

#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "core/factory_registry.h"
#include "core/utf8.h"
#include "ops/ops.h"
#include "train/callbacks.h"
#include "train/serialized.h"

namespace kiln::train {

using ops::fill;

namespace {

// A mask as bool (nonzero: valid).
Tensor as_bool(const Tensor &m) {
  return m.dtype() == DType::kBool ? m : ops::not_equal(m, ops::zeros(Shape{}, m.dtype()));
}

std::atomic<uint64_t> next_loss_id{1};

Tensor k(double v, const Tensor &like) { return fill(Shape{}, v, like.dtype()); }

void require_floating(const Tensor &t, const std::string &owner, const char *what) {
  if (!t.defined()) fail(Code::kInvalidArgument, owner, ": ", what, " is undefined");
  if (!is_floating(t.dtype()))
    fail(Code::kInvalidArgument, owner, ": ", what, " is ", t.description(), "; expected a floating dtype");
}

// Whether two shapes of one rank broadcast against each other (each dim equal, or one of them 1).
bool broadcastable(const Shape &a, const Shape &b) {
  for (int i = 0; i < a.rank(); ++i)
    if (a[i] != b[i] && a[i] != 1 && b[i] != 1) return false;
  return true;
}

// y_true cast to y_pred's dtype, ranks matched, shapes equal (or a clear error). With broadcast
// (the elementwise losses), shapes that broadcast against each other are taken as Keras's ops take
// them: MSE of y_true [B, 1] and y_pred [B, 3] compares each row's target with its three values.
void prepare_dense(Tensor &y_true, Tensor &y_pred, const std::string &owner, bool broadcast) {
  require_floating(y_pred, owner, "y_pred");
  if (!y_true.defined()) fail(Code::kInvalidArgument, owner, ": y_true is undefined");
  if (y_true.dtype() != y_pred.dtype()) y_true = ops::cast(y_true, y_pred.dtype());
  squeeze_or_expand_to_same_rank(y_true, y_pred);
  if (y_true.shape() != y_pred.shape() && !(broadcast && y_true.shape().rank() == y_pred.shape().rank() &&
                                            broadcastable(y_true.shape(), y_pred.shape())))
    fail(Code::kInvalidArgument, owner, ": y_true ", y_true.description(), " and y_pred ",
         y_pred.description(), broadcast ? " have shapes that do not broadcast" : " have different shapes");
  if (y_pred.shape().rank() == 0)
    fail(Code::kInvalidArgument, owner, ": y_pred is a scalar; expected at least one axis");
}

int64_t norm_axis(int64_t axis, int rank, const std::string &owner) {
  if (axis < -rank || axis >= rank)
    fail(Code::kInvalidArgument, owner, ": axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

Tensor clip_probabilities(const Tensor &p) { return ops::clip_by_value(p, kEpsilon, 1.0f - kEpsilon); }

// Keras's ops.nn.normalize(x, axis, order=2): x * min(rsqrt(sum(x^2)), 1 / epsilon).
Tensor l2_normalize_keras(const Tensor &x, int64_t axis) {
  Tensor inv = ops::rsqrt(ops::sum(ops::square(x), {axis}, true));
  return ops::mul(x, ops::minimum(inv, k(1.0 / kEpsilon, x)));
}

// ----------------------------------------------------------------- the losses

// The losses of y_true and y_pred of one shape (y_true cast to y_pred's dtype): per_sample gets
// them prepared.
class DenseLoss : public Loss {
 public:
  using Loss::Loss;
  Tensor call(const Tensor &yt, const Tensor &yp, Tensor *) const final {
    Tensor t = yt, p = yp;
    prepare_dense(t, p, name(), broadcast_);
    return per_sample(t, p);
  }

 protected:
  virtual Tensor per_sample(const Tensor &t, const Tensor &p) const = 0;
  bool broadcast_ = false;  // the elementwise losses: y_true and y_pred broadcast as Keras's ops
};

// The losses that are one function of y_true and y_pred (Keras's function of that name, in its
// op order), with no options of their own.
using ValuesFn = Tensor (*)(const Tensor &t, const Tensor &p);

class FnLoss final : public DenseLoss {
 public:
  FnLoss(ConfigReader &r, const char *class_name, const char *default_name, ValuesFn f)
      : DenseLoss(class_name, r, default_name), f_(f) {
    broadcast_ = true;
    r.finish();
  }

 protected:
  Tensor per_sample(const Tensor &t, const Tensor &p) const override { return f_(t, p); }

 private:
  ValuesFn f_;
};

Tensor mean_last(const Tensor &x) { return ops::mean(x, {-1}); }

Tensor mean_squared_error(const Tensor &t, const Tensor &p) { return mean_last(ops::square(ops::sub(p, t))); }

Tensor mean_absolute_error(const Tensor &t, const Tensor &p) { return mean_last(ops::abs(ops::sub(p, t))); }

// 100 * mean(|(t - p) / max(|t|, epsilon)|)
Tensor mean_absolute_percentage_error(const Tensor &t, const Tensor &p) {
  const Tensor diff = ops::abs(ops::div(ops::sub(t, p), ops::maximum(ops::abs(t), k(kEpsilon, p))));
  return ops::mul(k(100.0, p), mean_last(diff));
}

// mean(square(log(max(p, epsilon) + 1) - log(max(t, epsilon) + 1)))
Tensor mean_squared_logarithmic_error(const Tensor &t, const Tensor &p) {
  const Tensor one = k(1.0, p), eps = k(kEpsilon, p);
  const Tensor first = ops::log(ops::add(ops::maximum(p, eps), one));
  const Tensor second = ops::log(ops::add(ops::maximum(t, eps), one));
  return mean_last(ops::square(ops::sub(first, second)));
}

// mean(x + softplus(-2 x) - log(2)), x = p - t: log(cosh(x)) without overflow.
Tensor log_cosh(const Tensor &t, const Tensor &p) {
  const Tensor x = ops::sub(p, t);
  const Tensor v = ops::sub(ops::add(x, ops::softplus(ops::mul(x, k(-2.0, p)))),
                            k(static_cast<double>(std::log(2.0f)), p));  // Keras: float32 log(2)
  return mean_last(v);
}

// mean(p - t * log(p + epsilon))
Tensor poisson(const Tensor &t, const Tensor &p) {
  return mean_last(ops::sub(p, ops::mul(t, ops::log(ops::add(p, k(kEpsilon, p))))));
}

// Keras's convert_binary_labels_to_hinge: labels that are all 0 or 1 become -1 or 1; any other
// labels stay as they are.
Tensor hinge_labels(const Tensor &t) {
  const Tensor binary = ops::reduce_all(ops::logical_or(ops::equal(t, k(0.0, t)), ops::equal(t, k(1.0, t))));
  if (!*binary.data<bool>()) return t;
  return ops::sub(ops::mul(k(2.0, t), t), k(1.0, t));
}

// max(1 - t * p, 0)
Tensor hinge_margins(const Tensor &t, const Tensor &p) {
  return ops::maximum(ops::sub(k(1.0, p), ops::mul(hinge_labels(t), p)), k(0.0, p));
}

Tensor hinge(const Tensor &t, const Tensor &p) { return mean_last(hinge_margins(t, p)); }

Tensor squared_hinge(const Tensor &t, const Tensor &p) { return mean_last(ops::square(hinge_margins(t, p))); }

// max(neg - pos + 1, 0), pos = sum(t * p), neg = max((1 - t) * p) over the last axis.
Tensor categorical_hinge(const Tensor &t, const Tensor &p) {
  const Tensor pos = ops::sum(ops::mul(t, p), {-1});
  const Tensor neg = ops::max(ops::mul(ops::sub(k(1.0, p), t), p), {-1});
  return ops::maximum(ops::add(ops::sub(neg, pos), k(1.0, p)), k(0.0, p));
}

class Huber final : public DenseLoss {
 public:
  explicit Huber(ConfigReader &r) : DenseLoss("Huber", r, "huber_loss"), delta_(r.get_float("delta", 1.0)) {
    broadcast_ = true;
    r.finish();
    if (!(delta_ >= 0)) fail(Code::kInvalidArgument, "Huber: delta is ", delta_, "; expected >= 0");
  }
  void add_config(Config &c) const override { c.set("delta", delta_); }

 protected:
  Tensor per_sample(const Tensor &t, const Tensor &p) const override {
    Tensor err = ops::sub(p, t);
    Tensor abs_err = ops::abs(err);
    Tensor half = k(0.5, p);
    Tensor quad = ops::mul(half, ops::square(err));
    Tensor lin = ops::sub(ops::mul(k(delta_, p), abs_err), k(0.5 * delta_ * delta_, p));
    return ops::mean(ops::where(ops::less_equal(abs_err, k(delta_, p)), quad, lin), {-1});
  }

 private:
  double delta_;
};

class KLDivergence final : public DenseLoss {
 public:
  explicit KLDivergence(ConfigReader &r) : DenseLoss("KLDivergence", r, "kl_divergence") { r.finish(); }

 protected:
  Tensor per_sample(const Tensor &yt, const Tensor &yp) const override {
    const Tensor t = ops::clip_by_value(yt, kEpsilon, 1.0f);
    const Tensor p = ops::clip_by_value(yp, kEpsilon, 1.0f);
    return ops::sum(ops::mul(t, ops::log(ops::div(t, p))), {-1});
  }
};

class CosineSimilarity final : public DenseLoss {
 public:
  explicit CosineSimilarity(ConfigReader &r)
      : DenseLoss("CosineSimilarity", r, "cosine_similarity"), axis_(r.get_int("axis", -1)) {
    r.finish();
  }
  void add_config(Config &c) const override { c.set("axis", axis_); }

 protected:
  Tensor per_sample(const Tensor &t, const Tensor &p) const override {
    const int64_t axis = norm_axis(axis_, p.shape().rank(), name());
    return ops::neg(ops::sum(ops::mul(l2_normalize_keras(t, axis), l2_normalize_keras(p, axis)), {axis}));
  }

 private:
  int64_t axis_;
};

// Keras's TensorFlow backend (_get_logits): a y_pred a sigmoid or softmax activation made carries
// its logits, which crossentropy then uses in place of the clipped probabilities (so a saturated
// output keeps its loss and gradient). With from_logits=True on such an output Keras warns and
// uses the logits too. The second member: whether the first is logits.
std::pair<Tensor, bool> logits_if_carried(const Tensor &p, bool from_logits, const std::string &owner,
                                          std::atomic<bool> &warned) {
  const Tensor &logits = p.keras_logits();
  if (!logits.defined() || logits.shape() != p.shape() || logits.dtype() != p.dtype())
    return {p, from_logits};
  if (from_logits && !warned.exchange(true))
    callback_warning(
        owner +
        " received from_logits=True, but y_pred was produced by a sigmoid or softmax activation "
        "and thus does not represent logits; the activation's logits are used. Was this intended?");
  return {logits, true};
}

// BinaryCrossentropy and CategoricalCrossentropy: from_logits, label_smoothing and axis.
class Crossentropy : public DenseLoss {
 public:
  // own_keys: a subclass's config keys, which it reads after this constructor.
  Crossentropy(ConfigReader &r, const char *class_name, const char *default_name,
               std::initializer_list<const char *> own_keys = {})
      : DenseLoss(class_name, r, default_name),
        from_logits_(r.get_bool("from_logits", false)),
        label_smoothing_(r.get_float("label_smoothing", 0.0)),
        axis_(r.get_int("axis", -1)) {
    r.accept(own_keys);
    r.finish();
    if (!(label_smoothing_ >= 0 && label_smoothing_ <= 1))
      fail(Code::kInvalidArgument, class_name, ": label_smoothing is ", label_smoothing_,
           "; expected [0, 1]");
  }
  void add_config(Config &c) const override {
    c.set("from_logits", from_logits_).set("label_smoothing", label_smoothing_).set("axis", axis_);
  }

 protected:
  // y_true * (1 - label_smoothing) + label_smoothing * share.
  Tensor smooth(const Tensor &t, double share) const {
    if (label_smoothing_ == 0) return t;
    return ops::add(ops::mul(t, k(1.0 - label_smoothing_, t)), k(label_smoothing_ * share, t));
  }
  int64_t axis(const Tensor &p) const { return norm_axis(axis_, p.shape().rank(), name()); }
  std::pair<Tensor, bool> prediction(const Tensor &p) const {
    return logits_if_carried(p, from_logits_, name(), warned_);
  }

  mutable std::atomic<bool> warned_{false};
  bool from_logits_;
  double label_smoothing_;
  int64_t axis_;
};

// Elementwise binary crossentropy of targets t: from logits q (the fused, stable op), or from
// probabilities q clipped to [epsilon, 1 - epsilon] (Keras's TensorFlow backend).
Tensor binary_crossentropy(const Tensor &t, const Tensor &q, bool logits) {
  if (logits) return ops::sigmoid_cross_entropy_with_logits(t, q);
  const Tensor c = clip_probabilities(q);
  const Tensor one = k(1.0, c);
  return ops::neg(ops::add(ops::mul(t, ops::log(c)), ops::mul(ops::sub(one, t), ops::log(ops::sub(one, c)))));
}

class BinaryCrossentropy final : public Crossentropy {
 public:
  explicit BinaryCrossentropy(ConfigReader &r)
      : Crossentropy(r, "BinaryCrossentropy", "binary_crossentropy") {}

 protected:
  Tensor per_sample(const Tensor &yt, const Tensor &p) const override {
    const auto [q, logits] = prediction(p);
    return ops::mean(binary_crossentropy(smooth(yt, 0.5), q, logits), {axis(p)});
  }
};

// Keras's binary_focal_crossentropy: the binary crossentropy (from the logits when y_pred has
// them, as BinaryCrossentropy) times (1 - p_t)^gamma, p_t = t p + (1 - t)(1 - p) on the
// probabilities, and with apply_class_balancing times t alpha + (1 - t)(1 - alpha).
class BinaryFocalCrossentropy final : public Crossentropy {
 public:
  explicit BinaryFocalCrossentropy(ConfigReader &r)
      : Crossentropy(r, "BinaryFocalCrossentropy", "binary_focal_crossentropy",
                     {"apply_class_balancing", "alpha", "gamma"}),
        apply_class_balancing_(r.get_bool("apply_class_balancing", false)),
        alpha_(r.get_float("alpha", 0.25)),
        gamma_(r.get_float("gamma", 2.0)) {
    if (!(gamma_ >= 0)) fail(Code::kInvalidArgument, name(), ": gamma is ", gamma_, "; expected >= 0");
  }
  void add_config(Config &c) const override {
    c.set("apply_class_balancing", apply_class_balancing_).set("alpha", alpha_).set("gamma", gamma_);
    Crossentropy::add_config(c);
  }

 protected:
  Tensor per_sample(const Tensor &yt, const Tensor &yp) const override {
    const Tensor t = smooth(yt, 0.5);
    const Tensor one = k(1.0, yp);
    // Keras: from_logits takes the sigmoid first; the crossentropy then finds its logits.
    const Tensor p = from_logits_ ? ops::sigmoid(yp) : yp;
    const auto [q, logits] = from_logits_ ? std::pair<Tensor, bool>(yp, true) : prediction(yp);
    const Tensor bce = binary_crossentropy(t, q, logits);
    const Tensor p_t = ops::add(ops::mul(t, p), ops::mul(ops::sub(one, t), ops::sub(one, p)));
    Tensor focal = ops::mul(ops::pow(ops::sub(one, p_t), k(gamma_, yp)), bce);
    if (apply_class_balancing_) {
      const Tensor alpha = k(alpha_, yp);
      focal = ops::mul(ops::add(ops::mul(t, alpha), ops::mul(ops::sub(one, t), ops::sub(one, alpha))), focal);
    }
    return ops::mean(focal, {axis(yp)});
  }

 private:
  bool apply_class_balancing_;
  double alpha_;
  double gamma_;
};

// Keras's categorical_focal_crossentropy: y_pred (softmax taken first when from_logits) made to sum
// to 1 over the axis and clipped, then sum(alpha (1 - p)^gamma (-t log p)) over the axis. alpha is
// a number or one value per class (a list, broadcast against the last axis as Keras's multiply).
// No logits are recovered from a softmax output here: Keras's function works on the probabilities.
class CategoricalFocalCrossentropy final : public Crossentropy {
 public:
  explicit CategoricalFocalCrossentropy(ConfigReader &r)
      : Crossentropy(r, "CategoricalFocalCrossentropy", "categorical_focal_crossentropy", {"alpha", "gamma"}),
        gamma_(r.get_float("gamma", 2.0)) {
    if (r.has("alpha")) {
      alpha_list_ = r.config().type("alpha") == Config::Type::kList;
      alpha_ = r.config().get_float_list("alpha");
      if (alpha_.empty())
        fail(Code::kInvalidArgument, name(), ": alpha is an empty list; expected a number or one per class");
    }
    if (!(gamma_ >= 0)) fail(Code::kInvalidArgument, name(), ": gamma is ", gamma_, "; expected >= 0");
  }
  void add_config(Config &c) const override {
    Crossentropy::add_config(c);
    if (alpha_list_)
      c.set("alpha", alpha_);
    else
      c.set("alpha", alpha_[0]);
    c.set("gamma", gamma_);
  }

 protected:
  Tensor per_sample(const Tensor &yt, const Tensor &yp) const override {
    const int64_t ax = axis(yp);
    const int64_t classes = yp.shape()[ax];
    if (classes == 1 && !warned_one_class_.exchange(true))
      callback_warning(name() + ": y_pred " + yp.description() +
                       " has 1 class on its axis; expected (batch_size, num_classes) with num_classes > 1. "
                       "Consider BinaryFocalCrossentropy or binary_crossentropy for 2 classes.");
    const int64_t last = yp.shape()[yp.shape().rank() - 1];
    const int64_t n = static_cast<int64_t>(alpha_.size());
    if (alpha_list_ && n != 1 && n != last)
      fail(Code::kInvalidArgument, name(), ": alpha has ", n, " values, but y_pred ", yp.description(),
           " has ", last, " on its last axis; expected one alpha per class (or a single number)");
    const Tensor t = smooth(yt, 1.0 / static_cast<double>(classes));  // Keras: classes on the axis
    const Tensor p = from_logits_ ? ops::softmax(yp, ax) : yp;
    const Tensor out = clip_probabilities(ops::div(p, ops::sum(p, {ax}, true)));
    const Tensor cce = ops::mul(ops::neg(t), ops::log(out));
    const Tensor modulating = ops::pow(ops::sub(k(1.0, yp), out), k(gamma_, yp));
    const Tensor alpha = alpha_list_ ? ops::cast(Tensor::from_data(DType::kFloat64, Shape({n}), alpha_.data(),
                                                                   alpha_.size() * sizeof(double)),
                                                 yp.dtype())
                                     : k(alpha_[0], yp);
    return ops::sum(ops::mul(ops::mul(modulating, alpha), cce), {ax});
  }

 private:
  std::vector<double> alpha_{0.25};
  bool alpha_list_ = false;
  double gamma_;
  mutable std::atomic<bool> warned_one_class_{false};
};

class CategoricalCrossentropy final : public Crossentropy {
 public:
  explicit CategoricalCrossentropy(ConfigReader &r)
      : Crossentropy(r, "CategoricalCrossentropy", "categorical_crossentropy") {}

 protected:
  Tensor per_sample(const Tensor &yt, const Tensor &p) const override {
    // Keras 3 divides the smoothing by the number of classes on the axis (tf.keras 2 took the
    // last dim's size whatever the axis).
    const int64_t ax = axis(p);
    const Tensor t = smooth(yt, 1.0 / static_cast<double>(p.shape()[ax]));
    const auto [q, logits] = prediction(p);
    if (logits) return ops::softmax_cross_entropy_with_logits(t, q, ax);
    Tensor c = clip_probabilities(ops::div(q, ops::sum(q, {ax}, true)));
    return ops::neg(ops::sum(ops::mul(t, ops::log(c)), {ax}));
  }
};

// Dice and Tversky: overlap of y_true and y_pred summed over `axis` (Keras's None: every axis,
// one value for the batch; an int or a list of ints: per remaining index, e.g. (1, 2, 3) for one
// value per image; an empty list: per element, as ops.sum over no axes).
class OverlapLoss : public DenseLoss {
 public:
  OverlapLoss(ConfigReader &r, const char *class_name, const char *default_name)
      : DenseLoss(class_name, r, default_name) {
    if (r.has("axis")) {
      axis_list_ = r.config().type("axis") == Config::Type::kList;
      axes_ = r.config().get_int_list("axis");
    }
  }
  void add_config(Config &c) const override {
    if (!axes_)
      c.set_null("axis");
    else if (axis_list_)
      c.set("axis", *axes_);
    else
      c.set("axis", (*axes_)[0]);
  }

 protected:
  // Keras's ops.sum over axis: None sums every axis, an empty list none.
  Tensor total(const Tensor &x) const {
    if (!axes_) return ops::sum(x);
    return axes_->empty() ? x : ops::sum(x, *axes_);
  }
  // Checks the axes against y_pred's rank (named as the loss, with the rank) before the sums.
  void check_axes(const Tensor &p) const {
    if (!axes_) return;
    const int rank = p.shape().rank();
    std::vector<bool> seen(static_cast<size_t>(rank), false);
    for (int64_t a : *axes_) {
      const int64_t ax = norm_axis(a, rank, name());
      if (seen[static_cast<size_t>(ax)])
        fail(Code::kInvalidArgument, name(), ": axis ", a, " is given twice (y_pred has rank ", rank, ")");
      seen[static_cast<size_t>(ax)] = true;
    }
  }

 private:
  std::optional<std::vector<int64_t>> axes_;
  bool axis_list_ = false;
};

// Keras's dice: 1 - 2 sum(t p) / (sum(t) + sum(p) + epsilon).
class Dice final : public OverlapLoss {
 public:
  explicit Dice(ConfigReader &r) : OverlapLoss(r, "Dice", "dice") { r.finish(); }

 protected:
  Tensor per_sample(const Tensor &t, const Tensor &p) const override {
    check_axes(p);
    const Tensor intersection = total(ops::mul(t, p));
    const Tensor dice =
        ops::div(ops::mul(k(2.0, p), intersection), ops::add(ops::add(total(t), total(p)), k(kEpsilon, p)));
    return ops::sub(k(1.0, p), dice);
  }
};

// Keras's tversky: 1 - TP / (TP + alpha FP + beta FN + epsilon), TP = sum(p t),
// FP = sum((1 - t) p), FN = sum(t (1 - p)).
class Tversky final : public OverlapLoss {
 public:
  explicit Tversky(ConfigReader &r)
      : OverlapLoss(r, "Tversky", "tversky"),
        alpha_(r.get_float("alpha", 0.5)),
        beta_(r.get_float("beta", 0.5)) {
    r.finish();
  }
  void add_config(Config &c) const override {
    c.set("alpha", alpha_).set("beta", beta_);
    OverlapLoss::add_config(c);
  }

 protected:
  Tensor per_sample(const Tensor &t, const Tensor &p) const override {
    check_axes(p);
    const Tensor one = k(1.0, p);
    const Tensor tp = total(ops::mul(p, t));
    const Tensor fp = total(ops::mul(ops::sub(one, t), p));
    const Tensor fn = total(ops::mul(t, ops::sub(one, p)));
    const Tensor denominator = ops::add(
        ops::add(ops::add(tp, ops::mul(fp, k(alpha_, p))), ops::mul(fn, k(beta_, p))), k(kEpsilon, p));
    return ops::sub(one, ops::div(tp, denominator));
  }

 private:
  double alpha_, beta_;
};

// Integer labels (float labels cast), range-checked here so the error names the loss.
Tensor sparse_labels(const Tensor &y_true, int64_t classes, const std::optional<int64_t> &ignore,
                     const std::string &owner) {
  Tensor labels = y_true;
  if (labels.dtype() != DType::kInt32 && labels.dtype() != DType::kInt64) {
    if (!is_floating(labels.dtype()) && labels.dtype() != DType::kUInt8)
      fail(Code::kInvalidArgument, owner, ": y_true is ", labels.description(),
           "; expected integer class ids");
    if (is_floating(labels.dtype())) {
      // Checked as the floats they are, so a NaN or a huge label is named as given (the int64
      // cast would turn it into 0 or INT64_MAX).
      const Tensor f64 = ops::cast(labels, DType::kFloat64);
      const double *f = f64.data<double>();
      for (int64_t i = 0; i < f64.num_elements(); ++i) {
        const double t = std::trunc(f[i]);
        if (ignore && t == static_cast<double>(*ignore)) continue;
        if (!(t >= 0.0 && t < static_cast<double>(classes)))
          fail(Code::kInvalidArgument, owner, ": label ", f[i], " at flat index ", i,
               " is out of range; y_pred has ", classes, " classes, so labels must be in [0, ", classes, ")");
      }
      return ops::cast(labels, DType::kInt64);  // every label checked above
    }
    labels = ops::cast(labels, DType::kInt64);
  }
  const Tensor as64 = labels.dtype() == DType::kInt64 ? labels : ops::cast(labels, DType::kInt64);
  const int64_t *v = as64.data<int64_t>();
  for (int64_t i = 0; i < as64.num_elements(); ++i) {
    if (ignore && v[i] == *ignore) continue;
    if (v[i] < 0 || v[i] >= classes)
      fail(Code::kInvalidArgument, owner, ": label ", v[i], " at flat index ", i,
           " is out of range; y_pred has ", classes, " classes, so labels must be in [0, ", classes, ")");
  }
  return labels;
}

// y_true as labels for y_pred [..., classes]: of shape [...] (a trailing 1 squeezed), or a clear error.
Tensor labels_for(const Tensor &yt, const Tensor &yp, const std::string &owner) {
  Tensor t = yt;
  const int rank = yp.shape().rank();
  if (t.shape().rank() == rank && t.shape()[rank - 1] == 1) t = ops::squeeze(t, {-1});
  std::vector<int64_t> want = yp.shape().to_vector();
  want.pop_back();
  if (t.shape().to_vector() != want)
    fail(Code::kInvalidArgument, owner, ": y_true ", yt.description(), " does not match y_pred ",
         yp.description(), "; expected labels of shape ", Shape(want).to_string(), " (or with a trailing 1)");
  return t;
}

class SparseCategoricalCrossentropy final : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(ConfigReader &r)
      : Loss("SparseCategoricalCrossentropy", r, "sparse_categorical_crossentropy"),
        from_logits_(r.get_bool("from_logits", false)),
        axis_(r.get_int("axis", -1)) {
    if (r.has("ignore_class")) ignore_class_ = r.get_int("ignore_class");
    r.accept({"ignore_class"});
    r.finish();
  }
  Tensor call(const Tensor &yt, const Tensor &yp, Tensor *mask) const override {
    require_floating(yp, name(), "y_pred");
    if (!yt.defined()) fail(Code::kInvalidArgument, name(), ": y_true is undefined");
    const int rank = yp.shape().rank();
    if (rank == 0) fail(Code::kInvalidArgument, name(), ": y_pred is a scalar; expected [..., classes]");
    // Keras's TensorFlow backend takes the classes on the last axis only.
    if (axis_ != -1 && axis_ != rank - 1)
      fail(Code::kInvalidArgument, name(), ": only axis=-1 (the last axis, ", rank - 1,
           " for y_pred of rank ", rank, ") is supported; got axis=", axis_);
    const int64_t classes = yp.shape()[rank - 1];
    Tensor t = sparse_labels(labels_for(yt, yp, name()), classes, ignore_class_, name());
    // Keras multiplies y_pred by the ignore_class mask first, which leaves no logits to find.
    bool logits = from_logits_;
    Tensor p = yp, valid;
    if (!ignore_class_) std::tie(p, logits) = logits_if_carried(yp, from_logits_, name(), warned_);
    if (ignore_class_) {
      valid = ops::not_equal(t, fill(Shape{}, static_cast<double>(*ignore_class_), t.dtype()));
      t = ops::where(valid, t, ops::zeros_like(t));
      p = ops::mul(p, ops::cast(ops::expand_dims(valid, -1), p.dtype()));
    }
    if (!logits) p = ops::log(clip_probabilities(p));
    Tensor res = ops::sparse_softmax_cross_entropy_with_logits(t, p);
    if (ignore_class_) {
      res = ops::where(valid, res, ops::zeros_like(res));
      if (mask) *mask = valid;
    }
    return res;
  }
  void add_config(Config &c) const override {
    c.set("from_logits", from_logits_).set("ignore_class", ignore_class_).set("axis", axis_);
  }

 private:
  bool from_logits_;
  int64_t axis_;
  std::optional<int64_t> ignore_class_;
  mutable std::atomic<bool> warned_{false};
};

// Keras's categorical_generalized_cross_entropy: (1 - p^q) / q, p = y_pred's probability of the
// integer label y_true ([...] or [..., 1] for y_pred [..., classes]).
class CategoricalGeneralizedCrossEntropy final : public Loss {
 public:
  explicit CategoricalGeneralizedCrossEntropy(ConfigReader &r)
      : Loss("CategoricalGeneralizedCrossEntropy", r, "categorical_generalized_cross_entropy"),
        q_(r.get_float("q", 0.5)) {
    r.finish();
    if (!(q_ > 0 && q_ < 1))
      fail(Code::kInvalidArgument, name(), ": q is ", q_, "; expected the interval (0, 1)");
  }
  Tensor call(const Tensor &yt, const Tensor &yp, Tensor *) const override {
    require_floating(yp, name(), "y_pred");
    if (!yt.defined()) fail(Code::kInvalidArgument, name(), ": y_true is undefined");
    if (yp.shape().rank() == 0)
      fail(Code::kInvalidArgument, name(), ": y_pred is a scalar; expected [..., classes]");
    const int64_t classes = yp.shape()[yp.shape().rank() - 1];
    const Tensor labels = sparse_labels(labels_for(yt, yp, name()), classes, std::nullopt, name());
    const Tensor p = ops::sum(ops::mul(yp, ops::one_hot(labels, classes, 1.0, 0.0, -1, yp.dtype())), {-1});
    return ops::div(ops::sub(k(1.0, yp), ops::pow(p, k(q_, yp))), k(q_, yp));
  }
  void add_config(Config &c) const override { c.set("q", q_); }

 private:
  double q_;
};

// Keras's circle (Sun et al. 2020) over a batch of L2-normalized embeddings y_pred [B, D] with
// integer labels y_true [B] (or [B, 1]): each sample against every other one of the batch. Its
// per-sample losses carry the mask loss > 0, as Keras's, so the reduction averages the samples with
// a loss (a sample whose label no other sample has gets none).
class Circle final : public Loss {
 public:
  explicit Circle(ConfigReader &r)
      : Loss("Circle", r, "circle"),
        gamma_(r.get_float("gamma", 80.0)),
        margin_(r.get_float("margin", 0.4)),
        remove_diagonal_(r.get_bool("remove_diagonal", true)) {
    r.finish();
  }
  Tensor call(const Tensor &yt, const Tensor &yp, Tensor *mask) const override {
    require_floating(yp, name(), "y_pred");
    if (!yt.defined()) fail(Code::kInvalidArgument, name(), ": y_true is undefined");
    if (yp.shape().rank() != 2)
      fail(Code::kInvalidArgument, name(), ": y_pred is ", yp.description(),
           "; expected embeddings [batch, dims]");
    const int64_t b = yp.shape()[0];
    const Shape &ts = yt.shape();
    if (!((ts.rank() == 1 && ts[0] == b) || (ts.rank() == 2 && ts[0] == b && ts[1] == 1)))
      fail(Code::kInvalidArgument, name(), ": y_true ", yt.description(), " does not match y_pred ",
           yp.description(), "; expected integer labels [", b, "] or [", b, ", 1]");
    if (!is_floating(yt.dtype()) && !is_integer(yt.dtype()))
      fail(Code::kInvalidArgument, name(), ": y_true is ", yt.description(), "; expected integer labels");
    // Keras casts to int32; int64 keeps labels past 2^31 apart (floats truncate either way).
    const Tensor labels = ops::cast(ops::reshape(yt, {b}), DType::kInt64);
    Tensor positive = ops::equal(ops::reshape(labels, {b, 1}), ops::reshape(labels, {1, b}));
    const Tensor negative = ops::logical_not(positive);
    if (remove_diagonal_) {
      const Tensor index = ops::range_int64(0, b, 1);
      positive = ops::logical_and(positive,
                                  ops::not_equal(ops::reshape(index, {b, 1}), ops::reshape(index, {1, b})));
    }
    const Tensor zero = k(0.0, yp);
    const Tensor distances = ops::maximum(ops::sub(k(1.0, yp), ops::matmul(yp, yp, false, true)), zero);
    const Tensor pos_mask = ops::cast(positive, yp.dtype()), neg_mask = ops::cast(negative, yp.dtype());
    const Tensor pos_weights = ops::maximum(ops::mul(ops::add(k(margin_, yp), distances), pos_mask), zero);
    const Tensor neg_weights =
        ops::maximum(ops::mul(ops::sub(k(1.0 + margin_, yp), distances), neg_mask), zero);
    const Tensor pos_dists = ops::sub(k(margin_, yp), distances);
    const Tensor neg_dists = ops::sub(k(1.0 - margin_, yp), distances);
    const Tensor pos_w = ops::mul(ops::mul(k(-gamma_, yp), pos_weights), pos_dists);
    const Tensor neg_w = ops::mul(ops::mul(k(gamma_, yp), neg_weights), neg_dists);
    const Tensor none = k(-std::numeric_limits<double>::infinity(), yp);
    const Tensor p_loss = ops::reduce_logsumexp(ops::where(positive, pos_w, none), {1});
    const Tensor n_loss = ops::reduce_logsumexp(ops::where(negative, neg_w, none), {1});
    const Tensor loss = ops::softplus(ops::add(p_loss, n_loss));
    if (mask) *mask = ops::greater(loss, zero);
    return loss;
  }
  void add_config(Config &c) const override {
    c.set("gamma", gamma_).set("margin", margin_).set("remove_diagonal", remove_diagonal_);
  }

 private:
  double gamma_, margin_;
  bool remove_diagonal_;
};

// Keras's CTC: integer labels y_true [B, max_length] padded with 0 (the blank, Keras's
// mask_index) at the end, logits y_pred [B, frames, classes]; every sample uses all its frames
// and its non-zero labels. Float labels truncate first (so 0.5 is padding).
class CTC final : public Loss {
 public:
  explicit CTC(ConfigReader &r) : Loss("CTC", r, "ctc") { r.finish(); }
  Tensor call(const Tensor &yt, const Tensor &yp, Tensor *) const override {
    require_floating(yp, name(), "y_pred");
    if (!yt.defined()) fail(Code::kInvalidArgument, name(), ": y_true is undefined");
    if (yp.shape().rank() != 3)
      fail(Code::kInvalidArgument, name(), ": y_pred is ", yp.description(),
           "; expected logits [batch, frames, classes]");
    const int64_t batch = yp.shape()[0], frames = yp.shape()[1];
    if (yt.shape().rank() != 2 || yt.shape()[0] != batch)
      fail(Code::kInvalidArgument, name(), ": y_true ", yt.description(), " does not match y_pred ",
           yp.description(), "; expected integer labels [", batch, ", max_length]");
    if (yp.shape()[2] == 0)
      fail(Code::kInvalidArgument, name(), ": y_pred ", yp.description(),
           " has 0 classes; expected at least 1 (class 0 is the blank)");
    const Tensor labels = ops::cast(sparse_labels(yt, yp.shape()[2], std::nullopt, name()), DType::kInt64);
    const int64_t width = labels.shape()[1];
    const int64_t *v = labels.data<int64_t>();
    std::vector<int64_t> lengths(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      int64_t n = 0;
      for (int64_t i = 0; i < width; ++i) {
        if (v[b * width + i] == 0) continue;
        if (n != i)
          fail(Code::kInvalidArgument, name(), ": y_true[", b, "] has label ", v[b * width + i], " at ", i,
               " after a 0; 0 is the blank (mask) index and may only pad the end of a row");
        ++n;
      }
      lengths[static_cast<size_t>(b)] = n;
    }
    const Tensor label_length =
        Tensor::from_data(DType::kInt64, Shape{batch}, lengths.data(), lengths.size() * sizeof(int64_t));
    const Tensor logit_length = fill(Shape{batch}, static_cast<double>(frames), DType::kInt64);
    return ops::ctc_loss(labels, yp, label_length, logit_length, false, 0);
  }
};

// ----------------------------------------------------------------- registry

using Factory = std::function<LossPtr(ConfigReader &)>;

template <typename T>
Factory factory() {
  return [](ConfigReader &r) { return std::make_shared<T>(r); };
}

Factory fn_loss(const char *class_name, const char *default_name, ValuesFn f) {
  return [=](ConfigReader &r) { return std::make_shared<FnLoss>(r, class_name, default_name, f); };
}

const std::map<std::string, Factory> &factories() {
  static const std::map<std::string, Factory> f = {
      {"BinaryCrossentropy", factory<BinaryCrossentropy>()},
      {"CategoricalCrossentropy", factory<CategoricalCrossentropy>()},
      {"CosineSimilarity", factory<CosineSimilarity>()},
      {"Huber", factory<Huber>()},
      {"KLDivergence", factory<KLDivergence>()},
      {"MeanAbsoluteError", fn_loss("MeanAbsoluteError", "mean_absolute_error", mean_absolute_error)},
      {"MeanAbsolutePercentageError", fn_loss("MeanAbsolutePercentageError", "mean_absolute_percentage_error",
                                              mean_absolute_percentage_error)},
      {"MeanSquaredError", fn_loss("MeanSquaredError", "mean_squared_error", mean_squared_error)},
      {"MeanSquaredLogarithmicError", fn_loss("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
                                              mean_squared_logarithmic_error)},
      {"LogCosh", fn_loss("LogCosh", "log_cosh", log_cosh)},
      {"Poisson", fn_loss("Poisson", "poisson", poisson)},
      {"Hinge", fn_loss("Hinge", "hinge", hinge)},
      {"SquaredHinge", fn_loss("SquaredHinge", "squared_hinge", squared_hinge)},
      {"CategoricalHinge", fn_loss("CategoricalHinge", "categorical_hinge", categorical_hinge)},
      {"BinaryFocalCrossentropy", factory<BinaryFocalCrossentropy>()},
      {"SparseCategoricalCrossentropy", factory<SparseCategoricalCrossentropy>()},
      {"CategoricalFocalCrossentropy", factory<CategoricalFocalCrossentropy>()},
      {"Dice", factory<Dice>()},
      {"Tversky", factory<Tversky>()},
      {"CategoricalGeneralizedCrossEntropy", factory<CategoricalGeneralizedCrossEntropy>()},
      {"Circle", factory<Circle>()},
      {"CTC", factory<CTC>()},
  };
  return f;
}

// Keras's function names and aliases (keras.losses.get).
const std::map<std::string, std::string> &aliases() {
  static const std::map<std::string, std::string> a = {
      {"binary_crossentropy", "BinaryCrossentropy"},
      {"categorical_crossentropy", "CategoricalCrossentropy"},
      {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"},
      {"mean_squared_error", "MeanSquaredError"},
      {"mse", "MeanSquaredError"},
      {"MSE", "MeanSquaredError"},
      {"mean_absolute_error", "MeanAbsoluteError"},
      {"mae", "MeanAbsoluteError"},
      {"MAE", "MeanAbsoluteError"},
      {"huber", "Huber"},
      {"huber_loss", "Huber"},
      {"kl_divergence", "KLDivergence"},
      {"kld", "KLDivergence"},
      {"KLD", "KLDivergence"},
      {"kullback_leibler_divergence", "KLDivergence"},
      {"cosine_similarity", "CosineSimilarity"},
      {"mean_absolute_percentage_error", "MeanAbsolutePercentageError"},
      {"mape", "MeanAbsolutePercentageError"},
      {"MAPE", "MeanAbsolutePercentageError"},
      {"mean_squared_logarithmic_error", "MeanSquaredLogarithmicError"},
      {"msle", "MeanSquaredLogarithmicError"},
      {"MSLE", "MeanSquaredLogarithmicError"},
      {"log_cosh", "LogCosh"},
      {"logcosh", "LogCosh"},
      {"poisson", "Poisson"},
      {"hinge", "Hinge"},
      {"squared_hinge", "SquaredHinge"},
      {"categorical_hinge", "CategoricalHinge"},
      {"binary_focal_crossentropy", "BinaryFocalCrossentropy"},
      {"categorical_focal_crossentropy", "CategoricalFocalCrossentropy"},
      {"dice", "Dice"},
      {"tversky", "Tversky"},
      {"circle", "Circle"},
      {"ctc", "CTC"},
      {"categorical_generalized_cross_entropy", "CategoricalGeneralizedCrossEntropy"},
      {"bce", "BinaryCrossentropy"},
      {"BCE", "BinaryCrossentropy"},
  };
  return a;
}

}  // namespace

Reduction reduction_from_string(const std::string &s, const std::string &owner) {
  if (s == "sum_over_batch_size" || s == "auto") return Reduction::kSumOverBatchSize;
  if (s == "sum") return Reduction::kSum;
  if (s == "none") return Reduction::kNone;
  if (s == "mean") return Reduction::kMean;
  if (s == "mean_with_sample_weight") return Reduction::kMeanWithSampleWeight;
  fail(Code::kInvalidArgument, owner, ": reduction '", s,
       "' is not valid; expected sum_over_batch_size, sum, mean, mean_with_sample_weight or none");
}

const char *reduction_name(Reduction r) {
  switch (r) {
    case Reduction::kSum:
      return "sum";
    case Reduction::kNone:
      return "none";
    case Reduction::kMean:
      return "mean";
    case Reduction::kMeanWithSampleWeight:
      return "mean_with_sample_weight";
    case Reduction::kSumOverBatchSize:
      break;
  }
  return "sum_over_batch_size";
}

Loss::Loss(std::string class_name, ConfigReader &r, const std::string &default_name)
    : class_name_(std::move(class_name)),
      name_(r.get_string("name", default_name)),
      reduction_(Reduction::kSumOverBatchSize),
      id_(next_loss_id.fetch_add(1)) {
  if (r.has("reduction")) reduction_ = reduction_from_string(r.get_string("reduction", ""), class_name_);
  const std::string dtype = r.get_string("dtype", "float32");
  if (dtype != "float32")
    fail(Code::kInvalidArgument, class_name_, ": dtype '", dtype,
         "' is not supported; losses compute in y_pred's dtype");
}

Tensor Loss::values(const Tensor &y_true, const Tensor &y_pred, Tensor *mask) const {
  if (y_pred.defined() && !is_floating(y_pred.dtype()))
    return call(y_true, ops::cast(y_pred, DType::kFloat32), mask);
  return call(y_true, y_pred, mask);
}

Tensor Loss::operator()(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) const {
  Tensor mask;
  Tensor per_sample = values(y_true, y_pred, &mask);
  return reduce_weighted_values(per_sample, sample_weight, combined_mask(y_pred, mask), reduction_, name_);
}

Tensor combined_mask(const Tensor &y_pred, const Tensor &loss_mask) {
  const Tensor &in = y_pred.defined() ? y_pred.keras_mask() : y_pred;
  if (!in.defined()) return loss_mask;
  return loss_mask.defined() ? ops::logical_and(as_bool(in), as_bool(loss_mask)) : in;
}

Config Loss::get_config() const {
  Config c;
  c.set("name", name_).set("reduction", reduction_name(reduction_));
  add_config(c);
  return c;
}

namespace {
// Keras's ops.divide_no_nan: a / b, 0 where b is 0.
Tensor div_no_nan(const Tensor &a, const Tensor &b) {
  const Tensor zero = ops::zeros(Shape{}, b.dtype());
  const Tensor none = ops::equal(b, zero);
  // The divisor is made safe first, so the unused branch's gradient is not 0 * inf.
  return ops::where(none, ops::zeros_like(a), ops::div(a, ops::where(none, ops::ones_like(b), b)));
}
}  // namespace

void squeeze_or_expand_to_same_rank(Tensor &a, Tensor &b) {
  const int ra = a.shape().rank(), rb = b.shape().rank();
  if (ra == rb + 1 && a.shape()[ra - 1] == 1) {
    if (rb == 1)
      b = ops::expand_dims(b, -1);
    else
      a = ops::squeeze(a, {-1});
  } else if (rb == ra + 1 && b.shape()[rb - 1] == 1) {
    if (ra == 1)
      a = ops::expand_dims(a, -1);
    else
      b = ops::squeeze(b, {-1});
  }
}

Tensor reduce_weighted_values(const Tensor &values, const Tensor &sample_weight, const Tensor &mask,
                              Reduction reduction, const std::string &owner) {
  Tensor v = values;
  Tensor w;
  if (sample_weight.defined()) {
    if (!is_floating(sample_weight.dtype()) && !is_integer(sample_weight.dtype()) &&
        sample_weight.dtype() != DType::kBool)
      fail(Code::kInvalidArgument, owner, ": sample_weight is ", sample_weight.description());
    w = ops::cast(sample_weight, v.dtype());
  }
  if (mask.defined()) {  // Keras's apply_mask
    Tensor m = ops::cast(mask, v.dtype());
    if (reduction == Reduction::kSumOverBatchSize || reduction == Reduction::kMean) {
      // Valid entries weigh total / valid (0 when none is valid: divide_no_nan).
      const double total = static_cast<double>(m.num_elements());
      m = ops::mul(m, div_no_nan(fill(Shape{}, total, v.dtype()), ops::sum(m)));
    }
    if (w.defined()) {
      squeeze_or_expand_to_same_rank(m, w);
      w = ops::mul(w, m);
    } else {
      w = m;
    }
  }
  if (w.defined()) {
    squeeze_or_expand_to_same_rank(v, w);
    const int rv = v.shape().rank(), rw = w.shape().rank();
    // A scalar loss (rank-1 inputs) times per-sample weights broadcasts to them, as Keras's.
    bool ok = rw <= rv || rv == 0;
    for (int i = 0; ok && rv > 0 && i < rw; ++i) ok = w.shape()[i] == 1 || w.shape()[i] == v.shape()[i];
    if (!ok)
      fail(Code::kInvalidArgument, owner, ": ",
           sample_weight.defined() ? "sample_weight " + sample_weight.description()
                                   : "the mask of y_pred " + mask.description(),
           " does not broadcast to the per-sample losses ", values.description());
    if (rw < rv) {  // weights per sample over losses per sample and step: trailing dims broadcast
      std::vector<int64_t> d = w.shape().to_vector();
      d.resize(static_cast<size_t>(rv), 1);
      w = ops::reshape(w, d);
    }
    v = ops::mul(v, w);
  }
  if (reduction == Reduction::kNone || v.shape().rank() == 0) return v;
  Tensor s = ops::sum(v);
  if (reduction == Reduction::kSum) return s;
  if (reduction == Reduction::kMeanWithSampleWeight && w.defined()) return div_no_nan(s, ops::sum(w));
  const int64_t n = v.num_elements();
  if (n == 0) return ops::zeros(Shape{}, v.dtype());  // divide_no_nan
  return ops::div(s, fill(Shape{}, static_cast<double>(n), v.dtype()));
}

std::string loss_class_for(const std::string &name) {
  if (factories().count(name)) return name;
  auto it = aliases().find(name);
  return it == aliases().end() ? std::string() : it->second;
}

namespace {

// Never destroyed: a custom loss's factory may own foreign state (a Python callable) that must not
// be released after its runtime has shut down at process exit.
FactoryRegistry<LossFactory> &custom_losses() {
  static auto *r = new FactoryRegistry<LossFactory>;
  return *r;
}

bool builtin_loss(const std::string &name) {
  return name == kLossFunctionWrapper || !loss_class_for(name).empty();
}

LossFactory custom_factory(const std::string &name) { return custom_losses().get(name); }

LossPtr make_custom(const LossFactory &factory, const std::string &name, const Config &config) {
  LossPtr loss = factory(config);
  if (!loss) fail(Code::kInternal, "the custom loss '", name, "' made from its config gave no loss");
  return loss;
}

}  // namespace

void register_loss(const std::string &name, LossFactory factory) {
  if (name.empty()) fail(Code::kInvalidArgument, "register_loss: the name must not be empty");
  require_utf8(name, "register_loss", "the name");
  if (!factory) fail(Code::kInvalidArgument, "register_loss: '", name, "' has no factory");
  if (builtin_loss(name))
    fail(Code::kInvalidArgument, "register_loss: '", name,
         "' is a built-in loss; register a custom loss under its own name (e.g. 'MyPackage>", name, "')");
  custom_losses().set(name, std::move(factory));
}

void unregister_loss(const std::string &name) {
  if (builtin_loss(name)) fail(Code::kInvalidArgument, "unregister_loss: '", name, "' is a built-in loss");
  if (!custom_losses().erase(name))
    fail(Code::kNotFound, "unregister_loss: no custom loss '", name, "' is registered");
}

bool loss_registered(const std::string &name) {
  return !loss_class_for(name).empty() || custom_losses().has(name);
}

std::vector<std::string> registered_losses() {
  std::vector<std::string> names;
  for (const auto &[n, f] : factories()) names.push_back(n);
  for (const auto &[n, c] : aliases()) names.push_back(n);
  for (const std::string &n : custom_losses().names()) names.push_back(n);
  return names;
}

LossPtr create_loss(const std::string &name, const Config &config) {
  const std::string cls = loss_class_for(name);
  if (cls.empty()) {
    if (LossFactory f = custom_factory(name)) return make_custom(f, name, config);
    fail(Code::kNotFound, "unknown loss '", name,
         "' (a custom loss is found once registered: Keras's custom_objects or register_keras_serializable; "
         "C: kiln_loss_register_class); known: ",
         join_names(registered_losses()));
  }
  ConfigReader r(config, cls);
  return factories().at(cls)(r);
}

Config serialize_loss(const Loss &loss) { return serialized(loss.class_name(), loss.get_config()); }

namespace {

class FunctionLoss final : public Loss {
 public:
  FunctionLoss(const std::string &class_name, ConfigReader &r, std::string fn_name, LossFn fn)
      : Loss(class_name, r, fn_name), fn_name_(std::move(fn_name)), fn_(std::move(fn)) {
    // Keras's LossFunctionWrapper(fn, **kwargs) saves the function's arguments; kiln keeps them
    // as data under "fn_kwargs", for the registered factory that makes the loss again.
    if (this->class_name() == kLossFunctionWrapper) fn_kwargs_ = r.get_optional_config("fn_kwargs");
    r.finish();
  }
  Tensor call(const Tensor &y_true, const Tensor &y_pred, Tensor *mask) const override {
    (void)mask;
    // As Keras: y_true in y_pred's floating dtype (labels come as int or float64 arrays).
    const DType dtype = is_floating(y_pred.dtype()) ? y_pred.dtype() : DType::kFloat32;
    Tensor t = y_true.dtype() == dtype ? y_true : ops::cast(y_true, dtype), p = y_pred;
    squeeze_or_expand_to_same_rank(t, p);
    Tensor values = fn_(t, p);
    if (!values.defined() ||
        !(is_floating(values.dtype()) || is_integer(values.dtype()) || values.dtype() == DType::kBool))
      fail(Code::kInvalidArgument, "loss '", name(), "' (", class_name(), "): the function '", fn_name_,
           "' gave ", values.defined() ? values.description() : std::string("no tensor"),
           "; expected per-sample losses (floating point, or integers and bools, which are cast)");
    // A metric function's bools or counts are cast, as Keras's MeanMetricWrapper casts them.
    if (!is_floating(values.dtype())) values = ops::cast(values, dtype);
    // One value for the whole batch stands for every sample (the weights then apply to it).
    if (values.shape().rank() == 0 && p.shape().rank() > 0)
      values = ops::broadcast_to(values, Shape{p.shape()[0]});
    return values;
  }

 protected:
  void add_config(Config &c) const override {
    if (class_name() != kLossFunctionWrapper) return;
    c.set("fn", fn_name_);
    if (fn_kwargs_) c.set("fn_kwargs", *fn_kwargs_);
  }

 private:
  const std::string fn_name_;
  const LossFn fn_;
  std::optional<Config> fn_kwargs_;
};

}  // namespace

LossPtr make_function_loss(const std::string &class_name, const std::string &fn_name, LossFn fn,
                           const Config &config) {
  if (!fn) fail(Code::kInvalidArgument, "make_function_loss: the function is empty");
  if (class_name.empty() || fn_name.empty())
    fail(Code::kInvalidArgument,
         "make_function_loss: the class name and the function name must not be empty");
  require_utf8(class_name, "make_function_loss", "the class name");
  require_utf8(fn_name, "make_function_loss", "the function name");
  ConfigReader r(config, class_name);
  return std::make_shared<FunctionLoss>(class_name, r, fn_name, std::move(fn));
}

LossPtr deserialize_loss(const Config &serialized) {
  const ClassAndConfig c = read_serialized(serialized, "loss");
  if (c.class_name == kLossFunctionWrapper) {
    const std::string fn = c.config.has("fn") && c.config.json().at("fn").is_string()
                               ? c.config.get_string("fn")
                               : std::string();
    Config config = c.config;  // the function is known by its name: name, reduction, fn_kwargs remain
    config.erase("fn");
    // A built-in loss function wrapped (LossFunctionWrapper(keras.losses.binary_crossentropy,
    // from_logits=True)): its own class, with the function's arguments as the class's.
    if (!fn.empty() && !loss_class_for(fn).empty()) {
      if (config.has("fn_kwargs")) {
        const Config kwargs = config.get_config("fn_kwargs");
        config.erase("fn_kwargs");
        config.update(kwargs);
      }
      return create_loss(fn, config);
    }
    if (LossFactory f = fn.empty() ? LossFactory() : custom_factory(fn)) return make_custom(f, fn, config);
    fail(Code::kNotFound, "loss: the LossFunctionWrapper of '", fn.empty() ? std::string("?") : fn,
         "' cannot be made from its config, which holds no function; register the function under that "
         "name (Keras's custom_objects or register_keras_serializable; C: kiln_loss_register_class), or "
         "load the model with compile=false and compile it again");
  }
  return create_loss(c.class_name, c.config);
}

}  // namespace kiln::train
