/*
 * kiln/optimizers.h — Keras optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Nadam, Adamax, Lion,
 * Ftrl, Lamb, Adafactor) and learning-rate schedules. Part of the kiln C API (C99); include "kiln/kiln.h" for
 * all of it.
 *
 * An optimizer is made by class name and a kiln_config holding Keras's arguments (names,
 * defaults and formulas of Keras 3). learning_rate is a float or a serialized schedule
 * {"class_name": "ExponentialDecay", "config": {...}}. Each variable's update runs as one fused
 * in-place kernel; slots are made for each float variable the first time it is given to
 * apply_gradients (with a gradient or not, as Keras builds) and keyed by its identity
 * (kiln_variable_get_id), never by its position in the list.
 *
 *   kiln_config *c = NULL;
 *   kiln_optimizer *adam = NULL;
 *   kiln_config_create(&c);
 *   kiln_config_set_float(c, "learning_rate", 1e-3);
 *   kiln_optimizer_create(&adam, "Adam", c);                  // Adam(learning_rate=1e-3)
 *   kiln_optimizer_apply_gradients(adam, grads, vars, n);     // apply_gradients(zip(grads, vars))
 *
 * Schedules are configs too: kiln_learning_rate_schedule_call evaluates one at a step. The
 * BERT/ALBERT "AdamWarmup" recipe (Model Garden's create_optimizer) is an AdamW whose learning_rate is
 *   {"class_name": "WarmUp", "config": {"initial_learning_rate": 2e-5, "warmup_steps": W,
 *    "decay_schedule_fn": {"class_name": "PolynomialDecay", "config": {
 *        "initial_learning_rate": 2e-5, "decay_steps": N, "end_learning_rate": 0.0}}}}
 * with "weight_decay": 0.01 and "exclude_from_weight_decay": ["LayerNorm", "layer_norm", "bias"].
 */
#ifndef KILN_OPTIMIZERS_H
#define KILN_OPTIMIZERS_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/// An optimizer from its Keras class name ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
/// "Adadelta", "Nadam", "Adamax", "Lion", "Ftrl", "Lamb", "Adafactor", or Keras's lower-case names "sgd",
/// "adam", ...) and config (NULL: the defaults). Common keys (Keras's base optimizer): name, learning_rate
/// (float or serialized schedule), weight_decay, clipnorm, clipvalue, global_clipnorm (at most one of the
/// three; each acts when > 0), use_ema=false (true: keep an exponential moving average of each variable,
/// average = m * average + (1 - m) * variable after every step, m = ema_momentum=0.99 in [0, 1]
/// except m = 0 at step 0; every
/// ema_overwrite_frequency (null, or >= 1) steps the variables take their averages, and fit ends by giving
/// them their averages), loss_scale_factor=null (a finite nonzero float: fit differentiates loss * factor and
/// each step first divides the gradients by it; see kiln_optimizer_scale_loss),
/// gradient_accumulation_steps=null (an integer N >= 2: N - 1 of every N steps only add the gradients to
/// per-variable accumulators, and the N-th updates with (gradient + accumulator) / N, then zeroes them;
/// iterations counts updates, the schedule reads the raw step count, as Keras 3); kiln adds
/// exclude_from_weight_decay (a list of name patterns, as kiln_optimizer_exclude_from_weight_decay's
/// var_names). tf.keras 2's decay (its configs carry "decay": 0.0) is ignored with a warning, as Keras 3.
/// Class keys: SGD momentum=0.0, nesterov=false (learning_rate 0.01); Adam beta_1=0.9, beta_2=0.999,
/// epsilon=1e-7, amsgrad=false; AdamW as Adam with weight_decay=0.004 (null is
/// INVALID_ARGUMENT); RMSprop rho=0.9,
/// momentum=0.0, epsilon=1e-7, centered=false; Adagrad initial_accumulator_value=0.1,
/// epsilon=1e-7; Adadelta rho=0.95, epsilon=1e-7; Nadam and Adamax beta_1, beta_2, epsilon as Adam;
/// Lion beta_1=0.9 (in (0, 1]), beta_2=0.99; Ftrl learning_rate_power=-0.5 (<= 0),
/// initial_accumulator_value=0.1, l1_regularization_strength=0.0, l2_regularization_strength=0.0,
/// l2_shrinkage_regularization_strength=0.0 (each >= 0), beta=0.0; Lamb beta_1, beta_2, epsilon as Adam;
/// Adafactor beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0, relative_step=true
/// (with a float learning rate, the rate is min(learning_rate, 1 / sqrt(step))), its second moment
/// factored over the last two axes of each variable of rank >= 2 (learning_rate 0.001 unless said). Unknown
/// classes are NOT_FOUND; unknown keys and bad values INVALID_ARGUMENT naming them. Ownership: *out is new,
/// free with kiln_optimizer_free; config stays the caller's. Lifetime: independent of config. Thread-safety:
/// safe.
KILN_API kiln_status *kiln_optimizer_create(kiln_optimizer **out, const char *class_name, const kiln_config *config);
/// An optimizer from Keras's serialized form {"class_name": ..., "config": {...}} (keras.optimizers
/// .deserialize). Ownership: *out is new; serialized stays the caller's. Lifetime: independent.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_deserialize(kiln_optimizer **out, const kiln_config *serialized);
/// The serialized form {"class_name": ..., "config": get_config()}. Ownership: *out is new, free
/// with kiln_config_free. Lifetime: independent of the optimizer. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_serialize(kiln_config **out, const kiln_optimizer *optimizer);
/// get_config: Keras's keys (see kiln_optimizer_create); learning_rate is the float, or the
/// serialized schedule. Ownership: *out is new, free with kiln_config_free. Lifetime: independent
/// of the optimizer. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_get_config(kiln_config **out, const kiln_optimizer *optimizer);
/// A new handle to the same optimizer (not a copy of its state). Ownership: *out is new, free with
/// kiln_optimizer_free. Lifetime: keeps the optimizer alive. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_clone(kiln_optimizer **out, const kiln_optimizer *optimizer);
/// Frees a handle; the optimizer lives on while other handles hold it. Accepts NULL.
/// Ownership: takes the handle. Thread-safety: not concurrently with calls on the same handle.
KILN_API void kiln_optimizer_free(kiln_optimizer *optimizer);
/// The optimizer's identity, fixed for its life and never reused; 0 for NULL.
/// Ownership: none (a value). Lifetime: valid for the process. Thread-safety: safe.
KILN_API uint64_t kiln_optimizer_get_id(const kiln_optimizer *optimizer);
/// The Keras class name ("Adam"); NULL for NULL. Ownership: borrowed. Lifetime: valid while the
/// optimizer lives. Thread-safety: safe.
KILN_API const char *kiln_optimizer_get_class_name(const kiln_optimizer *optimizer);
/// The name ("adam", "adam_1", ... unless given); NULL for NULL. Ownership: borrowed.
/// Lifetime: valid while the optimizer lives. Thread-safety: safe.
KILN_API const char *kiln_optimizer_get_name(const kiln_optimizer *optimizer);

/// Keras's apply_gradients(zip(grads, vars)): one step over n (gradient, variable) pairs. A NULL
/// grads[i] skips vars[i], as Keras skips a None gradient (grads itself may be NULL when n is 0).
/// Every pair is checked before anything changes: vars[i] not NULL and not listed twice, a
/// float32 or float64 variable, a gradient of its dtype and shape (INVALID_ARGUMENT naming the
/// variable otherwise); all gradients NULL is INVALID_ARGUMENT. Then, as Keras 3's apply: the
/// gradients divided by loss_scale_factor; with gradient_accumulation_steps N, N - 1 of every N
/// calls only add them to the accumulators, and the N-th goes on with (gradient + accumulator) / N;
/// clipping, decoupled weight decay (w -= w * weight_decay * lr, for variables not excluded), the
/// class's update as one fused in-place kernel per variable (slots made for every float variable
/// given that has none, gradient or not, in the list's order, as Keras builds: zeros or Adagrad's
/// initial_accumulator_value); with use_ema the moving averages; and the raw step
/// counter += 1. A tensor read from a variable earlier keeps its
/// value (the update writes a new buffer while one is alive). Results do not depend on the
/// thread count. Ownership: grads and vars stay the caller's. Lifetime: the slots live as long as
/// the optimizer (or a handle to them). Thread-safety: calls on one optimizer are serialised;
/// assignments to the same variables from other threads wait for the update.
KILN_API kiln_status *kiln_optimizer_apply_gradients(kiln_optimizer *optimizer, const kiln_tensor *const *grads,
                                                     kiln_variable *const *vars, size_t n);
/// Keras's optimizer.build(var_list): makes the slots of each variable in vars that has none, in
/// this order, without a step (the order a first apply_gradients would give them); slot values a
/// checkpoint restored before they existed land now. Variables must be float32 or float64 and not
/// NULL (INVALID_ARGUMENT naming the variable, before anything is made); a restored value whose
/// shape or dtype differs from its slot's is INVALID_ARGUMENT. Ownership: vars stay the caller's.
/// Thread-safety: as kiln_optimizer_apply_gradients.
KILN_API kiln_status *kiln_optimizer_build(kiln_optimizer *optimizer, kiln_variable *const *vars, size_t n);
/// The loss of kiln_optimizer_minimize: writes a new float tensor to *out_loss (its sum is
/// minimised, as tape.gradient takes a non-scalar target), or returns a status.
typedef kiln_status *(*kiln_loss_fn)(kiln_tensor **out_loss, void *user_data);
/// Keras's optimizer.minimize(loss, var_list): runs loss_fn(user_data) under a new GradientTape
/// that watches vars, takes the gradients of the loss with respect to vars and applies them as
/// kiln_optimizer_apply_gradients does (a variable the loss does not depend on is skipped; if none
/// is reached, INVALID_ARGUMENT); with loss_scale_factor it differentiates the scaled loss
/// (kiln_optimizer_scale_loss), which the step unscales. out_loss may be NULL; otherwise *out_loss
/// is the loss, unscaled (new).
/// A status loss_fn returns comes back with its code, the message prefixed by where it came from;
/// then nothing changed. Ownership: vars stay the caller's; the tensor loss_fn writes is taken.
/// Thread-safety: as kiln_optimizer_apply_gradients; loss_fn runs on the calling thread.
KILN_API kiln_status *kiln_optimizer_minimize(kiln_tensor **out_loss, kiln_optimizer *optimizer,
                                              kiln_loss_fn loss_fn, void *user_data,
                                              kiln_variable *const *vars, size_t n);
/// The number of steps taken (optimizer.iterations; with gradient_accumulation_steps N, the
/// updates: the raw count of kiln_optimizer_apply_gradients calls, which the counter variable
/// holds, divided by N). Ownership: none. Lifetime: a value. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_get_iterations(int64_t *out, const kiln_optimizer *optimizer);
/// The learning rate of the next step: the float, or the schedule at the raw step count.
/// Ownership: none. Lifetime: a value. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_get_learning_rate(double *out, const kiln_optimizer *optimizer);
/// Sets the float learning rate (optimizer.learning_rate = lr) without touching the slots: the
/// moments carry on. FAILED_PRECONDITION when the learning rate is a schedule; INVALID_ARGUMENT
/// for a non-finite lr. Ownership: none. Lifetime: until the next set. Thread-safety: safe; a
/// step running on another thread uses either value.
KILN_API kiln_status *kiln_optimizer_set_learning_rate(kiln_optimizer *optimizer, double learning_rate);
/// Makes the learning rate a schedule, given in serialized form (see the file comment).
/// Ownership: schedule stays the caller's (the optimizer keeps its own copy). Lifetime: until
/// the next set. Thread-safety: as kiln_optimizer_set_learning_rate.
KILN_API kiln_status *kiln_optimizer_set_learning_rate_schedule(kiln_optimizer *optimizer,
                                                                const kiln_config *schedule);
/// A custom learning-rate schedule's function (the __call__ of a subclass of Keras's
/// LearningRateSchedule): writes the learning rate at step (the optimizer's raw step count) to
/// *out_lr; NULL for success, or a status that fails the call that asked for it.
typedef kiln_status *(*kiln_learning_rate_fn)(double *out_lr, int64_t step, void *user_data);
/// A custom schedule's get_config: fills config (given empty, e.g. with kiln_config_update);
/// NULL for success or a status.
typedef kiln_status *(*kiln_learning_rate_config_fn)(kiln_config *config, void *user_data);
/// Makes the learning rate a custom schedule of class class_name (Keras's LearningRateSchedule
/// subclass, e.g. the Transformer's d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)): each
/// step's learning rate is fn(step, user_data). get_config gives its config when the optimizer is
/// serialized ({"class_name": class_name, "config": ...}: get_config, a model's compile config
/// when it is saved); NULL get_config makes those UNIMPLEMENTED, as Keras's NotImplementedError.
/// The schedule is not registered: deserializing that config (loading a model compiled with it)
/// is NOT_FOUND, so load such a model with compile off and compile it again. fn and get_config
/// run on the thread that steps the optimizer or asks for its learning rate or config, without
/// the optimizer's lock (they may read it, e.g. its iterations); fn runs only for steps that
/// update (not those gradient accumulation only adds up). Ownership: destroy(user_data) (may be
/// NULL) runs when the optimizer drops the schedule (a new learning rate, or its end), not on
/// failure. Lifetime: until the next set. Thread-safety: as kiln_optimizer_set_learning_rate.
KILN_API kiln_status *kiln_optimizer_set_learning_rate_fn(kiln_optimizer *optimizer, const char *class_name,
                                                          kiln_learning_rate_fn fn,
                                                          kiln_learning_rate_config_fn get_config,
                                                          kiln_user_data_destroy_fn destroy, void *user_data);
/// optimizer.variables: the iterations counter (an int64 scalar, non-trainable) first, then the
/// class's own state (Nadam's u_product: a scalar, float64 until the optimizer is built, then
/// float64 if the first variable it is built on is float64 and float32 otherwise, as Keras's for
/// float32 and float64 models; the build replaces it when its dtype changes, so a handle taken
/// before the build no longer reaches it), then each variable's slots, variables in the order
/// their slots were made (the order of the list they were first given in) and slots in the class's order
/// (SGD: momentum; Adam, AdamW, Nadam: momentum, velocity[, velocity_hat]; RMSprop: velocity[, momentum][,
/// average_gradient]; Adagrad: accumulator; Adadelta: accumulated_grad, accumulated_delta_var; Adamax:
/// momentum, norm; Lion: momentum; Ftrl: accumulator, linear; Lamb: momentum, velocity; Adafactor: r (shape
/// [..., rows]), c ([..., cols]), velocity, with only velocity for a variable of rank < 2), then "average"
/// with use_ema and "gradient_accumulator" with gradient_accumulation_steps. Writes new handles
/// to out[0..min(capacity, count)) and the count to *out_count; call with capacity 0 to learn the
/// count. Ownership: each out[i] is new, free with kiln_variable_free. Lifetime: the variables
/// live while a handle or the optimizer holds them. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_get_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                                   const kiln_optimizer *optimizer);
/// The slot slot_name of variable (get_slot(var, "momentum"); Keras 2's "m", "v" and "vhat" name
/// momentum, velocity and velocity_hat), found by the variable's identity. NOT_FOUND when the
/// class has no such slot (the message lists its slots) or the variable has had no update yet.
/// Adafactor's r and c of a variable of rank < 2 are Keras's placeholders: int32 scalars 0.
/// Ownership: *out is new, free with kiln_variable_free. Lifetime: independent.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_get_slot(kiln_variable **out, const kiln_optimizer *optimizer,
                                              const kiln_variable *variable, const char *slot_name);
/// Keras's exclude_from_weight_decay(var_list, var_names): the variables in vars, and every
/// variable whose name var_names match (as Keras: a regular-expression search for the names
/// joined by "|", so plain names match as substrings; the patterns are ECMAScript's, which agrees
/// with Python's re for names, classes, anchors ^ $ and groups, not for \A, \Z or (?...)), keep
/// their value through weight decay.
/// Replaces an earlier exclusion. INVALID_ARGUMENT for names that do not compile as a pattern;
/// FAILED_PRECONDITION once the optimizer has taken a step. Ownership: arguments stay the
/// caller's (names are copied; variables are kept by identity only). Lifetime: for the
/// optimizer's life. Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_exclude_from_weight_decay(kiln_optimizer *optimizer,
                                                               kiln_variable *const *vars, size_t num_vars,
                                                               const char *const *var_names, size_t num_names);
/// Keras's scale_loss: loss * loss_scale_factor (in loss's dtype, recorded by a tape), or loss
/// itself when the factor is unset. A GradientTape loop differentiates this; apply_gradients
/// divides the gradients by the factor again. Ownership: *out is new. Lifetime: independent.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_optimizer_scale_loss(kiln_tensor **out, const kiln_optimizer *optimizer,
                                                const kiln_tensor *loss);
/// Keras's finalize_variable_values(var_list), which fit calls at its end: with use_ema, each
/// variable that has a moving average takes it; without, nothing. Ownership: none (variables are
/// written in place). Lifetime: -. Thread-safety: as kiln_optimizer_apply_gradients.
KILN_API kiln_status *kiln_optimizer_finalize_variable_values(kiln_optimizer *optimizer,
                                                              kiln_variable *const *vars, size_t n);

/// Evaluates a learning-rate schedule given in serialized form {"class_name": ..., "config":
/// {...}} at step: ExponentialDecay(initial_learning_rate, decay_steps, decay_rate,
/// staircase=false), PiecewiseConstantDecay(boundaries, values), PolynomialDecay(
/// initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=false),
/// CosineDecay(initial_learning_rate, decay_steps, alpha=0.0, warmup_target=null,
/// warmup_steps=0), InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate,
/// staircase=false), each with an optional name, and LinearWarmup(after_warmup_lr_sched (a
/// serialized schedule or a float), warmup_steps, warmup_learning_rate=0.0): from
/// warmup_learning_rate linearly to after_warmup_lr_sched(warmup_steps) over the warm-up, then
/// after_warmup_lr_sched(step); WarmUp(initial_learning_rate, decay_schedule_fn (a serialized
/// schedule or a float), warmup_steps, power=1.0): initial_learning_rate * (step /
/// warmup_steps)^power over the warm-up, then decay_schedule_fn(step) (Model Garden's, as BERT's
/// create_optimizer uses it). Snake-case class names ("exponential_decay") are accepted.
/// Computed in float32 in the order of operations of Keras with its default floatx (Model
/// Garden's for LinearWarmup and WarmUp), cos/pow/log from the C library (as TensorFlow's CPU
/// kernels take them without XLA); *out is that float32 value as a double.
/// Unknown classes are NOT_FOUND, bad configs INVALID_ARGUMENT.
/// Ownership: schedule stays the caller's. Lifetime: a value. Thread-safety: safe.
KILN_API kiln_status *kiln_learning_rate_schedule_call(double *out, const kiln_config *schedule, int64_t step);
/// The schedule's get_config with the defaults filled in, in serialized form. Ownership: *out is
/// new, free with kiln_config_free. Lifetime: independent of schedule. Thread-safety: safe.
KILN_API kiln_status *kiln_learning_rate_schedule_get_config(kiln_config **out, const kiln_config *schedule);

#ifdef __cplusplus
}
#endif

#endif /* KILN_OPTIMIZERS_H */
