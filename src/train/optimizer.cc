#include "train/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>

#include "core/error.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "train/callbacks.h"
#include "train/name_pattern.h"

namespace kiln::train {

namespace {

using autodiff::Variable;

// Keras's auto_name: the class name through Keras's to_snake_case, made unique ("adam",
// "adam_1", "sgd", "adam_w", "rm_sprop"), as Keras's optimizers name themselves since their
// constructors default to name=None.
std::string auto_name(const std::string &class_name) {
  const std::string base = layers::to_snake_case(class_name);
  static std::mutex mu;
  static std::map<std::string, int64_t> counts;
  std::lock_guard<std::mutex> lock(mu);
  const int64_t n = counts[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

// Keras builds an optimizer's own state in var_list[0]'s dtype (floatx without variables).
DType first_floating_dtype(const std::vector<VariablePtr> &vars) {
  for (const VariablePtr &v : vars)
    if (v && is_floating(v->dtype())) return v->dtype();
  return DType::kFloat32;
}

Tensor filled(DType dtype, const Shape &shape, double value) {
  Tensor t = Tensor::empty(dtype, shape);
  const int64_t n = shape.num_elements();
  if (dtype == DType::kFloat32) {
    float *p = t.mutable_data<float>();
    std::fill(p, p + n, static_cast<float>(value));
  } else {
    double *p = t.mutable_data<double>();
    std::fill(p, p + n, value);
  }
  return t;
}

// A clipping option: absent, null, or a float.
std::optional<double> optional_float(ConfigReader &r, const char *key) {
  if (!r.has(key)) return std::nullopt;
  return r.get_float(key, 0.0);
}

// Keras's exclude_from_weight_decay pattern (train/name_pattern.h); none for no names.
std::shared_ptr<const NamePattern> exclusion_pattern(const std::string &class_name,
                                                     const std::vector<std::string> &names) {
  if (names.empty()) return nullptr;
  return std::make_shared<const NamePattern>(class_name + ": exclude_from_weight_decay", names);
}

// Optimizers update float32 and float64 variables.
bool updatable(const Variable &v) { return v.dtype() == DType::kFloat32 || v.dtype() == DType::kFloat64; }

void require_updatable(const std::string &who, const Variable &v) {
  if (!updatable(v))
    fail(Code::kInvalidArgument, who, ": variable '", v.name(), "' is ", dtype_name(v.dtype()),
         "; optimizers update float32 and float64 variables");
}

// Keras applies a clipping option only when it is set and > 0.
bool clip_set(const std::optional<double> &v) { return v && *v > 0; }

// out[i] = f(a[i], b[i]) in a's dtype (float32 or float64; b of the same dtype and size), each
// operation rounded to that dtype as Keras's ops on variables are.
template <typename F>
Tensor combine(const Tensor &a, const Tensor &b, F f) {
  Tensor out = Tensor::empty(a.dtype(), a.shape());
  const int64_t n = a.num_elements();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T *x = a.data<T>(), *y = b.data<T>();
    T *o = out.mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
  };
  if (a.dtype() == DType::kFloat32)
    run(0.0f);
  else
    run(0.0);
  return out;
}

}  // namespace

Optimizer::Optimizer(const std::string &class_name, ConfigReader &r, double default_learning_rate,
                     std::optional<double> default_weight_decay)
    : id_(next_object_id()), class_name_(class_name) {
  const std::optional<std::string> name = r.get_optional_string("name");
  name_ = name ? *name : auto_name(class_name);
  learning_rate_ = default_learning_rate;
  if (r.has("learning_rate")) {
    if (r.config().type("learning_rate") == Config::Type::kConfig) {
      try {
        schedule_ = deserialize_schedule(r.config().get_config("learning_rate"));
      } catch (const Error &e) {
        fail(e.code(), class_name, ": learning_rate: ", e.what());
      }
    } else {
      learning_rate_ = r.get_float("learning_rate", default_learning_rate);
    }
  }
  weight_decay_ =
      r.has("weight_decay") ? std::optional<double>(r.get_float("weight_decay", 0.0)) : std::nullopt;
  if (!r.config().has("weight_decay")) weight_decay_ = default_weight_decay;
  if (default_weight_decay && !weight_decay_)  // AdamW: Keras's ValueError for weight_decay=None
    fail(Code::kInvalidArgument, class_name, ": weight_decay must be a float; got null (None)");
  // Keras 3 takes tf.keras 2's `decay` (its configs carry "decay": 0.0), warns and ignores it.
  if (r.has("decay")) {
    r.get_float("decay", 0.0);
    callback_warning("Argument `decay` is no longer supported and will be ignored.");
  }
  clipnorm_ = optional_float(r, "clipnorm");
  global_clipnorm_ = optional_float(r, "global_clipnorm");
  clipvalue_ = optional_float(r, "clipvalue");
  const int set = (clipnorm_ ? 1 : 0) + (global_clipnorm_ ? 1 : 0) + (clipvalue_ ? 1 : 0);
  if (set > 1)
    fail(Code::kInvalidArgument, class_name,
         ": only one of clipnorm, clipvalue and global_clipnorm can be set");
  // Keras's checks: ema_momentum in [0, 1] and ema_overwrite_frequency >= 1 (0 means none) when
  // use_ema is on; gradient_accumulation_steps >= 2 (0 means none).
  use_ema_ = r.get_bool("use_ema", false);
  ema_momentum_ = r.get_float("ema_momentum", 0.99);
  if (use_ema_ && !(ema_momentum_ >= 0.0 && ema_momentum_ <= 1.0))
    fail(Code::kInvalidArgument, class_name, ": ema_momentum must be in the range [0, 1]; got ",
         ema_momentum_);
  if (r.has("ema_overwrite_frequency")) {
    const int64_t f = r.get_int("ema_overwrite_frequency", 0);
    if (use_ema_ && f < 0)
      fail(Code::kInvalidArgument, class_name,
           ": ema_overwrite_frequency must be an integer >= 1 or null; got ", f);
    if (f != 0) ema_overwrite_frequency_ = f;
  }
  if (r.has("loss_scale_factor")) {
    const double f = r.get_float("loss_scale_factor", 1.0);
    if (!std::isfinite(f) || f == 0.0)
      fail(Code::kInvalidArgument, class_name,
           ": loss_scale_factor must be a finite nonzero number or null; got ", f);
    loss_scale_factor_ = f;
  }
  if (r.has("gradient_accumulation_steps")) {
    const int64_t n = r.get_int("gradient_accumulation_steps", 0);
    if (n != 0 && n < 2)
      fail(Code::kInvalidArgument, class_name,
           ": gradient_accumulation_steps must be an integer >= 2 or null; got ", n);
    if (n != 0) accumulation_steps_ = n;
  }
  if (r.has("exclude_from_weight_decay")) {
    try {
      exclude_names_ = r.config().get_string_list("exclude_from_weight_decay");
    } catch (const Error &e) {
      fail(e.code(), class_name, ": ", e.what());
    }
    exclude_pattern_ = exclusion_pattern(class_name, exclude_names_);
  }
  iterations_ = std::make_shared<Variable>(name_ + "/iteration", Tensor::scalar<int64_t>(0), false);
}

Optimizer::~Optimizer() = default;

void Optimizer::finish_config(ConfigReader &r) { r.finish(); }

std::string Optimizer::slot_alias(const std::string &name) const {
  if (name == "m") return "momentum";
  if (name == "v") return "velocity";
  if (name == "vhat") return "velocity_hat";
  return {};
}

Config Optimizer::get_config() const {
  // A schedule serializes without the lock (a custom one's get_config is foreign code).
  const SchedulePtr s = learning_rate_schedule();
  const std::optional<Config> schedule_config = s ? std::optional<Config>(s->serialize()) : std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  Config c;
  c.set("name", name_);
  if (schedule_config)
    c.set("learning_rate", *schedule_config);
  else
    c.set("learning_rate", learning_rate_);
  c.set("weight_decay", weight_decay_).set("clipnorm", clipnorm_).set("global_clipnorm", global_clipnorm_);
  c.set("clipvalue", clipvalue_).set("use_ema", use_ema_).set("ema_momentum", ema_momentum_);
  c.set("ema_overwrite_frequency", ema_overwrite_frequency_).set("loss_scale_factor", loss_scale_factor_);
  c.set("gradient_accumulation_steps", accumulation_steps_);
  add_config(c);
  if (!exclude_names_.empty()) c.set("exclude_from_weight_decay", exclude_names_);
  return c;
}

Config Optimizer::serialize() const {
  Config c;
  c.set("class_name", class_name_).set("config", get_config());
  return c;
}

int64_t Optimizer::iterations_locked() const { return iterations_->peek().data<int64_t>()[0]; }

int64_t Optimizer::steps_locked() const { return iterations_locked() / accumulation_steps_.value_or(1); }

int64_t Optimizer::iterations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return steps_locked();
}

double Optimizer::learning_rate() const {
  SchedulePtr s;
  int64_t step = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!schedule_) return learning_rate_;
    s = schedule_;
    step = iterations_locked();
  }
  return (*s)(step);  // unlocked: a custom schedule may read this optimizer
}

void Optimizer::set_learning_rate(double lr) {
  std::lock_guard<std::mutex> lock(mu_);
  if (schedule_)
    fail(Code::kFailedPrecondition, class_name_, " '", name_, "': its learning rate is a schedule (",
         schedule_->class_name(),
         "), so it cannot be set to a float; make the optimizer with a float learning_rate to change it");
  if (!std::isfinite(lr))
    fail(Code::kInvalidArgument, class_name_, ": learning_rate must be finite; got ", lr);
  learning_rate_ = lr;
}

void Optimizer::set_learning_rate_schedule(SchedulePtr schedule) {
  if (!schedule)
    fail(Code::kInvalidArgument, class_name_, ".set_learning_rate_schedule: the schedule is null");
  SchedulePtr old;  // released after the lock: a custom schedule's end runs foreign code
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = std::exchange(schedule_, std::move(schedule));
  }
}

SchedulePtr Optimizer::learning_rate_schedule() const {
  std::lock_guard<std::mutex> lock(mu_);
  return schedule_;
}

size_t Optimizer::base_slots() const { return (use_ema_ ? 1 : 0) + (accumulation_steps_ ? 1 : 0); }

std::vector<Optimizer::SlotSpec> Optimizer::all_slot_specs() const {
  std::vector<SlotSpec> specs = slot_specs();
  if (use_ema_) specs.push_back({"average", 0.0});
  if (accumulation_steps_) specs.push_back({"gradient_accumulator", 0.0});
  return specs;
}

std::vector<std::string> Optimizer::slot_names() const {
  std::vector<std::string> names;
  for (const SlotSpec &s : all_slot_specs()) names.push_back(s.name);
  return names;
}

std::vector<VariablePtr> Optimizer::variables() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VariablePtr> out{iterations_};
  for (const VariablePtr &v : own_variables()) out.push_back(v);
  for (uint64_t id : slot_order_) {
    const Slots &s = slots_.at(id);
    for (size_t k = 0; k < s.slots.size(); ++k)
      if (!s.placeholder[k]) out.push_back(s.slots[k]);
  }
  return out;
}

std::pair<DType, Shape> Optimizer::slot_form(size_t k, const Variable &v) const {
  if (k >= all_slot_specs().size() - base_slots()) return {v.dtype(), v.shape()};
  const std::optional<Shape> shape = slot_shape(k, v.shape());
  return shape ? std::make_pair(v.dtype(), *shape) : std::make_pair(DType::kInt32, Shape{});
}

VariablePtr Optimizer::slot(uint64_t var_id, const std::string &slot_name) const {
  const std::vector<SlotSpec> specs = all_slot_specs();
  std::string wanted = slot_name;
  auto find = [&](const std::string &n) {
    return std::find_if(specs.begin(), specs.end(), [&](const SlotSpec &s) { return s.name == n; });
  };
  auto spec = find(wanted);
  if (spec == specs.end() && !slot_alias(slot_name).empty()) spec = find(slot_alias(slot_name));
  if (spec == specs.end()) {
    std::string known;
    for (const SlotSpec &s : specs) known += (known.empty() ? "" : ", ") + s.name;
    fail(Code::kNotFound, class_name_, " '", name_, "' has no slot '", slot_name,
         "'; its slots: ", known.empty() ? "none" : known);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(var_id);
  if (it == slots_.end())
    fail(Code::kNotFound, class_name_, " '", name_, "' has no slots for variable id ", var_id,
         " (slots are made on the variable's first update)");
  return it->second.slots[static_cast<size_t>(spec - specs.begin())];
}

void Optimizer::exclude_from_weight_decay(const std::vector<uint64_t> &var_ids,
                                          const std::vector<std::string> &var_names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (built_)
    fail(Code::kFailedPrecondition, class_name_, " '", name_,
         "': exclude_from_weight_decay can only be configured before the optimizer's first step");
  std::shared_ptr<const NamePattern> pattern = exclusion_pattern(class_name_, var_names);
  exclude_ids_ = std::set<uint64_t>(var_ids.begin(), var_ids.end());
  exclude_names_ = var_names;
  exclude_pattern_ = std::move(pattern);
}

bool Optimizer::uses_weight_decay(const Variable &v) const {
  if (exclude_ids_.count(v.id())) return false;
  return !(exclude_pattern_ && exclude_pattern_->search(v.name()));
}

const Optimizer::Slots &Optimizer::slots_for_locked(const VariablePtr &var) {
  const Variable &v = *var;
  auto it = slots_.find(v.id());
  if (it != slots_.end()) return it->second;
  // A slot a checkpoint restored before it existed starts from the checkpoint's value
  // (check_pending_locked has checked it).
  const size_t position = slot_order_.size();
  const std::vector<SlotSpec> specs = all_slot_specs();
  std::vector<std::function<void()>> restored;
  Slots s{v.name(), {}, var, {}};
  for (size_t k = 0; k < specs.size(); ++k) {
    const auto [dtype, shape] = slot_form(k, v);
    s.placeholder.push_back(k < specs.size() - base_slots() && !slot_shape(k, v.shape()));
    Tensor initial;
    auto p = pending_.find({position, k});
    if (p != pending_.end()) {
      initial = p->second.value;
      restored.push_back(std::move(p->second.on_restored));
      pending_.erase(p);
    }
    auto pv = pending_by_var_.find({v.id(), k});
    if (pv != pending_by_var_.end()) {
      initial = pv->second.value;
      restored.push_back(std::move(pv->second.on_restored));
      pending_by_var_.erase(pv);
    }
    if (!initial.defined() && specs[k].name == "average" && steps_locked() > 0) {
      // A moving average made after step 0 (a variable first given later) starts from the
      // variable, as Keras's step-0 average would have.
      const Tensor now = v.peek();
      initial = Tensor::empty(v.dtype(), v.shape());
      if (now.byte_size()) std::memcpy(initial.raw_mutable_data(), now.raw_data(), now.byte_size());
    }
    if (!initial.defined()) {
      initial = filled(dtype, shape, s.placeholder.back() ? 0.0 : specs[k].initial);
    }
    s.slots.push_back(
        std::make_shared<Variable>(name_ + "/" + v.name() + "/" + specs[k].name, initial, false));
  }
  slot_order_.push_back(v.id());
  const Slots &made = slots_.emplace(v.id(), std::move(s)).first->second;
  for (const std::function<void()> &f : restored)
    if (f) f();
  return made;
}

void Optimizer::check_pending_locked(const std::vector<const Variable *> &vars) const {
  if (pending_.empty() && pending_by_var_.empty()) return;
  const std::vector<SlotSpec> specs = all_slot_specs();
  size_t position = slot_order_.size();
  std::set<uint64_t> seen;
  for (const Variable *v : vars) {
    if (slots_.count(v->id()) || !seen.insert(v->id()).second) continue;
    for (size_t k = 0; k < specs.size(); ++k) {
      // The value the slot would start from (the variable's own wins).
      auto pv = pending_by_var_.find({v->id(), k});
      auto p = pending_.find({position, k});
      if (pv == pending_by_var_.end() && p == pending_.end()) continue;
      const Tensor &t = pv != pending_by_var_.end() ? pv->second.value : p->second.value;
      const auto [dtype, shape] = slot_form(k, *v);
      if (t.dtype() != dtype || t.shape() != shape)
        fail(Code::kInvalidArgument, class_name_, " '", name_, "': the restored slot '", specs[k].name,
             "' for variable '", v->name(), "' (slot position ", position, ") is ", t.description(),
             "; expected ", dtype_name(dtype), shape.to_string(), " for the variable's ",
             dtype_name(v->dtype()), v->shape().to_string());
    }
    ++position;
  }
}

void Optimizer::build(const std::vector<VariablePtr> &vars) {
  const std::string who = class_name_ + ".build";
  std::vector<const Variable *> list;
  for (size_t i = 0; i < vars.size(); ++i) {
    if (!vars[i]) fail(Code::kInvalidArgument, who, ": variable ", i, " is null");
    const Variable &v = *vars[i];
    require_updatable(who, v);
    list.push_back(&v);
  }
  std::lock_guard<std::mutex> lock(mu_);
  check_pending_locked(list);
  if (!built_) build_state(first_floating_dtype(vars));
  for (const VariablePtr &v : vars) slots_for_locked(v);
  built_ = true;
}

std::vector<Optimizer::VariableSlots> Optimizer::slot_variables() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VariableSlots> out;
  for (uint64_t id : slot_order_) {
    const Slots &s = slots_.at(id);
    out.push_back(VariableSlots{id, s.var_name, s.slots, s.placeholder});
  }
  return out;
}

size_t Optimizer::slot_index(const std::string &slot_name) const {
  const std::vector<SlotSpec> specs = all_slot_specs();
  size_t k = 0;
  while (k < specs.size() && specs[k].name != slot_name) ++k;
  if (k == specs.size() && !slot_alias(slot_name).empty()) {
    k = 0;
    while (k < specs.size() && specs[k].name != slot_alias(slot_name)) ++k;
  }
  if (k == specs.size()) {
    std::string known;
    for (const SlotSpec &s : specs) known += (known.empty() ? "" : ", ") + s.name;
    fail(Code::kNotFound, class_name_, " '", name_, "' has no slot '", slot_name,
         "'; its slots: ", known.empty() ? "none" : known);
  }
  return k;
}

void Optimizer::assign_restored_slot(const VariablePtr &slot, const std::string &what, const Tensor &value,
                                     const std::function<void()> &on_restored) const {
  if (slot->dtype() != value.dtype() || slot->shape() != value.shape())
    fail(Code::kInvalidArgument, class_name_, " '", name_, "': the restored slot ", what, " is ",
         value.description(), " but the slot '", slot->name(), "' is ", dtype_name(slot->dtype()),
         slot->shape().to_string());
  slot->assign(value);
  if (on_restored) on_restored();
}

void Optimizer::defer_slot_restore(size_t position, const std::string &slot_name, const Tensor &value,
                                   std::function<void()> on_restored) {
  require_defined(value, "Optimizer.defer_slot_restore", "value");
  const size_t k = slot_index(slot_name);
  VariablePtr existing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (position >= slot_order_.size()) {
      pending_[{position, k}] = PendingSlot{value, std::move(on_restored)};
      return;
    }
    existing = slots_.at(slot_order_[position]).slots[k];
  }
  assign_restored_slot(existing, str_cat("'", all_slot_specs()[k].name, "' (slot position ", position, ")"),
                       value, on_restored);
}

void Optimizer::defer_slot_restore_for_variable(uint64_t var_id, const std::string &slot_name,
                                                const Tensor &value, std::function<void()> on_restored) {
  require_defined(value, "Optimizer.defer_slot_restore_for_variable", "value");
  const size_t k = slot_index(slot_name);
  VariablePtr existing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(var_id);
    if (it == slots_.end()) {
      pending_by_var_[{var_id, k}] = PendingSlot{value, std::move(on_restored)};
      return;
    }
    existing = it->second.slots[k];
  }
  assign_restored_slot(existing, str_cat("'", all_slot_specs()[k].name, "' of variable id ", var_id), value,
                       on_restored);
}

size_t Optimizer::pending_slot_restores() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size() + pending_by_var_.size();
}

void Optimizer::set_gradient_allreduce(GradientAllreducePtr allreduce) {
  std::lock_guard<std::mutex> lock(mu_);
  allreduce_ = std::move(allreduce);
}

GradientAllreducePtr Optimizer::gradient_allreduce() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allreduce_;
}

void Optimizer::apply_gradients(const std::vector<Tensor> &grads, const std::vector<VariablePtr> &vars) {
  apply(grads, vars, true);
}

void Optimizer::apply_reduced_gradients(const std::vector<Tensor> &grads,
                                        const std::vector<VariablePtr> &vars) {
  apply(grads, vars, false);
}

void Optimizer::apply(const std::vector<Tensor> &grads, const std::vector<VariablePtr> &vars, bool reduce) {
  const std::string who = class_name_ + ".apply_gradients";
  if (grads.size() != vars.size())
    fail(Code::kInvalidArgument, who, ": ", grads.size(), " gradients for ", vars.size(), " variables");
  // Check every pair before anything changes.
  std::vector<size_t> active;
  std::set<const Variable *> seen;
  for (size_t i = 0; i < vars.size(); ++i) {
    if (!vars[i]) fail(Code::kInvalidArgument, who, ": variable ", i, " is null");
    const Variable &v = *vars[i];
    if (!seen.insert(&v).second)
      fail(Code::kInvalidArgument, who, ": variable '", v.name(), "' appears twice");
    if (!grads[i].defined()) continue;
    require_updatable(who, v);
    if (grads[i].dtype() != v.dtype() || grads[i].shape() != v.shape())
      fail(Code::kInvalidArgument, who, ": the gradient of variable '", v.name(), "' is ",
           grads[i].description(), "; expected ", dtype_name(v.dtype()), v.shape().to_string());
    active.push_back(i);
  }
  if (active.empty()) fail(Code::kInvalidArgument, who, ": no gradients provided for any variable");
  // Summed over the processes outside the lock: a collective may wait for the other ranks.
  const GradientAllreducePtr allreduce = reduce ? gradient_allreduce() : nullptr;
  std::vector<Tensor> reduced;
  if (allreduce) reduced = allreduce->reduce(grads);
  const std::vector<Tensor> &g = allreduce ? reduced : grads;

  std::unique_lock<std::mutex> lock(mu_);
  // A schedule runs without the lock (a custom one is foreign code, which may read this optimizer)
  // for the step this update takes, and only when the step updates (not while accumulating);
  // another thread's step or new learning rate meanwhile makes it run again.
  std::optional<double> scheduled;
  while (schedule_) {
    const int64_t step = iterations_locked();
    if (accumulation_steps_ && (step + 1) % *accumulation_steps_ != 0) break;
    const SchedulePtr s = schedule_;
    lock.unlock();
    const double v = (*s)(step);
    lock.lock();
    if (schedule_ == s && iterations_locked() == step) {
      scheduled = v;
      break;
    }
  }
  // Keras's apply builds the optimizer on every variable it is given, with a gradient or not, in
  // the list's order: each float variable without slots gets them now, so the slots' order (which
  // a checkpoint's positions follow) is the variables' and not that of their first gradients.
  std::vector<size_t> built;
  for (size_t i = 0; i < vars.size(); ++i)
    if (updatable(*vars[i])) built.push_back(i);
  std::vector<const Variable *> targets_in_order;
  for (size_t i : built) targets_in_order.push_back(vars[i].get());
  check_pending_locked(targets_in_order);
  if (!built_) build_state(first_floating_dtype(vars));
  for (size_t i : built) slots_for_locked(vars[i]);
  std::vector<const Slots *> slots;
  for (size_t i : active) slots.push_back(&slots_.at(vars[i]->id()));
  built_ = true;

  const int64_t raw = iterations_locked();
  const int64_t steps = steps_locked();
  // Keras 3's apply: the gradients unscaled first (g / loss_scale_factor in g's dtype).
  std::vector<Tensor> work(g.size());
  for (size_t i : active)
    work[i] =
        loss_scale_factor_
            ? combine(g[i], g[i],
                      [f = *loss_scale_factor_](auto x, auto) { return x / static_cast<decltype(x)>(f); })
            : g[i];
  if (accumulation_steps_) {
    // Keras's gradient accumulation: N - 1 of every N steps add to the accumulators and update
    // nothing else; the N-th updates with (gradient + accumulator) / N.
    const int64_t n = *accumulation_steps_;
    const bool update = (raw + 1) % n == 0;
    for (size_t k = 0; k < active.size(); ++k) {
      Variable &a = accumulator_of(*slots[k]);
      if (update)
        work[active[k]] = combine(work[active[k]], a.peek(), [n](auto x, auto y) {
          using T = decltype(x);
          return (x + y) / static_cast<T>(n);
        });
      else
        a.assign(combine(work[active[k]], a.peek(), [](auto x, auto y) { return x + y; }));
    }
    if (!update) {
      update_moving_averages_locked(steps);
      iterations_->assign(Tensor::scalar<int64_t>(raw + 1));
      return;
    }
  }

  const int64_t t = steps + 1;
  // Keras keeps a float learning rate in a float32 variable: a float64 update reads it rounded so.
  const double lr = scheduled ? *scheduled : static_cast<double>(static_cast<float>(learning_rate_));
  // Keras's clip_by_global_norm: one scale for every gradient (NaN when the norm is not finite).
  double global_scale = 1.0;
  if (clip_set(global_clipnorm_)) {
    double squares = 0;
    for (size_t i : active)
      squares += kernels::sum_of_squares(work[i].dtype(), work[i].raw_data(), work[i].num_elements());
    const double norm = std::sqrt(squares), c = *global_clipnorm_;
    global_scale = c * std::min(1.0 / norm, 1.0 / c) + (norm - norm);
  }
  begin_step(t);
  for (size_t k = 0; k < active.size(); ++k) {
    const Tensor &grad = work[active[k]];
    Variable &v = *vars[active[k]];
    kernels::UpdateParams p = update_params(t, lr, v.dtype());
    if (clip_set(clipnorm_)) {
      // Keras's clip_by_norm: g * clipnorm / max(norm, clipnorm), with norm 0 for a zero gradient.
      const double squares = kernels::sum_of_squares(grad.dtype(), grad.raw_data(), grad.num_elements());
      const double norm = squares > 0 ? std::sqrt(squares) : squares;
      p.scale = true;
      p.clip_mul = *clipnorm_;
      p.clip_div = std::isnan(norm) ? norm : std::max(norm, *clipnorm_);
    } else if (clip_set(global_clipnorm_)) {
      p.scale = true;
      p.clip_mul = global_scale;
    } else if (clip_set(clipvalue_)) {
      p.clip_value = *clipvalue_;
    }
    if (weight_decay_ && *weight_decay_ != 0 && uses_weight_decay(v)) {
      p.weight_decay = *weight_decay_;
      p.decay_lr = lr;
    }
    if (const int rank = v.shape().rank(); rank >= 2) {  // Adafactor's factoring over the last two axes
      p.factored = true;
      p.factor[0] = 1;
      for (int a = 0; a + 2 < rank; ++a) p.factor[0] *= v.shape()[a];
      p.factor[1] = v.shape()[rank - 2];
      p.factor[2] = v.shape()[rank - 1];
    }
    std::vector<Variable *> targets{&v};
    // The class's slots but placeholders; the base's, at the end, are not the fused update's.
    for (size_t j = 0; j + base_slots() < slots[k]->slots.size(); ++j)
      if (!slots[k]->placeholder[j]) targets.push_back(slots[k]->slots[j].get());
    const int64_t n = v.shape().num_elements();
    Variable::update_in_place(targets.data(), targets.size(), [&](void *const *dst, const void *const *src) {
      kernels::apply_update(v.dtype(), n, p, dst, src, grad.raw_data());
    });
  }
  if (accumulation_steps_) {  // Keras zeroes every accumulator after an update
    for (uint64_t id : slot_order_) {
      Variable &a = accumulator_of(slots_.at(id));
      a.assign(filled(a.dtype(), a.shape(), 0.0));
    }
  }
  update_moving_averages_locked(steps);
  iterations_->assign(Tensor::scalar<int64_t>(raw + 1));
}

void Optimizer::update_moving_averages_locked(int64_t steps) {
  if (!use_ema_) return;
  // Keras: average = m * average + (1 - m) * variable, m = ema_momentum except at step 0 (m = 0,
  // so the average starts as the variable), each product and sum in the variable's dtype.
  std::vector<std::pair<VariablePtr, Variable *>> pairs;
  for (uint64_t id : slot_order_) {
    const Slots &s = slots_.at(id);
    if (VariablePtr var = s.variable.lock()) pairs.emplace_back(var, &average_of(s));
  }
  for (const auto &[var, average] : pairs)
    average->assign(combine(average->peek(), var->peek(), [this, steps](auto a, auto v) {
      using T = decltype(a);
      const T m = static_cast<T>(steps != 0 ? 1 : 0) * static_cast<T>(ema_momentum_);
      return m * a + (static_cast<T>(1) - m) * v;
    }));
  // Every ema_overwrite_frequency steps the variables take their averages.
  if (ema_overwrite_frequency_ && (steps + 1) % *ema_overwrite_frequency_ == 0)
    for (const auto &[var, average] : pairs) var->assign(average->peek());
}

Tensor Optimizer::scale_loss(const Tensor &loss) const {
  require_defined(loss, "Optimizer.scale_loss", "loss");
  if (!loss_scale_factor_) return loss;
  if (!is_floating(loss.dtype()))
    fail(Code::kInvalidArgument, class_name_, ".scale_loss: argument 'loss' is ", loss.description(),
         "; expected a floating loss (float32, bfloat16 or float64)");
  return ops::mul(loss, ops::cast(Tensor::scalar<double>(*loss_scale_factor_), loss.dtype()));
}

void Optimizer::finalize_variable_values(const std::vector<VariablePtr> &vars) {
  if (!use_ema_) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < vars.size(); ++i) {
    if (!vars[i])
      fail(Code::kInvalidArgument, class_name_, ".finalize_variable_values: variable ", i, " is null");
    auto it = slots_.find(vars[i]->id());
    if (it != slots_.end()) vars[i]->assign(average_of(it->second).peek());
  }
}

}  // namespace kiln::train
