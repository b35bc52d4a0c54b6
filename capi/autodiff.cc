// Variables and gradient tapes.
#include <vector>

#include "capi/handles.h"
#include "capi/options.h"
#include "train/distribution.h"

using kiln::Tensor;
using kiln::autodiff::GradientSource;
using kiln::autodiff::Tape;
using kiln::autodiff::Unconnected;
using kiln::capi::element_of;
using kiln::capi::read_options;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;

namespace {

Tape &tape_of(const kiln_tape *t, const char *fn) {
  require_not_null(t, fn, "tape");
  return *t->tape;
}

const kiln::autodiff::Variable &variable_of(const kiln_variable *v, const char *fn) {
  require_not_null(v, fn, "variable");
  return *v->variable;
}

Unconnected unconnected_from_c(int u, const char *fn) {
  if (u != KILN_UNCONNECTED_NONE && u != KILN_UNCONNECTED_ZERO)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": unconnected ", u,
               " is not a kiln_unconnected; expected KILN_UNCONNECTED_NONE (0) or KILN_UNCONNECTED_ZERO (1)");
  return static_cast<Unconnected>(u);
}

// Hands the gradients over only once all of them exist, so a failure writes nothing.
void write_grads(kiln_tensor **out_grads, const std::vector<Tensor> &grads) {
  std::vector<std::unique_ptr<kiln_tensor>> handles;
  handles.reserve(grads.size());
  for (const Tensor &g : grads)
    handles.push_back(g.defined() ? std::make_unique<kiln_tensor>(kiln_tensor{g}) : nullptr);
  for (size_t i = 0; i < grads.size(); ++i) out_grads[i] = handles[i].release();
}

// The tape's gradients, summed over the ranks in buckets during the walk when it is distributed.
std::vector<Tensor> tape_gradient(kiln_tape &tape, const std::vector<Tensor> &targets,
                                  const std::vector<GradientSource> &sources, Unconnected u,
                                  const std::vector<Tensor> &target_grads) {
  if (tape.allreduce) return tape.allreduce->gradient(*tape.tape, targets, sources, u, target_grads);
  return tape.tape->gradient(targets, sources, u, target_grads);
}

// What a kiln_tape_gradient_options asks for, checked.
struct GradientRequest {
  std::vector<Tensor> targets, output_gradients;
  std::vector<GradientSource> sources;
  Unconnected unconnected = Unconnected::kNone;
};

GradientRequest request_of(kiln_tape *tape, const kiln_tape_gradient_options *options, kiln_tensor **out,
                           const char *fn) {
  (void)tape_of(tape, fn);
  require_not_null(options, fn, "options");
  kiln_tape_gradient_options defaults;
  kiln_tape_gradient_options_init(&defaults);
  const kiln_tape_gradient_options known =
      read_options(options, defaults, KILN_OPTIONS_V1_SIZE(kiln_tape_gradient_options, unconnected), fn,
                   "kiln_tape_gradient_options", "kiln_tape_gradient_options_init(&options)");
  options = &known;
  GradientRequest r;
  r.unconnected = unconnected_from_c(options->unconnected, fn);
  const size_t nt = options->num_targets, ns = options->num_sources;
  require_array_fits(nt, sizeof(const kiln_tensor *), fn, "options->num_targets");
  require_array_fits(ns, sizeof(const kiln_tensor *), fn, "options->num_sources");
  if (nt > 0) require_not_null(options->targets, fn, "options->targets");
  if (ns > 0) require_not_null(out, fn, "out_grads");
  if (ns > 0 && !options->sources && !options->variables)
    kiln::fail(kiln::Code::kInvalidArgument, fn,
               ": options->sources and options->variables are both NULL for ", ns, " sources");
  for (size_t k = 0; k < nt; ++k) {
    if (!options->targets[k])
      kiln::fail(kiln::Code::kInvalidArgument, fn, ": options->targets[", k, "] is NULL");
    r.targets.push_back(options->targets[k]->value);
    if (options->output_gradients)
      r.output_gradients.push_back(options->output_gradients[k] ? options->output_gradients[k]->value
                                                                : Tensor());
  }
  for (size_t i = 0; i < ns; ++i) {
    const kiln_tensor *s = options->sources ? options->sources[i] : nullptr;
    const kiln_variable *v = options->variables ? options->variables[i] : nullptr;
    if ((s == nullptr) == (v == nullptr))
      kiln::fail(kiln::Code::kInvalidArgument, fn, ": source ", i, " has ",
                 s ? "both a tensor and a variable" : "neither a tensor nor a variable",
                 "; expected exactly one of options->sources[", i, "] and options->variables[", i, "]");
    if (s)
      r.sources.emplace_back(s->value);
    else
      r.sources.emplace_back(*v->variable);
  }
  return r;
}

// Every argument is checked (here and in Tape::gradient) before the tape is used, so a
// rejected call leaves a non-persistent tape usable.
kiln_status *gradient(kiln_tensor **out_grads, kiln_tape *tape, const kiln_tensor *target,
                      const kiln_tensor *output_gradient, const std::vector<GradientSource> &sources,
                      int unconnected, const char *fn) {
  KILN_CAPI_BEGIN
  tape_of(tape, fn);  // checks the handle
  if (!sources.empty()) require_not_null(out_grads, fn, "out_grads");
  const Tensor &y = tensor_of(target, fn, "target");
  Tensor dy = output_gradient ? output_gradient->value : Tensor();
  const Unconnected u = unconnected_from_c(unconnected, fn);
  write_grads(out_grads, tape_gradient(*tape, {y}, sources, u,
                                       dy.defined() ? std::vector<Tensor>{dy} : std::vector<Tensor>{}));
  KILN_CAPI_END_AS(fn)
}

std::vector<GradientSource> source_list(const kiln_tensor *const *sources, size_t n, const char *fn) {
  require_array_fits(n, sizeof(const kiln_tensor *), fn, "num_sources");
  if (n > 0) require_not_null(sources, fn, "sources");
  std::vector<GradientSource> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(element_of(sources, i, fn, "sources")->value);
  return out;
}

}  // namespace

extern "C" {

kiln_status *kiln_variable_create(kiln_variable **out, const char *name, const kiln_tensor *initial,
                                  bool trainable) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_variable_create";
  require_not_null(out, fn, "out");
  require_not_null(name, fn, "name");
  auto v = std::make_shared<kiln::autodiff::Variable>(name, tensor_of(initial, fn, "initial"), trainable);
  *out = new kiln_variable{std::move(v)};
  KILN_CAPI_END
}

kiln_status *kiln_variable_clone(kiln_variable **out, const kiln_variable *variable) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_variable_clone";
  require_not_null(out, fn, "out");
  require_not_null(variable, fn, "variable");
  *out = new kiln_variable{variable->variable};
  KILN_CAPI_END
}

void kiln_variable_free(kiln_variable *variable) { delete variable; }

const char *kiln_variable_get_name(const kiln_variable *variable) {
  return variable ? variable->variable->name().c_str() : nullptr;
}

bool kiln_variable_get_trainable(const kiln_variable *variable) {
  return variable ? variable->variable->trainable() : false;
}

uint64_t kiln_variable_get_id(const kiln_variable *variable) {
  return variable ? variable->variable->id() : 0;
}

kiln_status *kiln_variable_read(kiln_tensor **out, const kiln_variable *variable) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_variable_read", "out");
  *out = kiln::capi::new_tensor(variable_of(variable, "kiln_variable_read").value());
  KILN_CAPI_END
}

kiln_status *kiln_variable_assign(kiln_variable *variable, const kiln_tensor *value) {
  KILN_CAPI_BEGIN
  require_not_null(variable, "kiln_variable_assign", "variable");
  variable->variable->assign(tensor_of(value, "kiln_variable_assign", "value"));
  KILN_CAPI_END
}

kiln_status *kiln_variable_update_in_place(kiln_variable *variable, kiln_variable_update_fn fn,
                                           void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(variable, __func__, "variable");
  require_not_null(reinterpret_cast<const void *>(fn), __func__, "fn");
  kiln::autodiff::Variable *v = variable->variable.get();
  const size_t bytes = static_cast<size_t>(v->shape().num_elements()) * kiln::dtype_size(v->dtype());
  kiln_status *failed = nullptr;
  // The update function may not throw: fn's status is kept and passed on after the lock.
  kiln::autodiff::Variable::update_in_place(&v, 1, [&](void *const *dst, const void *const *src) {
    failed = fn(dst[0], src[0], bytes, static_cast<kiln_dtype>(v->dtype()), user_data);
  });
  if (failed) return failed;
  KILN_CAPI_END
}

kiln_status *kiln_variable_assign_add(kiln_variable *variable, const kiln_tensor *delta) {
  KILN_CAPI_BEGIN
  require_not_null(variable, "kiln_variable_assign_add", "variable");
  variable->variable->assign_add(tensor_of(delta, "kiln_variable_assign_add", "delta"));
  KILN_CAPI_END
}

kiln_status *kiln_variable_assign_sub(kiln_variable *variable, const kiln_tensor *delta) {
  KILN_CAPI_BEGIN
  require_not_null(variable, "kiln_variable_assign_sub", "variable");
  variable->variable->assign_sub(tensor_of(delta, "kiln_variable_assign_sub", "delta"));
  KILN_CAPI_END
}

kiln_status *kiln_tape_create(kiln_tape **out, bool persistent, bool watch_accessed_variables) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_tape_create", "out");
  auto handle = std::make_unique<kiln_tape>();
  handle->tape = std::make_unique<Tape>(persistent, watch_accessed_variables);
  *out = handle.release();
  KILN_CAPI_END
}

void kiln_tape_free(kiln_tape *tape) { delete tape; }

kiln_status *kiln_tape_stop(kiln_tape *tape) {
  KILN_CAPI_BEGIN
  tape_of(tape, "kiln_tape_stop").stop_recording();
  KILN_CAPI_END
}

kiln_status *kiln_tape_start(kiln_tape *tape) {
  KILN_CAPI_BEGIN
  tape_of(tape, "kiln_tape_start").start_recording();
  KILN_CAPI_END
}

kiln_status *kiln_tape_watch(kiln_tape *tape, const kiln_tensor *tensor) {
  KILN_CAPI_BEGIN
  tape_of(tape, "kiln_tape_watch").watch(tensor_of(tensor, "kiln_tape_watch", "tensor"));
  KILN_CAPI_END
}

kiln_status *kiln_tape_watch_variable(kiln_tape *tape, const kiln_variable *variable) {
  KILN_CAPI_BEGIN
  Tape &t = tape_of(tape, "kiln_tape_watch_variable");
  t.watch(variable_of(variable, "kiln_tape_watch_variable"));
  KILN_CAPI_END
}

kiln_status *kiln_tape_gradient(kiln_tensor **out_grads, kiln_tape *tape, const kiln_tensor *target,
                                const kiln_tensor *const *sources, size_t num_sources,
                                kiln_unconnected unconnected) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tape_gradient";
  return gradient(out_grads, tape, target, nullptr, source_list(sources, num_sources, fn), unconnected, fn);
  KILN_CAPI_END
}

kiln_status *kiln_tape_gradient_with_output(kiln_tensor **out_grads, kiln_tape *tape,
                                            const kiln_tensor *target, const kiln_tensor *output_gradient,
                                            const kiln_tensor *const *sources, size_t num_sources,
                                            kiln_unconnected unconnected) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tape_gradient_with_output";
  return gradient(out_grads, tape, target, output_gradient, source_list(sources, num_sources, fn),
                  unconnected, fn);
  KILN_CAPI_END
}

kiln_status *kiln_tape_gradient_variables(kiln_tensor **out_grads, kiln_tape *tape, const kiln_tensor *target,
                                          const kiln_variable *const *variables, size_t num_variables,
                                          kiln_unconnected unconnected) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tape_gradient_variables";
  require_array_fits(num_variables, sizeof(const kiln_variable *), fn, "num_variables");
  if (num_variables > 0) require_not_null(variables, fn, "variables");
  std::vector<GradientSource> sources;
  for (size_t i = 0; i < num_variables; ++i)
    sources.emplace_back(*element_of(variables, i, fn, "variables")->variable);
  return gradient(out_grads, tape, target, nullptr, sources, unconnected, fn);
  KILN_CAPI_END
}

void kiln_tape_gradient_options_init(kiln_tape_gradient_options *options) {
  if (!options) return;
  *options = kiln_tape_gradient_options{};
  options->struct_size = sizeof(kiln_tape_gradient_options);
  options->unconnected = KILN_UNCONNECTED_NONE;
}

kiln_status *kiln_tape_gradient_multi(kiln_tensor **out_grads, kiln_tape *tape,
                                      const kiln_tape_gradient_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tape_gradient_multi";
  const GradientRequest r = request_of(tape, options, out_grads, fn);
  write_grads(out_grads, tape_gradient(*tape, r.targets, r.sources, r.unconnected, r.output_gradients));
  KILN_CAPI_END
}

kiln_status *kiln_tape_jacobian(kiln_tensor **out_jacobians, kiln_tape *tape,
                                const kiln_tape_gradient_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tape_jacobian";
  const GradientRequest r = request_of(tape, options, out_jacobians, fn);
  if (r.targets.size() != 1)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": options->num_targets is ", r.targets.size(),
               "; expected exactly one target");
  if (options->output_gradients)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": options->output_gradients is set; a jacobian takes none");
  write_grads(out_jacobians, tape->tape->jacobian(r.targets[0], r.sources, r.unconnected));
  KILN_CAPI_END
}

kiln_status *kiln_tape_batch_jacobian(kiln_tensor **out, kiln_tape *tape, const kiln_tensor *target,
                                      const kiln_tensor *source, kiln_unconnected unconnected) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tape_batch_jacobian";
  Tape &t = tape_of(tape, fn);
  require_not_null(out, fn, "out");
  const Tensor &y = tensor_of(target, fn, "target");
  const Tensor &x = tensor_of(source, fn, "source");
  write_grads(out, {t.batch_jacobian(y, x, unconnected_from_c(unconnected, fn))});
  KILN_CAPI_END
}

kiln_status *kiln_tape_get_watched_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                             const kiln_tape *tape) {
  KILN_CAPI_BEGIN
  const Tape &t = tape_of(tape, __func__);
  require_not_null(out_count, __func__, "out_count");
  if (capacity > 0) require_not_null(out, __func__, "out");
  kiln::capi::write_variables(out, capacity, out_count, t.watched_variables());
  KILN_CAPI_END
}

kiln_status *kiln_tape_reset(kiln_tape *tape) {
  KILN_CAPI_BEGIN
  tape_of(tape, "kiln_tape_reset").reset();
  KILN_CAPI_END
}

}  // extern "C"
