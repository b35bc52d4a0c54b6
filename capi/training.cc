// Keras's training loop across the ABI: compile / fit / evaluate / predict, the *_on_batch calls
// and C train_step / test_step replacements over train/model_training.h.
#include "kiln/training.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capi/communicator_handle.h"
#include "capi/data_handle.h"
#include "capi/handles.h"
#include "capi/optimizer_handle.h"
#include "capi/options.h"
#include "capi/train_handles.h"
#include "train/model_training.h"

using kiln::Code;
using kiln::fail;
using kiln::Tensor;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;
namespace train = kiln::train;
using kiln::layers::LayerPtr;

namespace {

LayerPtr model_of(const kiln_layer *l, const char *fn) { return kiln::capi::layer_of(l, fn, "model"); }

std::vector<Tensor> tensors_of(const kiln_tensor_list *l) { return l ? l->tensors : std::vector<Tensor>(); }

Tensor tensor_or_none(const kiln_tensor *t) { return t ? t->value : Tensor(); }

kiln::data::DatasetPtr dataset_or_none(const kiln_dataset *d) { return d ? d->dataset : nullptr; }

template <typename T>
std::vector<T> array_of(const T *p, size_t n, const char *fn, const char *arg) {
  if (n == 0) return {};
  require_array_fits(n, sizeof(T), fn, arg);
  require_not_null(p, fn, arg);
  return std::vector<T>(p, p + n);
}

std::vector<train::CallbackPtr> callbacks_of(kiln_callback *const *cbs, size_t n, const char *fn) {
  std::vector<train::CallbackPtr> out;
  if (n == 0) return out;
  require_not_null(cbs, fn, "options->callbacks");
  for (size_t i = 0; i < n; ++i) {
    if (!cbs[i]) fail(Code::kInvalidArgument, fn, ": options->callbacks[", i, "] is NULL");
    out.push_back(cbs[i]->callback);
  }
  return out;
}

std::vector<std::string> strings_of(const char *const *s, size_t n, const char *fn, const char *arg) {
  std::vector<std::string> out;
  if (n == 0) return out;
  require_not_null(s, fn, arg);
  for (size_t i = 0; i < n; ++i) {
    if (!s[i]) fail(Code::kInvalidArgument, fn, ": ", arg, "[", i, "] is NULL");
    out.emplace_back(s[i]);
  }
  return out;
}

// A step callback's status as an exception with its code, the message naming the hook.
void check_step(kiln_status *st, const char *hook) {
  if (!st) return;
  kiln_status_code code = st->code;
  std::string msg = st->message;
  kiln_status_free(st);
  if (code <= KILN_STATUS_OK || code > KILN_STATUS_INTERNAL) code = KILN_STATUS_INTERNAL;
  throw kiln::Error(static_cast<Code>(code), std::string(hook) + ": " + msg);
}

// The C table and its user_data, destroyed with the last step function holding it.
struct StepTable {
  kiln_model_step_callbacks table{};
  void *user_data = nullptr;
  bool armed = false;  // set once kiln owns user_data
  StepTable() = default;
  StepTable(const StepTable &) = delete;
  StepTable &operator=(const StepTable &) = delete;
  ~StepTable() {
    if (armed && table.destroy) table.destroy(user_data);
  }
};

using StepPtr = kiln_status *(*)(kiln_config *, kiln_layer *, const kiln_tensor_list *, void *);

train::StepFn c_step(const std::shared_ptr<StepTable> &t, StepPtr fn, const char *hook) {
  if (!fn) return {};
  return [t, fn, hook](const LayerPtr &model, const std::vector<Tensor> &data) {
    kiln_layer handle(model);
    kiln_tensor_list list{data};
    kiln_config logs;
    check_step(fn(&logs, &handle, &list, t->user_data), hook);
    return train::Logs::from_config(logs.value);
  };
}

constexpr size_t kCompileV1 = KILN_OPTIONS_V1_SIZE(kiln_compile_options, run_eagerly);
constexpr size_t kFitV1 = KILN_OPTIONS_V1_SIZE(kiln_fit_options, validation_batch_size);
constexpr size_t kEvaluateV1 = KILN_OPTIONS_V1_SIZE(kiln_evaluate_options, num_callbacks);
constexpr size_t kPredictV1 = KILN_OPTIONS_V1_SIZE(kiln_predict_options, num_callbacks);
constexpr size_t kStepsV1 = KILN_OPTIONS_V1_SIZE(kiln_model_step_callbacks, destroy);

kiln_compile_options compile_defaults() {
  kiln_compile_options o{};
  o.struct_size = sizeof o;
  return o;
}

kiln_fit_options fit_defaults() {
  kiln_fit_options o{};
  o.struct_size = sizeof o;
  o.num_inputs = 1;
  o.batch_size = 32;
  o.epochs = 1;
  o.verbose = -1;
  o.shuffle = true;
  o.steps_per_epoch = -1;
  o.validation_steps = -1;
  o.validation_batch_size = -1;
  return o;
}

// The defaults of kiln_evaluate_options and kiln_predict_options.
template <typename Options>
Options loop_defaults() {
  Options o{};
  o.struct_size = sizeof o;
  o.num_inputs = 1;
  o.batch_size = 32;
  o.verbose = -1;
  o.steps = -1;
  return o;
}

// The fields evaluate and predict options share (x, dataset, batching, verbose, steps, callbacks).
template <typename Core, typename Options>
Core read_loop_options(const Options &o, const char *fn) {
  Core c;
  c.x = tensors_of(o.x);
  c.dataset = dataset_or_none(o.dataset);
  c.num_inputs = o.num_inputs;
  c.batch_size = o.batch_size;
  c.verbose = o.verbose;
  c.steps = o.steps;
  c.callbacks = callbacks_of(o.callbacks, o.num_callbacks, fn);
  return c;
}

kiln_config *new_logs(const train::Logs &logs) { return new kiln_config{logs.to_config()}; }

kiln_tensor_list *new_list(std::vector<Tensor> v) { return new kiln_tensor_list{std::move(v)}; }

}  // namespace

extern "C" {

kiln_status *kiln_compile_options_init(kiln_compile_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, compile_defaults(), kCompileV1, __func__,
                           "kiln_compile_options");
  KILN_CAPI_END
}

kiln_status *kiln_model_compile(kiln_layer *model, const kiln_compile_options *options) {
  KILN_CAPI_BEGIN
  const LayerPtr m = model_of(model, __func__);
  require_not_null(options, __func__, "options");
  const kiln_compile_options o =
      kiln::capi::read_options(options, compile_defaults(), kCompileV1, __func__, "kiln_compile_options");
  train::CompileOptions c;
  if (o.optimizer) c.optimizer = o.optimizer->optimizer;
  if (o.optimizer_name) c.optimizer_name = o.optimizer_name;
  if (o.num_losses) {
    require_not_null(o.losses, __func__, "options->losses");
    for (size_t i = 0; i < o.num_losses; ++i) {
      if (!o.losses[i]) fail(Code::kInvalidArgument, __func__, ": options->losses[", i, "] is NULL");
      c.losses.push_back(o.losses[i]->loss);
    }
  }
  c.loss_names = strings_of(o.loss_names, o.num_loss_names, __func__, "options->loss_names");
  c.loss_weights = array_of(o.loss_weights, o.num_loss_weights, __func__, "options->loss_weights");
  c.metric_names = strings_of(o.metric_names, o.num_metric_names, __func__, "options->metric_names");
  if (o.num_metrics) {
    require_not_null(o.metrics, __func__, "options->metrics");
    for (size_t i = 0; i < o.num_metrics; ++i) {
      if (!o.metrics[i]) fail(Code::kInvalidArgument, __func__, ": options->metrics[", i, "] is NULL");
      c.metrics.push_back(o.metrics[i]->metric);
    }
  }
  if (o.num_metric_is_object) {
    require_not_null(o.metric_is_object, __func__, "options->metric_is_object");
    c.metric_is_object.assign(o.metric_is_object, o.metric_is_object + o.num_metric_is_object);
  }
  c.metric_is_weighted =
      array_of(o.metric_is_weighted, o.num_metric_is_weighted, __func__, "options->metric_is_weighted");
  c.run_eagerly = o.run_eagerly;
  train::compile(m, c);
  KILN_CAPI_END
}

bool kiln_model_is_compiled(const kiln_layer *model) {
  LayerPtr m = kiln::capi::peek_layer(model);
  return m && train::is_compiled(*m);
}

kiln_status *kiln_model_get_optimizer(kiln_optimizer **out, const kiln_layer *model) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr m = model_of(model, __func__);
  train::compiled_model(*m, "kiln_model_get_optimizer");
  *out = new kiln_optimizer(train::training_state(*m)->optimizer);
  KILN_CAPI_END
}

kiln_status *kiln_model_set_stop_training(kiln_layer *model, bool stop) {
  KILN_CAPI_BEGIN
  train::training_state(*model_of(model, __func__))->stop_training = stop;
  KILN_CAPI_END
}

bool kiln_model_get_stop_training(const kiln_layer *model) {
  LayerPtr m = kiln::capi::peek_layer(model);
  return m && train::training_state(*m)->stop_training.load();
}

kiln_status *kiln_model_get_metrics_names(kiln_config **out, const kiln_layer *model) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr m = model_of(model, __func__);
  kiln::Config c;
  c.set("names", train::metrics_names(*m));
  *out = new kiln_config{std::move(c)};
  KILN_CAPI_END
}

kiln_status *kiln_model_get_metrics(kiln_metric **out, size_t capacity, size_t *out_count,
                                    const kiln_layer *model) {
  KILN_CAPI_BEGIN
  require_not_null(out_count, __func__, "out_count");
  const LayerPtr m = model_of(model, __func__);
  if (capacity > 0) require_not_null(out, __func__, "out");
  std::vector<std::shared_ptr<train::Metric>> metrics;
  if (train::is_compiled(*m))
    for (const train::LoggedMetric &lm : train::logged_metrics(*train::compiled_model(*m, __func__)))
      metrics.push_back(lm.metric);
  kiln::capi::write_handles(out, capacity, out_count, metrics);
  KILN_CAPI_END
}

kiln_status *kiln_fit_options_init(kiln_fit_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, fit_defaults(), kFitV1, __func__, "kiln_fit_options");
  KILN_CAPI_END
}

kiln_status *kiln_model_fit(kiln_callback **out_history, kiln_layer *model, const kiln_fit_options *options) {
  KILN_CAPI_BEGIN
  const LayerPtr m = model_of(model, __func__);
  require_not_null(options, __func__, "options");
  const kiln_fit_options o =
      kiln::capi::read_options(options, fit_defaults(), kFitV1, __func__, "kiln_fit_options");
  train::FitOptions f;
  f.x = tensors_of(o.x);
  f.y = tensors_of(o.y);
  f.sample_weight = tensor_or_none(o.sample_weight);
  f.dataset = dataset_or_none(o.dataset);
  f.num_inputs = o.num_inputs;
  f.batch_size = o.batch_size;
  f.epochs = o.epochs;
  f.verbose = o.verbose;
  f.callbacks = callbacks_of(o.callbacks, o.num_callbacks, __func__);
  f.validation_split = o.validation_split;
  f.validation_x = tensors_of(o.validation_x);
  f.validation_y = tensors_of(o.validation_y);
  f.validation_sample_weight = tensor_or_none(o.validation_sample_weight);
  f.validation_dataset = dataset_or_none(o.validation_dataset);
  f.validation_freq =
      array_of(o.validation_freq, o.num_validation_freq, __func__, "options->validation_freq");
  f.shuffle = o.shuffle;
  f.class_weight = array_of(o.class_weight, o.num_class_weight, __func__, "options->class_weight");
  f.distribution = kiln::capi::communicator_or_none(o.distribution);
  f.initial_epoch = o.initial_epoch;
  f.steps_per_epoch = o.steps_per_epoch;
  f.validation_steps = o.validation_steps;
  f.validation_batch_size = o.validation_batch_size;
  auto history = std::make_unique<kiln_callback>();
  history->callback = train::fit(m, f);
  if (out_history) *out_history = history.release();
  KILN_CAPI_END
}

kiln_status *kiln_evaluate_options_init(kiln_evaluate_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, loop_defaults<kiln_evaluate_options>(), kEvaluateV1,
                           __func__, "kiln_evaluate_options");
  KILN_CAPI_END
}

kiln_status *kiln_model_evaluate(kiln_config **out_logs, kiln_layer *model,
                                 const kiln_evaluate_options *options) {
  KILN_CAPI_BEGIN
  require_not_null(out_logs, __func__, "out_logs");
  const LayerPtr m = model_of(model, __func__);
  require_not_null(options, __func__, "options");
  const kiln_evaluate_options o = kiln::capi::read_options(options, loop_defaults<kiln_evaluate_options>(),
                                                           kEvaluateV1, __func__, "kiln_evaluate_options");
  train::EvaluateOptions e = read_loop_options<train::EvaluateOptions>(o, __func__);
  e.y = tensors_of(o.y);
  e.sample_weight = tensor_or_none(o.sample_weight);
  *out_logs = new_logs(train::evaluate(m, e));
  KILN_CAPI_END
}

kiln_status *kiln_predict_options_init(kiln_predict_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, loop_defaults<kiln_predict_options>(), kPredictV1, __func__,
                           "kiln_predict_options");
  KILN_CAPI_END
}

kiln_status *kiln_model_predict(kiln_tensor_list **out, kiln_layer *model,
                                const kiln_predict_options *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr m = model_of(model, __func__);
  require_not_null(options, __func__, "options");
  const kiln_predict_options o = kiln::capi::read_options(options, loop_defaults<kiln_predict_options>(),
                                                          kPredictV1, __func__, "kiln_predict_options");
  const train::PredictOptions p = read_loop_options<train::PredictOptions>(o, __func__);
  *out = new_list(train::predict(m, p));
  KILN_CAPI_END
}

kiln_status *kiln_model_train_on_batch(kiln_config **out_logs, kiln_layer *model, const kiln_tensor_list *x,
                                       const kiln_tensor_list *y, const kiln_tensor *sample_weight,
                                       const double *class_weight, size_t num_class_weight) {
  KILN_CAPI_BEGIN
  const LayerPtr m = model_of(model, __func__);
  require_not_null(x, __func__, "x");
  const train::Logs logs =
      train::train_on_batch(m, x->tensors, tensors_of(y), tensor_or_none(sample_weight),
                            array_of(class_weight, num_class_weight, __func__, "class_weight"));
  if (out_logs) *out_logs = new_logs(logs);
  KILN_CAPI_END
}

kiln_status *kiln_model_test_on_batch(kiln_config **out_logs, kiln_layer *model, const kiln_tensor_list *x,
                                      const kiln_tensor_list *y, const kiln_tensor *sample_weight) {
  KILN_CAPI_BEGIN
  const LayerPtr m = model_of(model, __func__);
  require_not_null(x, __func__, "x");
  const train::Logs logs = train::test_on_batch(m, x->tensors, tensors_of(y), tensor_or_none(sample_weight));
  if (out_logs) *out_logs = new_logs(logs);
  KILN_CAPI_END
}

kiln_status *kiln_model_predict_on_batch(kiln_tensor_list **out, kiln_layer *model,
                                         const kiln_tensor_list *x) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr m = model_of(model, __func__);
  require_not_null(x, __func__, "x");
  *out = new_list(train::predict_on_batch(m, x->tensors));
  KILN_CAPI_END
}

kiln_status *kiln_model_set_step_callbacks(kiln_layer *model, const kiln_model_step_callbacks *callbacks,
                                           void *user_data) {
  KILN_CAPI_BEGIN
  const LayerPtr m = model_of(model, __func__);
  if (!callbacks) {
    train::set_step_overrides(*m, {}, {});
    return nullptr;
  }
  kiln::capi::require_options_size<kiln_model_step_callbacks>(callbacks->struct_size, kStepsV1, __func__,
                                                              "kiln_model_step_callbacks");
  auto t = std::make_shared<StepTable>();
  std::memcpy(&t->table, callbacks, std::min(callbacks->struct_size, sizeof t->table));
  train::StepFn train_fn = c_step(t, t->table.train_step, "train_step");
  train::StepFn test_fn = c_step(t, t->table.test_step, "test_step");
  // From here on the table owns user_data (its destroy runs when the last step function goes).
  t->user_data = user_data;
  t->armed = true;
  train::set_step_overrides(*m, std::move(train_fn), std::move(test_fn));
  KILN_CAPI_END
}

kiln_status *kiln_model_compute_loss(kiln_tensor **out, kiln_layer *model, const kiln_tensor_list *x,
                                     const kiln_tensor_list *y, const kiln_tensor_list *y_pred,
                                     const kiln_tensor *sample_weight) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr m = model_of(model, __func__);
  require_not_null(y_pred, __func__, "y_pred");
  *out = kiln::capi::new_tensor(
      train::compute_loss(m, tensors_of(x), tensors_of(y), y_pred->tensors, tensor_or_none(sample_weight)));
  KILN_CAPI_END
}

kiln_status *kiln_model_compute_metrics(kiln_config **out_logs, kiln_layer *model, const kiln_tensor_list *x,
                                        const kiln_tensor_list *y, const kiln_tensor_list *y_pred,
                                        const kiln_tensor *sample_weight) {
  KILN_CAPI_BEGIN
  require_not_null(out_logs, __func__, "out_logs");
  const LayerPtr m = model_of(model, __func__);
  require_not_null(y_pred, __func__, "y_pred");
  *out_logs = new_logs(train::compute_metrics(m, tensors_of(x), tensors_of(y), y_pred->tensors,
                                              tensor_or_none(sample_weight)));
  KILN_CAPI_END
}

}  // extern "C"
