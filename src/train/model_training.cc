// compile, the built-in train/test steps, compute_loss / compute_metrics and the *_on_batch calls
// (Keras 3 trainers/trainer.py, trainers/compile_utils.py and the backend trainers' steps).
#include "train/model_training.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "autodiff/tape.h"
#include "core/error.h"
#include "ops/ops.h"
#include "train/model_training_internal.h"
#include "train/serialized.h"

namespace kiln::train {

namespace {

bool is_accuracy_or_ce(const std::string &id) {
  return id == "accuracy" || id == "acc" || id == "crossentropy" || id == "ce";
}

MetricPtr make_loss_tracker() {
  Config c;
  c.set("name", std::string("loss"));
  return create_metric("Mean", c);
}

// A copy of metric under another name (the per-output metrics of a model with several outputs).
MetricPtr renamed(const Metric &m, const std::string &name) {
  Config s = serialize_metric(m);
  Config config = s.get_config("config");
  config.set("name", name);
  s.set("config", config);
  return deserialize_metric(s);
}

Tensor as_float32(const Tensor &t) {
  return t.dtype() != DType::kFloat32 && is_floating(t.dtype()) ? ops::cast(t, DType::kFloat32) : t;
}

// Keras's CompileMetrics build: the metrics of every output, resolved from the first batch. With
// several outputs each output has its own copy, named "output_<i>_<name>". The log names follow
// Keras 3's CompileMetrics.result, in its order (every output's `metrics`, then every output's
// weighted_metrics): a repeated name takes "_1", "_2", ...; a weighted metric whose name is taken
// is logged as "weighted_<name>" (then "_1", ...). The metric objects keep their own names.
void build_metrics(CompiledModel &c, const std::vector<Tensor> &y, const std::vector<Tensor> &y_pred) {
  const size_t n = y_pred.size();
  std::vector<std::vector<MetricPtr>> out(n);
  std::vector<std::vector<std::string>> base(n), names(n);
  for (size_t i = 0; i < n; ++i) {
    const Loss *loss = c.losses.empty() ? nullptr : c.losses[c.losses.size() == 1 ? 0 : i].get();
    const std::string prefix = n > 1 ? "output_" + std::to_string(i + 1) + "_" : "";
    for (const CompiledMetric &cm : c.metrics) {
      if (cm.custom_loss) {  // one wrapper per output, of the loss made at compile
        base[i].push_back(prefix + cm.name);
        out[i].push_back(mean_metric_wrapper(cm.custom_loss, prefix + cm.name));
        continue;
      }
      MetricPtr m =
          cm.object ? cm.object
                    : resolve_metric(cm.name, loss, y[i].shape().to_vector(), y_pred[i].shape().to_vector());
      base[i].push_back(prefix + m->name());
      out[i].push_back(prefix.empty() ? m : renamed(*m, prefix + m->name()));
    }
    names[i].resize(c.metrics.size());
  }
  std::map<std::string, int> taken;  // name -> times used (Keras's unique_name_counters)
  auto unique = [&taken](const std::string &name) {
    auto it = taken.find(name);
    if (it == taken.end()) {
      taken.emplace(name, 1);
      return name;
    }
    return name + "_" + std::to_string(it->second++);
  };
  for (const bool weighted : {false, true})
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < c.metrics.size(); ++k) {
        if (c.metrics[k].weighted != weighted) continue;
        const std::string prefix = n > 1 ? "output_" + std::to_string(i + 1) + "_" : "";
        const std::string &name = base[i][k];
        names[i][k] = !weighted || taken.count(name) == 0
                          ? unique(name)
                          : unique(prefix + "weighted_" + name.substr(prefix.size()));
      }
  c.output_metrics = std::move(out);
  c.output_metric_names = std::move(names);
  c.metrics_built = true;
}

}  // namespace

std::vector<Tensor> slice_vector(const std::vector<Tensor> &v, size_t begin, size_t end) {
  return std::vector<Tensor>(v.begin() + static_cast<std::ptrdiff_t>(std::min(begin, v.size())),
                             v.begin() + static_cast<std::ptrdiff_t>(std::min(end, v.size())));
}

void split_targets(const std::vector<Tensor> &rest, size_t num_outputs, int64_t num_y, std::vector<Tensor> *y,
                   Tensor *sw, const char *what) {
  if (num_y >= 0) {
    const auto ny = static_cast<size_t>(num_y);
    if (ny != 0 && ny != num_outputs)
      fail(Code::kInvalidArgument, what, ": ", ny, " y tensor(s) for ", num_outputs,
           " model output(s); expected one y per output");
    if (rest.size() < ny || rest.size() > ny + 1)
      fail(Code::kInvalidArgument, what, ": the batch holds ", rest.size(), " target component(s) for ", ny,
           " y tensor(s)");
    *y = slice_vector(rest, 0, ny);
    *sw = rest.size() > ny ? rest.back() : Tensor();
  } else if (rest.empty() || rest.size() == num_outputs) {
    *y = rest;  // no targets: a model trained on its own add_loss losses (or a step that needs none)
    *sw = Tensor();
  } else if (rest.size() == num_outputs + 1) {
    *y = slice_vector(rest, 0, num_outputs);
    *sw = rest.back();
  } else {
    fail(Code::kInvalidArgument, what, ": the model has ", num_outputs, " output(s) but the data holds ",
         rest.size(), " target component(s); expected ", num_outputs,
         " y tensor(s), then optionally a sample weight (or no targets at all)");
  }
}

void compile(const LayerPtr &model, const CompileOptions &o) {
  KILN_REQUIRE(model != nullptr, "compile: model is null");
  KILN_REQUIRE(o.losses.empty() || o.loss_names.empty(),
               "compile: give losses either as objects or by name, not both (got ", o.losses.size(),
               " objects and ", o.loss_names.size(), " names)");
  auto c = std::make_shared<CompiledModel>();
  for (const LossPtr &l : o.losses) {
    KILN_REQUIRE(l != nullptr, "compile: a loss in the list is null");
    c->losses.push_back(l);
  }
  for (const std::string &name : o.loss_names) c->losses.push_back(create_loss(name));
  if (!o.loss_weights.empty()) {
    const size_t n = std::max<size_t>(c->losses.size(), 1);
    if (c->losses.size() > 1 && o.loss_weights.size() != n)
      fail(Code::kInvalidArgument, "compile: ", o.loss_weights.size(), " loss_weights for ", n,
           " losses; expected one per loss");
    for (double w : o.loss_weights)
      KILN_REQUIRE(std::isfinite(w), "compile: loss_weights holds ", w, "; expected finite numbers");
    c->loss_weights = o.loss_weights;
  }
  const size_t num_metrics = o.metric_names.size() + o.metrics.size();
  std::vector<bool> is_object = o.metric_is_object;
  if (is_object.empty()) {
    is_object.assign(o.metric_names.size(), false);
    is_object.resize(num_metrics, true);
  } else {
    const auto objects = static_cast<size_t>(std::count(is_object.begin(), is_object.end(), true));
    if (is_object.size() != num_metrics || objects != o.metrics.size())
      fail(Code::kInvalidArgument, "compile: the metric order has ", is_object.size(), " entries, ", objects,
           " of them objects; expected one per metric: ", o.metric_names.size(), " names and ",
           o.metrics.size(), " objects");
  }
  if (!o.metric_is_weighted.empty() && o.metric_is_weighted.size() != num_metrics)
    fail(Code::kInvalidArgument, "compile: metric_is_weighted has ", o.metric_is_weighted.size(),
         " entries; expected one per metric (", num_metrics, ")");
  std::vector<CompiledMetric> weighted;
  size_t next_name = 0, next_object = 0;
  for (size_t k = 0; k < num_metrics; ++k) {
    CompiledMetric cm;
    cm.weighted = !o.metric_is_weighted.empty() && o.metric_is_weighted[k];
    if (is_object[k]) {
      cm.object = o.metrics[next_object++];
      KILN_REQUIRE(cm.object != nullptr, "compile: a metric in the list is null");
    } else {
      cm.name = o.metric_names[next_name++];
      if (cm.name.empty()) fail(Code::kInvalidArgument, "compile: a metric name is empty");
      if (!is_accuracy_or_ce(cm.name)) {
        try {
          (void)create_metric(cm.name);
          // A custom loss's name (Keras's custom_objects) is made now, while it is registered: a
          // model loads and compiles inside load_model's scope and trains after it.
          const std::vector<std::string> builtin = registered_metrics();
          if (loss_class_for(cm.name).empty() &&
              std::find(builtin.begin(), builtin.end(), cm.name) == builtin.end()) {
            Config none;
            none.set("reduction", "none");
            cm.custom_loss = create_loss(cm.name, none);
          }
        } catch (const Error &e) {
          if (e.code() != Code::kNotFound) throw;
          fail(Code::kNotFound, "compile: unknown metric '", cm.name,
               "'; known: accuracy, acc, crossentropy, ce, ", join_names(registered_metrics()));
        }
      }
    }
    (cm.weighted ? weighted : c->metrics).push_back(std::move(cm));
  }
  c->metrics.insert(c->metrics.end(), weighted.begin(), weighted.end());
  c->run_eagerly = o.run_eagerly;
  c->loss_tracker = make_loss_tracker();
  OptimizerPtr opt = o.optimizer;
  if (!opt) opt = make_optimizer(o.optimizer_name.empty() ? "rmsprop" : o.optimizer_name, Config());
  c->compiled = true;
  // Not while another thread fits or evaluates (their compiled state and optimizer would change
  // under them); state->compiled is swapped atomically for the calls that may run beside it
  // (compute_loss, compute_metrics, metrics_names).
  const ModelBusy busy(*model, "compile");
  auto state = training_state(*model);
  if (auto old = std::atomic_load(&state->compiled)) {
    c->train_step = old->train_step;
    c->test_step = old->test_step;
  }
  state->optimizer = std::move(opt);
  std::atomic_store(&state->compiled, std::shared_ptr<CompiledModel>(std::move(c)));
}

bool is_compiled(const layers::Layer &model) {
  auto state = std::static_pointer_cast<TrainingState>(model.attachment());
  if (!state) return false;
  const auto c = std::atomic_load(&state->compiled);
  return c && c->compiled;
}

std::shared_ptr<CompiledModel> compiled_model(layers::Layer &model, const char *what) {
  auto state = training_state(model);
  auto c = std::atomic_load(&state->compiled);
  if (!c || !c->compiled)
    fail(Code::kFailedPrecondition, what, ": the model '", model.name(),
         "' is not compiled; call compile() first (give an optimizer and a loss)");
  return c;
}

Tensor compute_loss(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                    const std::vector<Tensor> &y_pred, const Tensor &sample_weight) {
  auto c = compiled_model(*model, "compute_loss");
  const size_t n = y_pred.size();
  if (!c->losses.empty()) {
    if (y.empty()) check_without_y(*c, "compute_loss");
    if (c->losses.size() > 1 && c->losses.size() != n)
      fail(Code::kInvalidArgument, "compute_loss: compile gave ", c->losses.size(),
           " losses but the model has ", n, " outputs; expected one loss, or one per output");
    if (y.size() != n)
      fail(Code::kInvalidArgument, "compute_loss: ", y.size(), " y tensor(s) for ", n,
           " model output(s); expected one per output");
    if (c->loss_weights.size() > 1 && c->loss_weights.size() != n)
      fail(Code::kInvalidArgument, "compute_loss: ", c->loss_weights.size(), " loss_weights for ", n,
           " outputs; expected one per output");
  }
  Tensor total;
  std::vector<Tensor> output_losses;
  auto add = [&total](const Tensor &t) { total = total.defined() ? ops::add(total, t) : t; };
  for (size_t i = 0; i < n && !c->losses.empty(); ++i) {
    KILN_REQUIRE(y[i].defined() && y_pred[i].defined(), "compute_loss: output ", i, " has no y or y_pred");
    const Loss &loss = *c->losses[c->losses.size() == 1 ? 0 : i];
    Tensor v = (loss)(y[i], as_float32(y_pred[i]), sample_weight);
    if (v.rank() > 0) v = ops::sum(v);  // reduction "none": Keras sums the per-sample losses
    if (n > 1) output_losses.push_back(v);  // Keras records each output's loss before its weight
    if (!c->loss_weights.empty()) {
      const double w = c->loss_weights[c->loss_weights.size() == 1 ? 0 : i];
      if (w != 1.0) v = ops::mul(v, Tensor::scalar(static_cast<float>(w)));
    }
    add(v);
  }
  for (const Tensor &l : model->losses()) {
    Tensor v = as_float32(l);
    add(v.rank() > 0 ? ops::sum(v) : v);
  }
  if (!total.defined())
    fail(Code::kFailedPrecondition, "compute_loss: no loss to compute; give a loss to compile() (the model '",
         model->name(), "' has no losses of its own either)");
  int64_t batch = 0;
  if (!x.empty() && x[0].defined() && x[0].rank() > 0)
    batch = x[0].shape()[0];
  else if (!y_pred.empty() && y_pred[0].defined() && y_pred[0].rank() > 0)
    batch = y_pred[0].shape()[0];
  std::lock_guard<std::mutex> lock(c->state_mu);
  if (!output_losses.empty() && c->output_loss_trackers.size() != n) {
    c->output_loss_trackers.clear();
    for (size_t k = 0; k < n; ++k) {
      Config mc;
      mc.set("name", "output_" + std::to_string(k + 1) + "_loss");
      c->output_loss_trackers.push_back(create_metric("Mean", mc));
    }
  }
  c->last_output_losses = std::move(output_losses);
  c->last_loss = total;
  c->last_batch_size = batch;
  c->loss_pending = true;
  return total;
}

std::vector<LoggedMetric> logged_metrics(const CompiledModel &c) {
  std::lock_guard<std::mutex> lock(c.state_mu);
  std::vector<LoggedMetric> out{{c.loss_tracker->name(), c.loss_tracker}};
  for (const bool weighted : {false, true})
    for (size_t i = 0; i < c.output_metrics.size(); ++i)
      for (size_t k = 0; k < c.output_metrics[i].size() && k < c.metrics.size(); ++k)
        if (c.metrics[k].weighted == weighted)
          out.push_back({c.output_metric_names[i][k], c.output_metrics[i][k]});
  for (const MetricPtr &m : c.output_loss_trackers) out.push_back({m->name(), m});
  return out;
}

Logs metrics_result(layers::Layer &model) {
  auto c = compiled_model(model, "metrics");
  Logs logs;
  for (const LoggedMetric &m : logged_metrics(*c)) {
    const Tensor r = m.metric->result();
    // Keras would log the array; kiln's logs hold one number per name.
    if (r.num_elements() != 1)
      fail(Code::kInvalidArgument, "metric '", m.name, "' (", m.metric->class_name(), ") gives ",
           r.description(),
           ", one value per class; the logs of fit and evaluate hold one number per metric: give it an "
           "average ('micro', 'macro' or 'weighted'), or update it yourself outside fit");
    logs.set(m.name, r.item_as_double());
  }
  return logs;
}

Logs compute_metrics(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                     const std::vector<Tensor> &y_pred, const Tensor &sample_weight) {
  (void)x;
  auto c = compiled_model(*model, "compute_metrics");
  const bool has_metrics = !c->metrics.empty();
  if (has_metrics && y.empty()) check_without_y(*c, "compute_metrics");
  if (has_metrics && y.size() != y_pred.size())
    fail(Code::kInvalidArgument, "compute_metrics: ", y.size(), " y tensor(s) for ", y_pred.size(),
         " model output(s); expected one per output");
  // The pending loss taken (and the metrics built) under the lock, the metrics updated outside it.
  bool pending = false;
  Tensor loss;
  int64_t batch = 0;
  std::vector<Tensor> output_losses;
  std::vector<MetricPtr> output_trackers;
  {
    std::lock_guard<std::mutex> lock(c->state_mu);
    if (c->loss_pending) {
      pending = true;
      c->loss_pending = false;
      loss = c->last_loss;
      batch = c->last_batch_size;
      output_losses = c->last_output_losses;
      output_trackers = c->output_loss_trackers;
    }
    if (has_metrics && !c->metrics_built) build_metrics(*c, y, y_pred);
  }
  if (pending) {
    const float b = static_cast<float>(std::max<int64_t>(batch, 1));
    c->loss_tracker->update_state_values(loss, Tensor::scalar(b));
    for (size_t i = 0; i < output_losses.size() && i < output_trackers.size(); ++i)
      output_trackers[i]->update_state_values(output_losses[i], Tensor::scalar(b));
  }
  if (has_metrics) {
    if (c->output_metrics.size() != y_pred.size())
      fail(Code::kInvalidArgument, "compute_metrics: the metrics were built for ", c->output_metrics.size(),
           " output(s) but the model gave ", y_pred.size());
    // As Keras's: sample_weight (with class_weight folded in by fit) reaches the loss and the
    // weighted_metrics, not the compiled `metrics`.
    for (size_t i = 0; i < y_pred.size(); ++i) {
      const Tensor p = as_float32(y_pred[i]);
      for (size_t k = 0; k < c->output_metrics[i].size(); ++k)
        c->output_metrics[i][k]->update_state(y[i], p, c->metrics[k].weighted ? sample_weight : Tensor());
    }
  }
  return metrics_result(*model);
}

void reset_metrics(layers::Layer &model) {
  auto c = compiled_model(model, "reset_metrics");
  {
    std::lock_guard<std::mutex> lock(c->state_mu);
    c->loss_pending = false;
  }
  for (const LoggedMetric &m : logged_metrics(*c)) m.metric->reset_state();
  for (const CompiledMetric &m : c->metrics)
    if (m.object) m.object->reset_state();
}

std::vector<std::string> metrics_names(layers::Layer &model) {
  auto c = compiled_model(model, "metrics_names");
  std::vector<std::string> names;
  for (const LoggedMetric &m : logged_metrics(*c)) names.push_back(m.name);
  return names;
}

Logs default_train_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs,
                        int64_t num_y) {
  auto state = training_state(*model);
  compiled_model(*model, "train_step");
  const std::vector<Tensor> x = slice_vector(data, 0, num_inputs);
  KILN_REQUIRE(!x.empty(), "train_step: the batch has no inputs");
  std::vector<Tensor> y, y_pred;
  Tensor sw, loss;
  std::vector<VariablePtr> vars;
  std::vector<Tensor> grads;
  const GradientAllreducePtr allreduce = state->optimizer ? state->optimizer->gradient_allreduce() : nullptr;
  {
    autodiff::Tape tape(false, true);
    layers::CallContext ctx;
    ctx.training = true;
    y_pred = (*model)(x, ctx);
    split_targets(slice_vector(data, num_inputs, data.size()), y_pred.size(), num_y, &y, &sw, "train_step");
    loss = compute_loss(model, x, y, y_pred, sw);
    // Keras's train_step differentiates optimizer.scale_loss(loss) (loss * loss_scale_factor);
    // the loss it logs is the unscaled one.
    const Tensor scaled = state->optimizer ? state->optimizer->scale_loss(loss) : loss;
    tape.stop_recording();
    vars = model->trainable_variables();
    if (!vars.empty()) {
      autodiff::GradientSources sources;
      sources.reserve(vars.size());
      for (const VariablePtr &v : vars) sources.emplace_back(*v);
      // A distributed optimizer sums the gradients over the processes during the backward pass.
      if (allreduce)
        grads = allreduce->gradient(tape, {scaled}, sources, autodiff::Unconnected::kNone);
      else
        grads = tape.gradient(scaled, sources, autodiff::Unconnected::kNone);
    }
  }
  if (vars.empty()) return compute_metrics(model, x, y, y_pred, sw);
  if (allreduce)
    state->optimizer->apply_reduced_gradients(grads, vars);
  else
    state->optimizer->apply_gradients(grads, vars);
  return compute_metrics(model, x, y, y_pred, sw);
}

Logs default_test_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs,
                       int64_t num_y) {
  compiled_model(*model, "test_step");
  const std::vector<Tensor> x = slice_vector(data, 0, num_inputs);
  KILN_REQUIRE(!x.empty(), "test_step: the batch has no inputs");
  const std::vector<Tensor> y_pred = (*model)(x, layers::CallContext{});
  std::vector<Tensor> y;
  Tensor sw;
  split_targets(slice_vector(data, num_inputs, data.size()), y_pred.size(), num_y, &y, &sw, "test_step");
  compute_loss(model, x, y, y_pred, sw);
  return compute_metrics(model, x, y, y_pred, sw);
}

Logs run_train_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs,
                    int64_t num_y) {
  StepFn step = compiled_model(*model, "train_step")->train_step;
  return step ? step(model, data) : default_train_step(model, data, num_inputs, num_y);
}

Logs run_test_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs, int64_t num_y) {
  StepFn step = compiled_model(*model, "test_step")->test_step;
  return step ? step(model, data) : default_test_step(model, data, num_inputs, num_y);
}

void set_step_overrides(layers::Layer &model, StepFn train_step, StepFn test_step) {
  const ModelBusy busy(model, "set_step_callbacks");  // not under another thread's fit
  auto state = training_state(model);
  auto c = std::atomic_load(&state->compiled);
  if (!c) {
    c = std::make_shared<CompiledModel>();
    std::atomic_store(&state->compiled, c);
  }
  c->train_step = std::move(train_step);
  c->test_step = std::move(test_step);
}

Tensor class_weight_to_sample_weight(const Tensor &y, const std::vector<double> &class_weight) {
  KILN_REQUIRE(y.defined() && y.rank() >= 1, "class_weight: y must have a batch dimension; got ",
               y.defined() ? y.description() : std::string("none"));
  Tensor ids = y;
  if (y.rank() > 1) {
    if (y.shape()[y.rank() - 1] != 1)
      ids = ops::argmax(y, -1);
    else
      ids = y.reshaped(Shape(std::vector<int64_t>{y.shape()[0]}));
  }
  const int64_t n = ids.num_elements();
  std::vector<float> w(static_cast<size_t>(n), 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    const double v = std::round(ids.item_as_double(i));
    if (v >= 0 && v < static_cast<double>(class_weight.size()))
      w[static_cast<size_t>(i)] = static_cast<float>(class_weight[static_cast<size_t>(v)]);
  }
  return Tensor::from_data(DType::kFloat32, Shape(std::vector<int64_t>{n}), w.data(),
                           w.size() * sizeof(float));
}

Tensor combined_sample_weight(const std::vector<Tensor> &y, const Tensor &sample_weight,
                              const std::vector<double> &class_weight, const char *what) {
  if (class_weight.empty()) return sample_weight;
  for (double w : class_weight)
    KILN_REQUIRE(std::isfinite(w) && w >= 0, what, ": class_weight holds ", w,
                 "; expected finite weights >= 0");
  if (y.empty())
    fail(Code::kInvalidArgument, what, ": class_weight needs y (the class of each sample); no y given");
  if (y.size() != 1)
    fail(Code::kInvalidArgument, what, ": class_weight needs a model with a single output; got ", y.size(),
         " y tensors");
  // Keras 3 refuses the two together (its data adapters and train_on_batch raise).
  if (sample_weight.defined())
    fail(Code::kInvalidArgument, what,
         ": class_weight and sample_weight were both given; expected one or the other (multiply the class "
         "weights into sample_weight to use both)");
  return class_weight_to_sample_weight(y[0], class_weight);
}

void check_arrays(const std::vector<Tensor> &x, const std::vector<Tensor> &y, const Tensor &sample_weight,
                  const char *what) {
  if (x.empty()) fail(Code::kInvalidArgument, what, ": no x given; expected one tensor per model input");
  int64_t n = -1;
  auto check = [&](const Tensor &t, const std::string &name) {
    if (!t.defined()) fail(Code::kInvalidArgument, what, ": ", name, " is empty (no tensor)");
    if (t.rank() < 1)
      fail(Code::kInvalidArgument, what, ": ", name, " is a scalar; expected a batch dimension");
    const int64_t m = t.shape()[0];
    if (n < 0) {
      n = m;
    } else if (m != n) {
      fail(Code::kInvalidArgument, what, ": data cardinality is ambiguous: x[0] has ", n, " samples but ",
           name, " has ", m, "; every array must hold the same number of samples");
    }
  };
  for (size_t i = 0; i < x.size(); ++i) check(x[i], "x[" + std::to_string(i) + "]");
  for (size_t i = 0; i < y.size(); ++i) check(y[i], "y[" + std::to_string(i) + "]");
  if (sample_weight.defined()) check(sample_weight, "sample_weight");
  if (n == 0) fail(Code::kInvalidArgument, what, ": the data is empty (0 samples)");
}

void check_without_y(const CompiledModel &c, const char *what) {
  if (!c.losses.empty()) {
    const Loss &l = *c.losses[0];
    fail(Code::kInvalidArgument, what, ": no y given, but the compiled loss '", l.name(), "' (",
         l.class_name(),
         ") needs one y per model output; give y, or compile without a loss to train on the model's own "
         "add_loss() losses");
  }
  if (!c.metrics.empty()) {
    const CompiledMetric &m = c.metrics[0];
    fail(Code::kInvalidArgument, what, ": no y given, but the compiled metric '",
         m.object ? m.object->name() : m.name,
         "' needs one y per model output; give y, or compile without metrics");
  }
}

void check_num_targets(const CompiledModel &c, size_t num_y, const char *what) {
  if (num_y == 0) {
    if (!c.train_step && !c.test_step) check_without_y(c, what);  // an overridden step may need no y
    return;
  }
  if (c.losses.size() > 1 && num_y != c.losses.size())
    fail(Code::kInvalidArgument, what, ": ", num_y, " y tensor(s) for ", c.losses.size(),
         " compiled losses; expected one y per output");
}

void check_sparse_labels(layers::Layer &model, const CompiledModel &c, const std::vector<Tensor> &x,
                         const std::vector<Tensor> &y, const char *what) {
  bool any = false;
  for (const LossPtr &l : c.losses) any = any || l->class_name() == "SparseCategoricalCrossentropy";
  if (!any) return;
  std::vector<layers::PartialShape> out;
  try {
    std::vector<layers::PartialShape> in;
    // A batch of one: a model may find its output shapes by running on zeros, and the class
    // count does not depend on the batch size (the whole data set would cost gigabytes).
    for (const Tensor &t : x) {
      layers::PartialShape s = t.shape().to_vector();
      if (!s.empty()) s[0] = 1;
      in.push_back(s);
    }
    out = model.compute_output_shape(in);
  } catch (const Error &) {
    return;  // the model cannot tell its output shapes ahead: the loss checks the labels per batch
  }
  if (out.size() != y.size()) return;
  for (size_t i = 0; i < y.size(); ++i) {
    const Loss &loss = *c.losses[c.losses.size() == 1 ? 0 : i];
    if (loss.class_name() != "SparseCategoricalCrossentropy" || out[i].empty() || !is_integer(y[i].dtype()))
      continue;
    const int64_t classes = out[i].back();
    if (classes <= 0) continue;
    const Config config = loss.get_config();
    const bool has_ignore = config.has("ignore_class") && config.type("ignore_class") == Config::Type::kInt;
    const int64_t ignore = has_ignore ? config.get_int("ignore_class") : 0;
    const int64_t n = y[i].num_elements();
    for (int64_t k = 0; k < n; ++k) {
      const auto v = static_cast<int64_t>(y[i].item_as_double(k));
      if ((v < 0 || v >= classes) && !(has_ignore && v == ignore))
        fail(Code::kInvalidArgument, what, ": y[", i, "] holds label ", v, " at index ", k,
             "; expected class ids in [0, ", classes, ") for the model's ", classes,
             " classes (SparseCategoricalCrossentropy)");
    }
  }
}

std::vector<Tensor> batch_data(const std::vector<Tensor> &x, const std::vector<Tensor> &y, const Tensor &sw) {
  std::vector<Tensor> data = x;
  data.insert(data.end(), y.begin(), y.end());
  if (sw.defined()) data.push_back(sw);
  return data;
}

Logs train_on_batch(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                    const Tensor &sample_weight, const std::vector<double> &class_weight) {
  KILN_REQUIRE(model != nullptr, "train_on_batch: model is null");
  auto c = compiled_model(*model, "train_on_batch");
  const ModelBusy busy(*model, "train_on_batch");
  check_arrays(x, y, sample_weight, "train_on_batch");
  check_num_targets(*c, y.size(), "train_on_batch");
  const Tensor sw = combined_sample_weight(y, sample_weight, class_weight, "train_on_batch");
  reset_metrics(*model);
  return run_train_step(model, batch_data(x, y, sw), x.size(), static_cast<int64_t>(y.size()));
}

Logs test_on_batch(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                   const Tensor &sample_weight) {
  KILN_REQUIRE(model != nullptr, "test_on_batch: model is null");
  auto c = compiled_model(*model, "test_on_batch");
  const ModelBusy busy(*model, "test_on_batch");
  check_arrays(x, y, sample_weight, "test_on_batch");
  check_num_targets(*c, y.size(), "test_on_batch");
  reset_metrics(*model);
  return run_test_step(model, batch_data(x, y, sample_weight), x.size(), static_cast<int64_t>(y.size()));
}

std::vector<Tensor> predict_on_batch(const LayerPtr &model, const std::vector<Tensor> &x) {
  KILN_REQUIRE(model != nullptr, "predict_on_batch: model is null");
  check_arrays(x, {}, Tensor(), "predict_on_batch");
  return (*model)(x, layers::CallContext{});
}

}  // namespace kiln::train
