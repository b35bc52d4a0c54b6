// Optimizer: Keras 3's base optimizer (keras/src/optimizers/base_optimizer.py) — learning rate
// (a float or a schedule), gradient clipping (clipnorm, clipvalue, global_clipnorm), decoupled
// weight decay with exclusions, loss scaling, gradient accumulation, an exponential moving
// average of the weights (use_ema), the `iterations` counter, slots created per variable on first
// use and keyed by the variable's stable id — with each variable's step run as one fused
// in-place kernel (kernels/optimizer_kernels.h). The built-in optimizers are in optimizers.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autodiff/variable.h"
#include "core/config.h"
#include "core/tensor.h"
#include "kernels/optimizer_kernels.h"
#include "train/distribution.h"
#include "train/schedules.h"

namespace kiln::train {

class NamePattern;
using VariablePtr = std::shared_ptr<autodiff::Variable>;

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer &) = delete;
  Optimizer &operator=(const Optimizer &) = delete;

  uint64_t id() const { return id_; }
  const std::string &class_name() const { return class_name_; }
  const std::string &name() const { return name_; }
  // Keras's get_config: name, learning_rate (a float, or a serialized schedule), weight_decay,
  // clipnorm, global_clipnorm, clipvalue, use_ema, ema_momentum, ema_overwrite_frequency,
  // loss_scale_factor, gradient_accumulation_steps, then the class's own keys; kiln adds
  // exclude_from_weight_decay (the var_names) when set.
  Config get_config() const;
  // {"class_name": ..., "config": get_config()}.
  Config serialize() const;

  // Keras's apply_gradients(zip(grads, vars)): an undefined gradient skips its variable; every
  // pair is checked (dtype float32/float64 and equal, shapes equal, no variable twice) before
  // anything changes; then, as Keras 3's apply: the gradients divided by loss_scale_factor; with
  // gradient_accumulation_steps N, N - 1 of every N steps only add them to the accumulators and
  // the N-th updates with (gradient + accumulator) / N and zeroes every accumulator; clipping,
  // weight decay and each variable's fused update; with use_ema, the moving averages; then the
  // raw counter += 1. All gradients undefined is InvalidArgument (Keras's "No gradients provided").
  // Thread-safety: calls on one optimizer are serialised.
  void apply_gradients(const std::vector<Tensor> &grads, const std::vector<VariablePtr> &vars);
  // apply_gradients for gradients already summed over the processes (the gradient allreduce's
  // gradient(), which overlaps the sums with the backward pass): they are not summed again.
  void apply_reduced_gradients(const std::vector<Tensor> &grads, const std::vector<VariablePtr> &vars);

  // Horovod's DistributedOptimizer: with an allreduce set, apply_gradients first replaces the
  // gradients by their sum (or mean) over the processes, after checking them and before clipping.
  // Null (the default): the gradients are used as given.
  void set_gradient_allreduce(GradientAllreducePtr allreduce);
  GradientAllreducePtr gradient_allreduce() const;
  // Keras's `iterations`: the steps taken, which with gradient accumulation counts updates (the
  // raw counter // gradient_accumulation_steps). Adam's bias correction uses it.
  int64_t iterations() const;
  // The int64 scalar raw counter variable (Keras's `_iterations`: one per apply_gradients, what a
  // checkpoint saves; non-trainable); assigning it moves the schedule too.
  const VariablePtr &iterations_variable() const { return iterations_; }
  // The learning rate of the next step: the float, or the schedule at the raw counter (as Keras).
  double learning_rate() const;
  // Sets the float learning rate; slots are untouched. FailedPrecondition when the optimizer
  // has a schedule (as Keras's TypeError).
  void set_learning_rate(double lr);
  // Replaces the learning rate (float or schedule) by a schedule.
  void set_learning_rate_schedule(SchedulePtr schedule);
  SchedulePtr learning_rate_schedule() const;

  // iterations, the class's own state (Nadam's u_product), then each variable's slots but
  // placeholders, in the order the slots were made (the order of the list each variable was first
  // given in) and the class's slot order.
  std::vector<VariablePtr> variables() const;
  // The slot named slot_name ("momentum", "velocity", ... or Keras 2's "m", "v", "vhat") of the
  // variable with id var_id; NotFound when the variable has no slots yet or the class no such slot.
  VariablePtr slot(uint64_t var_id, const std::string &slot_name) const;
  // The class's slot names, in order.
  std::vector<std::string> slot_names() const;

  // Keras's optimizer.build(var_list): makes the slots of each variable that has none yet, in
  // this order (the order a first apply_gradients would), without a step; variables are checked
  // as apply_gradients checks them. Slot values a checkpoint restored before they existed land.
  void build(const std::vector<VariablePtr> &vars);

  // Each variable that has slots, in the order its slots were made (its "position"), with its
  // slots in slot_names() order: what a checkpoint saves, grouped as Keras's slot lists.
  // placeholder[k] marks a slot the variable does not have (Adafactor's r and c of a variable of
  // rank < 2): Keras's int32 scalar 0, which no update touches and variables() does not list.
  struct VariableSlots {
    uint64_t var_id;
    std::string var_name;
    std::vector<VariablePtr> slots;
    std::vector<bool> placeholder;
  };
  std::vector<VariableSlots> slot_variables() const;
  // The class's own state, listed after iterations by variables() (Nadam's u_product).
  std::vector<VariablePtr> state_variables() const {
    std::lock_guard<std::mutex> lock(mu_);
    return own_variables();
  }

  // A checkpoint's value for a slot that does not exist yet (TF's deferred restoration): the
  // slot slot_name of the position-th variable to get slots (0-based, in the order slots are
  // made) starts from value instead of its initial value when it is made, then on_restored runs.
  // A later value for the same slot replaces an earlier one. When that slot exists already it
  // takes the value now. A value whose dtype or shape differs from its variable's makes the
  // apply_gradients or build that would make the slot fail with InvalidArgument before anything
  // changes. NotFound for a slot name the class does not have.
  void defer_slot_restore(size_t position, const std::string &slot_name, const Tensor &value,
                          std::function<void()> on_restored = {});
  // defer_slot_restore for the slot of one variable, named by its id (TF's legacy optimizers
  // key their slots by variable, not by position): the slot starts from value when the
  // variable's slots are made, whenever that is, then on_restored runs; when they exist already
  // it takes the value now. Checked as defer_slot_restore's values are. A value for the variable
  // wins over one deferred for the position its slots get.
  void defer_slot_restore_for_variable(uint64_t var_id, const std::string &slot_name, const Tensor &value,
                                       std::function<void()> on_restored = {});
  // How many deferred slot values wait for their slots.
  size_t pending_slot_restores() const;

  // Keras's exclude_from_weight_decay(var_list, var_names): variables by id, and by name — a
  // variable whose name one of var_names matches (Keras's re.search of the names joined by "|":
  // plain names match as substrings) keeps its value through the decay. InvalidArgument for a
  // pattern that does not compile; FailedPrecondition once the optimizer has run (Keras: before
  // build).
  void exclude_from_weight_decay(const std::vector<uint64_t> &var_ids,
                                 const std::vector<std::string> &var_names);
  // Whether weight decay applies to a variable (Keras's _use_weight_decay).
  bool uses_weight_decay(const autodiff::Variable &v) const;

  // Keras's scale_loss: loss * loss_scale_factor, or loss itself when it is unset.
  Tensor scale_loss(const Tensor &loss) const;
  // Keras's finalize_variable_values (fit calls it at its end): with use_ema, each of vars that
  // has a moving average takes it; otherwise nothing.
  void finalize_variable_values(const std::vector<VariablePtr> &vars);
  bool use_ema() const { return use_ema_; }
  std::optional<int64_t> gradient_accumulation_steps() const { return accumulation_steps_; }

 protected:
  struct SlotSpec {
    std::string name;
    double initial;
  };
  Optimizer(const std::string &class_name, ConfigReader &r, double default_learning_rate,
            std::optional<double> default_weight_decay = std::nullopt);
  // Called by each class's constructor once it has read its own keys.
  void finish_config(ConfigReader &r);

  // The class's own slots, which its fused update reads and writes, in order.
  virtual std::vector<SlotSpec> slot_specs() const = 0;
  // The shape of slot k (of slot_specs()) for a variable of this shape: the variable's by default;
  // nullopt when such a variable has no slot k, which then holds a placeholder (see
  // VariableSlots) and is not passed to the update.
  virtual std::optional<Shape> slot_shape(size_t k, const Shape &variable_shape) const {
    (void)k;
    return variable_shape;
  }
  // Whether the learning rate is a schedule (Keras's callable learning rate). With mu_ held.
  bool has_schedule_locked() const { return schedule_ != nullptr; }
  virtual void add_config(Config &c) const = 0;
  // The fused update's rule and coefficients for step t (= iterations + 1) at learning rate lr,
  // for a variable of this dtype (Keras computes each step's scalars in the variable's dtype).
  virtual kernels::UpdateParams update_params(int64_t t, double lr, DType dtype) const = 0;
  // Keras's build(var_list) for the class's own state: once, before the first slots are made,
  // with the dtype of the first floating variable the optimizer is built on (float32 when there
  // is none: Keras's floatx). Called with mu_ held.
  virtual void build_state(DType first_dtype) { (void)first_dtype; }
  // Once per step, before the updates (Nadam's u_product).
  virtual void begin_step(int64_t t) { (void)t; }
  // Optimizer-wide state listed after iterations.
  virtual std::vector<VariablePtr> own_variables() const { return {}; }
  // Keras 2's slot names for Keras 3's ("m" for "momentum" ...); empty when none.
  virtual std::string slot_alias(const std::string &name) const;

  mutable std::mutex mu_;

 private:
  void apply(const std::vector<Tensor> &grads, const std::vector<VariablePtr> &vars, bool reduce);
  struct Slots {
    std::string var_name;
    std::vector<VariablePtr> slots;  // in all_slot_specs() order
    std::weak_ptr<autodiff::Variable> variable;
    std::vector<bool> placeholder;  // per slot
  };
  // The dtype and shape slot k of v has; the int32 scalar of a placeholder.
  std::pair<DType, Shape> slot_form(size_t k, const autodiff::Variable &v) const;
  // slot_specs(), then the base's own per-variable slots: "average" (use_ema) and
  // "gradient_accumulator" (gradient_accumulation_steps), each starting at 0 as Keras's.
  std::vector<SlotSpec> all_slot_specs() const;
  size_t base_slots() const;  // how many of those the base adds (0, 1 or 2)
  // The base's slots of a variable, which end its list: "average" first, the accumulator last.
  autodiff::Variable &average_of(const Slots &s) const { return *s.slots[s.slots.size() - base_slots()]; }
  autodiff::Variable &accumulator_of(const Slots &s) const { return *s.slots.back(); }
  const Slots &slots_for_locked(const VariablePtr &v);
  // The index in all_slot_specs() of slot_name (or its Keras 2 alias); NotFound naming the
  // optimizer's slots.
  size_t slot_index(const std::string &slot_name) const;
  // Assigns a restored value to an existing slot, checked against it (InvalidArgument).
  void assign_restored_slot(const VariablePtr &slot, const std::string &what, const Tensor &value,
                            const std::function<void()> &on_restored) const;
  // Before any slot is made: checks the deferred values the variables without slots would take
  // (vars in the order their slots would be made; duplicates skipped).
  void check_pending_locked(const std::vector<const autodiff::Variable *> &vars) const;
  int64_t iterations_locked() const;  // the raw counter
  int64_t steps_locked() const;       // Keras's iterations: raw // gradient_accumulation_steps
  // Keras's _update_model_variables_moving_average and, every ema_overwrite_frequency steps,
  // _overwrite_model_variables_with_average_value, over every variable with slots.
  void update_moving_averages_locked(int64_t steps);

  const uint64_t id_;
  const std::string class_name_;
  std::string name_;
  double learning_rate_ = 0.0;
  SchedulePtr schedule_;
  std::optional<double> weight_decay_, clipnorm_, global_clipnorm_, clipvalue_;
  bool use_ema_ = false;
  double ema_momentum_ = 0.99;
  std::optional<int64_t> ema_overwrite_frequency_;
  std::optional<double> loss_scale_factor_;
  std::optional<int64_t> accumulation_steps_;
  VariablePtr iterations_;
  std::vector<uint64_t> slot_order_;  // variable ids, first use first
  std::unordered_map<uint64_t, Slots> slots_;
  struct PendingSlot {
    Tensor value;
    std::function<void()> on_restored;
  };
  std::map<std::pair<size_t, size_t>, PendingSlot> pending_;           // (position, slot index) -> value
  std::map<std::pair<uint64_t, size_t>, PendingSlot> pending_by_var_;  // (variable id, slot index)
  std::set<uint64_t> exclude_ids_;
  std::vector<std::string> exclude_names_;
  std::shared_ptr<const NamePattern> exclude_pattern_;  // train/name_pattern.h
  bool built_ = false;
  GradientAllreducePtr allreduce_;
};

using OptimizerPtr = std::shared_ptr<Optimizer>;
using OptimizerFactory = std::function<OptimizerPtr(const Config &config)>;

// The registry by class name (as layers): the built-ins SGD, Adam, AdamW, RMSprop, Adagrad,
// Adadelta, Nadam (and Keras's lower-case names "sgd", "adam", ...), plus registered classes.
OptimizerPtr make_optimizer(const std::string &class_name, const Config &config);
// From {"class_name": ..., "config": {...}} (Keras's deserialize).
OptimizerPtr deserialize_optimizer(const Config &serialized);
// Adds (or replaces) a custom class; a built-in name is InvalidArgument.
void register_optimizer(const std::string &class_name, OptimizerFactory factory);
std::vector<std::string> registered_optimizers();

}  // namespace kiln::train
