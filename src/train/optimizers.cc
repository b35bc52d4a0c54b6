// The built-in optimizers, with Keras 3's defaults, configs and update formulas
// (keras/src/optimizers/<name>.py); the formulas themselves run in kernels/optimizer_kernels.cc.
#include <cctype>
#include <cmath>
#include <map>
#include <mutex>
#include <utility>

#include "core/error.h"
#include "train/optimizer.h"

namespace kiln::train {

namespace {

using kernels::UpdateParams;
using kernels::UpdateRule;

UpdateParams params(UpdateRule rule, std::initializer_list<double> c) {
  UpdateParams p;
  p.rule = rule;
  int i = 0;
  for (double v : c) p.c[i++] = v;
  return p;
}

class SGD final : public Optimizer {
 public:
  explicit SGD(ConfigReader &&r) : Optimizer("SGD", r, 0.01) {
    momentum_ = r.get_float("momentum", 0.0);
    nesterov_ = r.get_bool("nesterov", false);
    if (!(momentum_ >= 0 && momentum_ <= 1))
      fail(Code::kInvalidArgument, "SGD: momentum must be a float between [0, 1]; got ", momentum_);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override {
    if (momentum_ == 0) return {};
    return {{"momentum", 0.0}};
  }
  void add_config(Config &c) const override { c.set("momentum", momentum_).set("nesterov", nesterov_); }
  UpdateParams update_params(int64_t, double lr, DType) const override {
    const UpdateRule rule = momentum_ == 0 ? UpdateRule::kSgd
                            : nesterov_    ? UpdateRule::kSgdNesterov
                                           : UpdateRule::kSgdMomentum;
    return params(rule, {lr, momentum_});
  }
  double momentum_;
  bool nesterov_;
};

// Adam and AdamW (which is Adam with weight_decay 0.004 by default, as in Keras 3).
class Adam : public Optimizer {
 public:
  Adam(const char *class_name, ConfigReader &&r, std::optional<double> default_weight_decay)
      : Optimizer(class_name, r, 0.001, default_weight_decay) {
    beta_1_ = r.get_float("beta_1", 0.9);
    beta_2_ = r.get_float("beta_2", 0.999);
    epsilon_ = r.get_float("epsilon", 1e-7);
    amsgrad_ = r.get_bool("amsgrad", false);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override {
    std::vector<SlotSpec> s{{"momentum", 0.0}, {"velocity", 0.0}};
    if (amsgrad_) s.push_back({"velocity_hat", 0.0});
    return s;
  }
  void add_config(Config &c) const override {
    c.set("beta_1", beta_1_).set("beta_2", beta_2_).set("epsilon", epsilon_).set("amsgrad", amsgrad_);
  }
  // Keras: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t); epsilon outside the square root.
  // Keras computes alpha in the variable's dtype, from beta_1, beta_2 and t cast to it, so a
  // float32 variable gets float32's alpha (beta_2 = 0.999 rounds to 0.99900001, which moves
  // sqrt(1 - beta_2^t) by about 6e-6 at the first steps).
  UpdateParams update_params(int64_t t, double lr, DType dtype) const override {
    const double alpha = dtype == DType::kFloat32 ? alpha_in<float>(t, lr) : alpha_in<double>(t, lr);
    return params(amsgrad_ ? UpdateRule::kAdamAmsgrad : UpdateRule::kAdam,
                  {alpha, 1 - beta_1_, 1 - beta_2_, epsilon_});
  }
  // alpha with lr, beta_1, beta_2 and t cast to F and each operation rounded in F.
  template <typename F>
  double alpha_in(int64_t t, double lr) const {
    const F step = static_cast<F>(t);
    return static_cast<F>(lr) * std::sqrt(F(1) - std::pow(static_cast<F>(beta_2_), step)) /
           (F(1) - std::pow(static_cast<F>(beta_1_), step));
  }
  double beta_1_, beta_2_, epsilon_;
  bool amsgrad_;
};

class RMSprop final : public Optimizer {
 public:
  explicit RMSprop(ConfigReader &&r) : Optimizer("RMSprop", r, 0.001) {
    rho_ = r.get_float("rho", 0.9);
    momentum_ = r.get_float("momentum", 0.0);
    epsilon_ = r.get_float("epsilon", 1e-7);
    centered_ = r.get_bool("centered", false);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override {
    std::vector<SlotSpec> s{{"velocity", 0.0}};
    if (momentum_ > 0) s.push_back({"momentum", 0.0});
    if (centered_) s.push_back({"average_gradient", 0.0});
    return s;
  }
  void add_config(Config &c) const override {
    c.set("rho", rho_).set("momentum", momentum_).set("epsilon", epsilon_).set("centered", centered_);
  }
  UpdateParams update_params(int64_t, double lr, DType) const override {
    UpdateParams p = params(UpdateRule::kRmsprop, {lr, rho_, 1 - rho_, epsilon_, momentum_});
    p.centered = centered_;
    p.use_momentum = momentum_ > 0;
    return p;
  }
  double rho_, momentum_, epsilon_;
  bool centered_;
};

class Adagrad final : public Optimizer {
 public:
  explicit Adagrad(ConfigReader &&r) : Optimizer("Adagrad", r, 0.001) {
    initial_accumulator_value_ = r.get_float("initial_accumulator_value", 0.1);
    epsilon_ = r.get_float("epsilon", 1e-7);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override { return {{"accumulator", initial_accumulator_value_}}; }
  void add_config(Config &c) const override {
    c.set("initial_accumulator_value", initial_accumulator_value_).set("epsilon", epsilon_);
  }
  UpdateParams update_params(int64_t, double lr, DType) const override {
    return params(UpdateRule::kAdagrad, {lr, epsilon_});
  }
  double initial_accumulator_value_, epsilon_;
};

class Adadelta final : public Optimizer {
 public:
  explicit Adadelta(ConfigReader &&r) : Optimizer("Adadelta", r, 0.001) {
    rho_ = r.get_float("rho", 0.95);
    epsilon_ = r.get_float("epsilon", 1e-7);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override {
    return {{"accumulated_grad", 0.0}, {"accumulated_delta_var", 0.0}};
  }
  void add_config(Config &c) const override { c.set("rho", rho_).set("epsilon", epsilon_); }
  UpdateParams update_params(int64_t, double lr, DType) const override {
    return params(UpdateRule::kAdadelta, {lr, rho_, 1 - rho_, epsilon_});
  }
  double rho_, epsilon_;
};

// Nadam, Adamax and Lamb: beta_1, beta_2 and epsilon with Adam's defaults, and two slots.
class BetasAndEpsilon : public Optimizer {
 protected:
  BetasAndEpsilon(const char *class_name, ConfigReader &r, std::vector<SlotSpec> slots)
      : Optimizer(class_name, r, 0.001), slots_(std::move(slots)) {
    beta_1_ = r.get_float("beta_1", 0.9);
    beta_2_ = r.get_float("beta_2", 0.999);
    epsilon_ = r.get_float("epsilon", 1e-7);
    finish_config(r);
  }
  std::vector<SlotSpec> slot_specs() const override { return slots_; }
  void add_config(Config &c) const override {
    c.set("beta_1", beta_1_).set("beta_2", beta_2_).set("epsilon", epsilon_);
  }
  double beta_1_, beta_2_, epsilon_;

 private:
  std::vector<SlotSpec> slots_;
};

// Nadam with Keras's momentum schedule u_t = beta_1 * (1 - 0.5 * 0.96^t) and the running
// product of the u_t in a variable (u_product), so a restored optimizer resumes the same schedule.
// As in Keras, u_product takes the dtype of the first variable the optimizer is built on (float64
// for a float64 model; float32 for any other, where Keras would take a bfloat16 or float16
// variable's dtype), and each step's scalars are computed in the updated variable's dtype, from
// beta_1, beta_2, 0.96 and the steps cast to it: a float32 model gets Keras's float32 bits. (For
// a float64 model Keras on TensorFlow widens float32-rounded settings, its tf.cast of a Python
// float going through float32; kiln uses the exact doubles.) Until the build, u_product is
// float64, so a value restored before it keeps every bit for a float64 model; the build replaces
// the variable when its dtype changes.
class Nadam final : public BetasAndEpsilon {
 public:
  explicit Nadam(ConfigReader &&r) : BetasAndEpsilon("Nadam", r, {{"momentum", 0.0}, {"velocity", 0.0}}) {
    u_product_ =
        std::make_shared<autodiff::Variable>(name() + "/u_product", Tensor::scalar<double>(1.0), false);
  }

 private:
  std::vector<VariablePtr> own_variables() const override { return {u_product_}; }
  // u_product in the model's dtype, its value (restored or not) carried over.
  void build_state(DType first_dtype) override {
    const double value = u_product_->peek().item_as_double();
    if (first_dtype == DType::kFloat64)
      replace_u_product(Tensor::scalar<double>(value));
    else
      replace_u_product(Tensor::scalar<float>(static_cast<float>(value)));
  }
  void replace_u_product(const Tensor &value) {
    if (value.dtype() != u_product_->dtype())
      u_product_ = std::make_shared<autodiff::Variable>(u_product_->name(), value, false);
  }
  // The momentum schedule's factor 1 - 0.5 * 0.96^t, in F.
  template <typename F>
  static F schedule(int64_t t) {
    return F(1) - F(0.5) * std::pow(F(0.96), static_cast<F>(t));
  }
  // Keras's u_t = beta_1 * (1 - 0.5 * 0.96^t), in F.
  template <typename F>
  F u(int64_t t) const {
    return static_cast<F>(beta_1_) * schedule<F>(t);
  }
  // Keras's u_product * beta_1 * (1 - 0.5 * 0.96^t), grouped as Keras groups it, in F.
  template <typename F>
  void advance(int64_t t) {
    const F prod = u_product_->peek().data<F>()[0] * static_cast<F>(beta_1_) * schedule<F>(t);
    u_product_->assign(Tensor::scalar<F>(prod));
  }
  void begin_step(int64_t t) override {
    if (u_product_->dtype() == DType::kFloat64)
      advance<double>(t);
    else
      advance<float>(t);
  }
  UpdateParams update_params(int64_t t, double lr, DType dtype) const override {
    const double prod = u_product_->peek().item_as_double();  // already this step's (begin_step)
    return dtype == DType::kFloat32 ? params_in<float>(t, lr, prod) : params_in<double>(t, lr, prod);
  }
  // The rule's coefficients with every scalar cast to F and each operation rounded in F.
  template <typename F>
  UpdateParams params_in(int64_t t, double lr, double prod_value) const {
    const F one(1), b1 = static_cast<F>(beta_1_), b2 = static_cast<F>(beta_2_);
    const F u_t = u<F>(t), u_next = u<F>(t + 1), prod = static_cast<F>(prod_value), prod_next = prod * u_next;
    return params(UpdateRule::kNadam, {lr, one - b1, one - b2, epsilon_, u_next, one - prod_next, one - u_t,
                                       one - prod, one - std::pow(b2, static_cast<F>(t))});
  }
  VariablePtr u_product_;
};

// Adamax: Adam with the infinity norm (slots momentum and norm). As Keras computes it, 1 - beta_1^t
// is rounded in the variable's dtype from beta_1 and t cast to it; 1 - beta_1 is a Python float.
class Adamax final : public BetasAndEpsilon {
 public:
  explicit Adamax(ConfigReader &&r) : BetasAndEpsilon("Adamax", r, {{"momentum", 0.0}, {"norm", 0.0}}) {}

 private:
  UpdateParams update_params(int64_t t, double lr, DType dtype) const override {
    const double one_power =
        dtype == DType::kFloat32 ? one_minus_power<float>(t) : one_minus_power<double>(t);
    return params(UpdateRule::kAdamax, {lr, 1 - beta_1_, beta_2_, one_power, epsilon_});
  }
  template <typename F>
  double one_minus_power(int64_t t) const {
    return F(1) - std::pow(static_cast<F>(beta_1_), static_cast<F>(t));
  }
};

// Lion (Chen et al. 2023): the sign of an interpolation of the momentum and the gradient (slot
// momentum). beta_1 must be in (0, 1], as Keras requires; 1 - beta is computed in the variable's dtype.
class Lion final : public Optimizer {
 public:
  explicit Lion(ConfigReader &&r) : Optimizer("Lion", r, 0.001) {
    beta_1_ = r.get_float("beta_1", 0.9);
    beta_2_ = r.get_float("beta_2", 0.99);
    if (!(beta_1_ > 0 && beta_1_ <= 1))
      fail(Code::kInvalidArgument,
           "Lion: beta_1 must be in the (0, 1] range, otherwise the optimizer degenerates "
           "to SignSGD; got ",
           beta_1_);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override { return {{"momentum", 0.0}}; }
  void add_config(Config &c) const override { c.set("beta_1", beta_1_).set("beta_2", beta_2_); }
  UpdateParams update_params(int64_t, double lr, DType dtype) const override {
    return dtype == DType::kFloat32 ? params_in<float>(lr) : params_in<double>(lr);
  }
  template <typename F>
  UpdateParams params_in(double lr) const {
    const F b1 = static_cast<F>(beta_1_), b2 = static_cast<F>(beta_2_);
    return params(UpdateRule::kLion, {lr, b1, F(1) - b1, b2, F(1) - b2});
  }
  double beta_1_, beta_2_;
};

// Ftrl (McMahan et al. 2013), as Keras 3's: slots accumulator (initial_accumulator_value) and
// linear. The coefficients are computed in the variable's dtype from the settings cast to it, as
// Keras's update_step computes them from a learning rate cast to the variable's dtype.
class Ftrl final : public Optimizer {
 public:
  explicit Ftrl(ConfigReader &&r) : Optimizer("Ftrl", r, 0.001) {
    learning_rate_power_ = r.get_float("learning_rate_power", -0.5);
    initial_accumulator_value_ = r.get_float("initial_accumulator_value", 0.1);
    l1_ = r.get_float("l1_regularization_strength", 0.0);
    l2_ = r.get_float("l2_regularization_strength", 0.0);
    l2_shrinkage_ = r.get_float("l2_shrinkage_regularization_strength", 0.0);
    beta_ = r.get_float("beta", 0.0);
    require(initial_accumulator_value_, "initial_accumulator_value", "positive or zero");
    if (!(learning_rate_power_ <= 0 && std::isfinite(learning_rate_power_)))
      fail(Code::kInvalidArgument,
           "Ftrl: learning_rate_power needs to be negative or zero (and finite); got ", learning_rate_power_);
    require(l1_, "l1_regularization_strength", "positive or zero");
    require(l2_, "l2_regularization_strength", "positive or zero");
    require(l2_shrinkage_, "l2_shrinkage_regularization_strength", "positive or zero");
    if (!std::isfinite(beta_)) fail(Code::kInvalidArgument, "Ftrl: beta must be finite; got ", beta_);
    finish_config(r);
  }

 private:
  static void require(double v, const char *key, const char *what) {
    if (!(v >= 0 && std::isfinite(v)))
      fail(Code::kInvalidArgument, "Ftrl: ", key, " needs to be ", what, " (and finite); got ", v);
  }
  std::vector<SlotSpec> slot_specs() const override {
    return {{"accumulator", initial_accumulator_value_}, {"linear", 0.0}};
  }
  void add_config(Config &c) const override {
    c.set("learning_rate_power", learning_rate_power_)
        .set("initial_accumulator_value", initial_accumulator_value_)
        .set("l1_regularization_strength", l1_)
        .set("l2_regularization_strength", l2_)
        .set("l2_shrinkage_regularization_strength", l2_shrinkage_)
        .set("beta", beta_);
  }
  UpdateParams update_params(int64_t, double lr, DType dtype) const override {
    return dtype == DType::kFloat32 ? params_in<float>(lr) : params_in<double>(lr);
  }
  template <typename F>
  UpdateParams params_in(double lr) const {
    const F r = static_cast<F>(lr);
    const F l2 = static_cast<F>(l2_) + static_cast<F>(beta_) / (F(2) * r);
    return params(UpdateRule::kFtrl, {r, static_cast<F>(-learning_rate_power_), static_cast<F>(l1_),
                                      F(2) * l2, F(2) * static_cast<F>(l2_shrinkage_)});
  }
  double learning_rate_power_, initial_accumulator_value_, l1_, l2_, l2_shrinkage_, beta_;
};

// Lamb (You et al. 2019), as Keras 3's: Adam's moments and bias corrections give a direction r,
// and each variable moves by lr * |w| / |r| * r (slots momentum and velocity). The norms take a
// first pass over the variable in the kernel.
class Lamb final : public BetasAndEpsilon {
 public:
  explicit Lamb(ConfigReader &&r) : BetasAndEpsilon("Lamb", r, {{"momentum", 0.0}, {"velocity", 0.0}}) {}

 private:
  UpdateParams update_params(int64_t t, double lr, DType dtype) const override {
    return dtype == DType::kFloat32 ? params_in<float>(t, lr) : params_in<double>(t, lr);
  }
  // 1 - beta^t in F from beta and t cast to F, as Keras; 1 - beta as a double, as Keras's Python float.
  template <typename F>
  UpdateParams params_in(int64_t t, double lr) const {
    const F step = static_cast<F>(t);
    return params(UpdateRule::kLamb,
                  {lr, 1 - beta_1_, 1 - beta_2_, F(1) - std::pow(static_cast<F>(beta_1_), step),
                   F(1) - std::pow(static_cast<F>(beta_2_), step), epsilon_, 0.0});
  }
};

// Adafactor (Shazeer and Stern 2018), as Keras 3's: the second moment of a variable of rank >= 2
// is factored over its last two axes into r (the mean over the columns, shape [..., rows]) and c
// (over the rows, [..., cols]); velocity is their product, normalised by r's mean. A variable of
// rank < 2 keeps a full velocity, and its r and c are Keras's placeholders. The step size is
// max(epsilon_2, RMS(w)) * min(lr, 1 / sqrt(t)) (with relative_step and a float learning rate,
// lr itself is min(lr, 1 / sqrt(t)) first), and the update is clipped to RMS clip_threshold.
class Adafactor final : public Optimizer {
 public:
  explicit Adafactor(ConfigReader &&r) : Optimizer("Adafactor", r, 0.001) {
    beta_2_decay_ = r.get_float("beta_2_decay", -0.8);
    epsilon_1_ = r.get_float("epsilon_1", 1e-30);
    epsilon_2_ = r.get_float("epsilon_2", 1e-3);
    clip_threshold_ = r.get_float("clip_threshold", 1.0);
    relative_step_ = r.get_bool("relative_step", true);
    finish_config(r);
  }

 private:
  std::vector<SlotSpec> slot_specs() const override { return {{"r", 0.0}, {"c", 0.0}, {"velocity", 0.0}}; }
  std::optional<Shape> slot_shape(size_t k, const Shape &shape) const override {
    const int rank = shape.rank();
    if (k == 2) return shape;
    if (rank < 2) return std::nullopt;
    std::vector<int64_t> dims = shape.to_vector();
    dims.erase(dims.end() - (k == 0 ? 1 : 2));
    return Shape(dims);
  }
  void add_config(Config &c) const override {
    c.set("beta_2_decay", beta_2_decay_)
        .set("epsilon_1", epsilon_1_)
        .set("epsilon_2", epsilon_2_)
        .set("clip_threshold", clip_threshold_)
        .set("relative_step", relative_step_);
  }
  UpdateParams update_params(int64_t t, double lr, DType) const override {
    const bool relative = relative_step_ && !has_schedule_locked();
    return params(UpdateRule::kAdafactor, {lr, static_cast<double>(t), relative ? 1.0 : 0.0, epsilon_1_,
                                           epsilon_2_, clip_threshold_, beta_2_decay_});
  }
  double beta_2_decay_, epsilon_1_, epsilon_2_, clip_threshold_;
  bool relative_step_;
};

const std::map<std::string, OptimizerFactory> &builtins() {
  static const std::map<std::string, OptimizerFactory> b = {
      {"SGD", [](const Config &c) -> OptimizerPtr { return std::make_shared<SGD>(ConfigReader(c, "SGD")); }},
      {"Adam",
       [](const Config &c) -> OptimizerPtr {
         return std::make_shared<Adam>("Adam", ConfigReader(c, "Adam"), std::nullopt);
       }},
      {"AdamW",
       [](const Config &c) -> OptimizerPtr {
         return std::make_shared<Adam>("AdamW", ConfigReader(c, "AdamW"), 0.004);
       }},
      {"RMSprop",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<RMSprop>(ConfigReader(c, "RMSprop")); }},
      {"Adagrad",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<Adagrad>(ConfigReader(c, "Adagrad")); }},
      {"Adadelta",
       [](const Config &c) -> OptimizerPtr {
         return std::make_shared<Adadelta>(ConfigReader(c, "Adadelta"));
       }},
      {"Nadam",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<Nadam>(ConfigReader(c, "Nadam")); }},
      {"Adamax",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<Adamax>(ConfigReader(c, "Adamax")); }},
      {"Lion",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<Lion>(ConfigReader(c, "Lion")); }},
      {"Ftrl",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<Ftrl>(ConfigReader(c, "Ftrl")); }},
      {"Lamb",
       [](const Config &c) -> OptimizerPtr { return std::make_shared<Lamb>(ConfigReader(c, "Lamb")); }},
      {"Adafactor",
       [](const Config &c) -> OptimizerPtr {
         return std::make_shared<Adafactor>(ConfigReader(c, "Adafactor"));
       }},
  };
  return b;
}

std::mutex &registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, OptimizerFactory> &custom() {
  static std::map<std::string, OptimizerFactory> c;
  return c;
}

// Keras's lower-case names ("adam", "rmsprop") for the built-ins.
const std::string *builtin_of_alias(const std::string &name) {
  for (const auto &kv : builtins()) {
    std::string lower;
    for (char ch : kv.first) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower == name) return &kv.first;
  }
  return nullptr;
}

}  // namespace

OptimizerPtr make_optimizer(const std::string &class_name, const Config &config) {
  auto b = builtins().find(class_name);
  if (b == builtins().end()) {
    if (const std::string *alias = builtin_of_alias(class_name)) b = builtins().find(*alias);
  }
  if (b != builtins().end()) return b->second(config);
  OptimizerFactory f;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = custom().find(class_name);
    if (it != custom().end()) f = it->second;
  }
  if (!f) {
    std::string known;
    for (const std::string &n : registered_optimizers()) known += (known.empty() ? "" : ", ") + n;
    fail(Code::kNotFound, "optimizer: unknown class '", class_name, "'; known: ", known);
  }
  OptimizerPtr o = f(config);
  if (!o) fail(Code::kInternal, "optimizer: the factory of '", class_name, "' gave no optimizer");
  return o;
}

OptimizerPtr deserialize_optimizer(const Config &serialized) {
  ConfigReader r(serialized, "optimizer");
  const std::optional<std::string> class_name = r.get_optional_string("class_name");
  if (!class_name)
    fail(Code::kInvalidArgument, "optimizer: the serialized form needs 'class_name' (and 'config')");
  const Config config = r.get_optional_config("config").value_or(Config());
  r.accept({"module", "registered_name"});
  r.finish();
  return make_optimizer(*class_name, config);
}

void register_optimizer(const std::string &class_name, OptimizerFactory factory) {
  if (builtins().count(class_name) || builtin_of_alias(class_name))
    fail(Code::kInvalidArgument, "register_optimizer: '", class_name,
         "' is a built-in optimizer; register a custom class under its own name");
  if (!factory)
    fail(Code::kInvalidArgument, "register_optimizer: the factory of '", class_name, "' is empty");
  std::lock_guard<std::mutex> lock(registry_mutex());
  custom()[class_name] = std::move(factory);
}

std::vector<std::string> registered_optimizers() {
  std::vector<std::string> names;
  for (const auto &kv : builtins()) names.push_back(kv.first);
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const auto &kv : custom()) names.push_back(kv.first);
  return names;
}

}  // namespace kiln::train
