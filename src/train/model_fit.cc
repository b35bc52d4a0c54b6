// fit, evaluate and predict: the batch sources (tensors sliced into batches, shuffled each pass
// with kiln's seeded Philox stream; or a dataset of batches), Keras's EpochIterator semantics for
// steps_per_epoch, and the loops with their callback hooks (Keras 3 backend trainers' fit /
// evaluate / predict).
#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "train/model_training.h"
#include "train/model_training_internal.h"

namespace kiln::train {

namespace {

int64_t batch_size_or_default(int64_t b, const char *what, const char *name) {
  if (b == -1) return 32;
  if (b <= 0)
    fail(Code::kInvalidArgument, what, ": ", name, " is ", b,
         "; expected a positive number (or -1: Keras's None, 32 or samples / steps)");
  return b;
}

// Keras's batch size for n samples given as arrays: batch_size, or with -1 (None) and steps
// given, ceil(n / steps) (ArrayDataAdapter), else 32.
int64_t array_batch_size(int64_t given, int64_t steps, int64_t n, const char *what, const char *name) {
  if (given == -1 && steps > 0 && n > 0) return (n + steps - 1) / steps;
  return batch_size_or_default(given, what, name);
}

void check_verbose(int verbose, const char *what) {
  if (verbose < -1 || verbose > 2)
    fail(Code::kInvalidArgument, what, ": verbose is ", verbose, "; expected -1 (auto), 0, 1 or 2");
}

void check_steps(int64_t steps, const char *what, const char *name) {
  if (steps != -1 && steps <= 0)
    fail(Code::kInvalidArgument, what, ": ", name, " is ", steps,
         "; expected a positive number (or -1: all)");
}

// A batch's layout: num_inputs() x components, then the y components (num_y() of them, or -1: one
// per model output), then optionally a sample weight.
class BatchSource {
 public:
  BatchSource(size_t num_inputs, int64_t num_y) : num_inputs_(num_inputs), num_y_(num_y) {}
  virtual ~BatchSource() = default;
  size_t num_inputs() const { return num_inputs_; }
  int64_t num_y() const { return num_y_; }
  // The batches of one pass; -1 when unknown.
  virtual int64_t num_batches() const = 0;
  // Starts a new pass over the data (shuffled again when shuffling).
  virtual void begin_pass() = 0;
  virtual bool next(std::vector<Tensor> *batch) = 0;

 private:
  size_t num_inputs_;
  int64_t num_y_;
};

// Rows [begin, end) of every tensor.
std::vector<Tensor> rows(const std::vector<Tensor> &v, int64_t begin, int64_t end) {
  std::vector<Tensor> out;
  for (const Tensor &t : v) {
    std::vector<int64_t> b(static_cast<size_t>(t.rank()), 0), s(static_cast<size_t>(t.rank()), -1);
    b[0] = begin;
    s[0] = end - begin;
    out.push_back(ops::slice(t, b, s));
  }
  return out;
}

// Tensors with one number of samples, cut into batches along axis 0 (the last one partial).
class ArraySource final : public BatchSource {
 public:
  // comm (distributed fit): every rank takes rank 0's shuffle, so the ranks cut the same batches.
  ArraySource(std::vector<Tensor> arrays, size_t num_inputs, size_t num_y, int64_t batch_size, bool shuffle,
              Communicator *comm = nullptr)
      : BatchSource(num_inputs, static_cast<int64_t>(num_y)),
        arrays_(std::move(arrays)),
        n_(arrays_.at(0).shape()[0]),
        batch_size_(batch_size),
        shuffle_(shuffle),
        comm_(comm) {}
  int64_t num_batches() const override { return (n_ + batch_size_ - 1) / batch_size_; }
  void begin_pass() override {
    pos_ = 0;
    if (!shuffle_) return;
    // Fisher-Yates over a Philox stream each pass draws from the global sequence when it starts
    // (not when fit starts): the shuffles are then part of the global random state a checkpoint
    // carries, so a fit resumed from a backup shuffles its next epoch as the uninterrupted one did.
    perm_.resize(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) perm_[static_cast<size_t>(i)] = i;
    const Philox rng(global_seed(), resolve_op_seed(-1));
    for (int64_t i = n_ - 1; i > 0; --i) {
      const uint64_t r = rng.block(static_cast<uint64_t>(i))[0];
      std::swap(perm_[static_cast<size_t>(i)], perm_[static_cast<size_t>(r % static_cast<uint64_t>(i + 1))]);
    }
    if (comm_) comm_->broadcast(perm_.data(), perm_.size() * sizeof(int64_t), 0);
  }
  bool next(std::vector<Tensor> *batch) override {
    if (pos_ >= n_) return false;
    const int64_t len = std::min(batch_size_, n_ - pos_);
    if (shuffle_) {
      const Tensor idx = Tensor::from_data(DType::kInt64, Shape(std::vector<int64_t>{len}), perm_.data() + pos_,
                                           static_cast<size_t>(len) * sizeof(int64_t));
      batch->clear();
      for (const Tensor &a : arrays_) batch->push_back(ops::gather(a, idx, 0));
    } else {
      *batch = rows(arrays_, pos_, pos_ + len);
    }
    pos_ += len;
    return true;
  }

 private:
  std::vector<Tensor> arrays_;
  int64_t n_;
  int64_t batch_size_;
  bool shuffle_;
  Communicator *comm_;
  std::vector<int64_t> perm_;
  int64_t pos_ = 0;
};

// A distributed fit's share of each global batch: rank r of n takes rows [len*r/n, len*(r+1)/n),
// so the ranks together take the batches one process would. A batch with fewer rows than ranks
// (a short last one) is skipped by every rank alike.
class ShardSource final : public BatchSource {
 public:
  ShardSource(std::unique_ptr<BatchSource> inner, int rank, int size)
      : BatchSource(inner->num_inputs(), inner->num_y()),
        inner_(std::move(inner)),
        rank_(rank),
        size_(size) {}
  int64_t num_batches() const override { return inner_->num_batches(); }
  void begin_pass() override { inner_->begin_pass(); }
  bool next(std::vector<Tensor> *batch) override {
    std::vector<Tensor> global;
    for (;;) {
      if (!inner_->next(&global)) return false;
      if (global.empty() || !global[0].defined() || global[0].rank() == 0)
        fail(Code::kInvalidArgument,
             "fit: a distributed fit splits each batch by rows; a batch component is ",
             global.empty() || !global[0].defined() ? std::string("missing") : global[0].description(),
             "; expected tensors with a batch dimension");
      const int64_t len = global[0].shape()[0];
      if (len >= size_) {
        const int64_t b = len * rank_ / size_, e = len * (rank_ + 1) / size_;
        *batch = rows(global, b, e);
        local_rows_ = e - b;
        global_rows_ = len;
        return true;
      }
      if (!warned_ && rank_ == 0)
        std::cerr << "WARNING: a batch of " << len << " sample(s) is smaller than the " << size_
                  << " processes of the distributed fit; it is skipped\n";
      warned_ = true;
    }
  }
  // The share of the last batch: this rank's rows over the global batch's.
  double share() const {
    return global_rows_ > 0 ? static_cast<double>(local_rows_) / static_cast<double>(global_rows_) : 0.0;
  }

 private:
  std::unique_ptr<BatchSource> inner_;
  int rank_, size_;
  int64_t local_rows_ = 0, global_rows_ = 0;
  bool warned_ = false;
};

// A dataset whose elements are batches. With class_weight, each batch's weights are multiplied in
// (the model has one output: the element is x comps, y, then optionally a sample weight).
class DatasetSource final : public BatchSource {
 public:
  DatasetSource(data::DatasetPtr ds, size_t num_inputs, std::vector<double> class_weight, const char *what)
      : BatchSource(num_inputs, -1),
        ds_(std::move(ds)),
        class_weight_(std::move(class_weight)),
        what_(what) {}
  int64_t num_batches() const override {
    const int64_t c = ds_->cardinality();
    return c >= 0 ? c : -1;
  }
  void begin_pass() override { it_ = ds_->make_iterator(); }
  bool next(std::vector<Tensor> *batch) override {
    if (!it_) begin_pass();
    if (!it_->next(batch)) return false;
    // Elements of x alone are fine: predict drops y and the sample weight (as Keras), and a model
    // trained on its add_loss losses needs no y (compute_loss names a compiled loss that does).
    if (batch->size() < num_inputs())
      fail(Code::kInvalidArgument, what_, ": a dataset element has ", batch->size(),
           " component(s) for num_inputs ", num_inputs(),
           "; expected the x components, then y, then optionally a sample weight");
    if (!class_weight_.empty()) {
      std::vector<Tensor> rest = slice_vector(*batch, num_inputs(), batch->size());
      if (rest.empty())
        fail(Code::kInvalidArgument, what_,
             ": class_weight needs y (the class of each sample); the dataset element holds only the ",
             num_inputs(), " x component(s)");
      if (rest.size() > 2)
        fail(Code::kInvalidArgument, what_,
             ": class_weight needs a model with a single output; the dataset element has ", rest.size(),
             " target components");
      const Tensor sw =
          combined_sample_weight({rest[0]}, rest.size() == 2 ? rest[1] : Tensor(), class_weight_, what_);
      batch->resize(num_inputs() + 1);
      batch->push_back(sw);
    }
    return true;
  }

 private:
  data::DatasetPtr ds_;
  std::vector<double> class_weight_;
  const char *what_;
  data::IteratorPtr it_;
};

// An infinite dataset needs a step count (what: the call; which: "" or "validation "; key: the
// option that gives the count); INVALID_ARGUMENT naming them otherwise (an endless loop else).
void require_steps(const data::Dataset &ds, int64_t steps, const std::string &what, const char *which,
                   const char *key) {
  if (ds.cardinality() == data::kInfinite && steps <= 0)
    fail(Code::kInvalidArgument, what, ": the ", which, "dataset is infinite; give ", key);
}

std::unique_ptr<BatchSource> dataset_source(const data::DatasetPtr &ds, size_t num_inputs,
                                            std::vector<double> class_weight, const char *what) {
  if (num_inputs == 0)
    fail(Code::kInvalidArgument, what, ": num_inputs is 0; expected at least one x component");
  return std::make_unique<DatasetSource>(ds, num_inputs, std::move(class_weight), what);
}

// Keras 3's EpochIterator: an epoch is one pass over the data, or steps_per_epoch batches. These go on
// where the last epoch stopped, and a pass serves epochs until the data ends: the epoch reaching the end
// stops short (with Keras's warning) and the next one starts a new pass. The end is num_batches, or
// one more than the batches a pass of unknown size gave when it ran out (Keras's count).
class EpochIterator {
 public:
  EpochIterator(BatchSource &src, int64_t steps_per_epoch)
      : src_(src), steps_(steps_per_epoch), batches_(src.num_batches()) {}
  int64_t steps() const { return steps_ > 0 ? steps_ : src_.num_batches(); }
  // Runs body(step, batch) on each batch of the next epoch until stop() after a batch. Returns the
  // number of steps run (0 for an epoch of steps_per_epoch that found its pass at its end).
  template <typename Body, typename Stop>
  int64_t run_epoch(Body &&body, Stop &&stop, const char *what) {
    std::vector<Tensor> batch;
    int64_t step = 0;
    if (steps_ <= 0) {
      src_.begin_pass();
      while (src_.next(&batch)) {
        body(step++, batch);
        if (stop()) break;
      }
      if (step == 0) fail(Code::kInvalidArgument, what, ": the data is empty (no batches)");
      return step;
    }
    if (!in_pass_) {
      src_.begin_pass();
      in_pass_ = true;
      seen_ = 0;
    }
    while (step < steps_) {
      if (batches_ > 0 && seen_ >= batches_) {
        ran_out_warning();
        break;
      }
      if (!src_.next(&batch)) {
        if (!seen_any_) fail(Code::kInvalidArgument, what, ": the data is empty (no batches)");
        // Keras counts the step that found the end too (its _steps_seen grows before the batch is
        // read), so a pass of unknown size that ends exactly at an epoch's end makes the next epoch
        // empty every time it does, as in Keras.
        batches_ = seen_ + 1;
        in_pass_ = false;
        ran_out_warning();
        break;
      }
      ++seen_;
      seen_any_ = true;
      body(step++, batch);
      if (stop()) break;
    }
    if (batches_ > 0 && seen_ >= batches_) in_pass_ = false;
    return step;
  }

 private:
  static void ran_out_warning() {
    std::cerr << "WARNING: Your input ran out of data; interrupting training. Make sure that your dataset "
                 "or generator can generate at least `steps_per_epoch * epochs` batches. You may need to "
                 "use the `.repeat()` function when building your dataset.\n";
  }

  BatchSource &src_;
  int64_t steps_;
  int64_t
      batches_;  // batches in a pass: num_batches, or learned (plus one) when a pass ran out; <= 0 unknown
  bool in_pass_ = false;
  int64_t seen_ = 0;  // batches taken from the current pass
  bool seen_any_ = false;
};

// Whether a step's logs are the compiled metrics' (empty logs count as theirs), not a custom
// step's own. tf.keras 2 counts the compiled loss among the model's metrics only once something computed it
// (compiled_loss builds at its first call): a custom step that logs its own "loss" without
// compute_loss reports that value, not the unused loss tracker's 0 (which Keras 3 would log).
bool logs_of_metrics(layers::Layer &model, const Logs &logs) {
  if (logs.empty()) return true;
  const std::vector<std::string> names = metrics_names(model);
  if (logs.items().size() != names.size()) return false;
  for (const std::string &n : names)
    if (!logs.contains(n)) return false;
  const std::vector<VariablePtr> tracker = compiled_model(model, "fit")->loss_tracker->variables();
  return !(tracker.size() == 2 && tracker[1]->peek().item_as_double() == 0.0);
}

// Keras's _get_metrics_result_or_logs: the metrics' results when the step's logs name the same
// metrics, else the step's own logs (a custom train_step's).
Logs metrics_or_logs(layers::Layer &model, const Logs &logs) {
  return logs_of_metrics(model, logs) ? metrics_result(model) : logs;
}

// A distributed fit's logs, the same on every rank: with the compiled metrics (Keras's metrics
// are sums over the replicas, tf.distribute's SUM-aggregated metric variables), each metric's
// state summed over the ranks gives the result, and the rank's own state is put back; a custom
// step's own logs are averaged over the ranks.
Logs distributed_logs(layers::Layer &model, const Logs &logs, Communicator &comm) {
  if (!logs_of_metrics(model, logs)) {
    std::vector<double> values;
    for (const auto &kv : logs.items()) values.push_back(kv.second);
    allreduce_sum_doubles(comm, &values);
    Logs out;
    size_t i = 0;
    for (const auto &kv : logs.items()) out.set(kv.first, values[i++] / comm.size());
    return out;
  }
  auto c = compiled_model(model, "fit");
  std::vector<VariablePtr> state;
  for (const LoggedMetric &m : logged_metrics(*c))
    for (const VariablePtr &v : m.metric->variables()) state.push_back(v);
  std::vector<Tensor> saved;
  for (const VariablePtr &v : state) saved.push_back(v->value());
  const std::vector<Tensor> summed = allreduce_sum_tensors(comm, saved);
  Logs out;
  try {
    for (size_t i = 0; i < state.size(); ++i) state[i]->assign(summed[i]);
    out = metrics_result(model);
  } catch (...) {
    for (size_t i = 0; i < state.size(); ++i) state[i]->assign(saved[i]);
    throw;
  }
  for (size_t i = 0; i < state.size(); ++i) state[i]->assign(saved[i]);
  return out;
}

// Whether any rank asks to stop (a callback on one rank must not leave the others waiting).
bool any_rank(Communicator &comm, bool flag) {
  std::vector<double> v{flag ? 1.0 : 0.0};
  allreduce_sum_doubles(comm, &v);
  return v[0] > 0;
}

Logs evaluate_loop(const LayerPtr &model, BatchSource &src, int64_t steps, CallbackList &cbs,
                   Communicator *comm = nullptr) {
  reset_metrics(*model);
  Logs begin;
  cbs.on_test_begin(begin);
  src.begin_pass();
  std::vector<Tensor> batch;
  Logs logs;
  int64_t step = 0;
  while ((steps < 0 || step < steps) && src.next(&batch)) {
    Logs b;
    cbs.on_test_batch_begin(step, b);
    logs = run_test_step(model, batch, src.num_inputs(), src.num_y());
    cbs.on_test_batch_end(step, logs);
    ++step;
  }
  if (step == 0) fail(Code::kInvalidArgument, "evaluate: the data is empty (no batches)");
  logs = comm ? distributed_logs(*model, logs, *comm) : metrics_or_logs(*model, logs);
  cbs.on_test_end(logs);
  return logs;
}

bool should_eval(int64_t epoch, const std::vector<int64_t> &freq) {
  const int64_t e = epoch + 1;  // Keras counts validation epochs from 1
  if (freq.empty()) return true;
  if (freq.size() == 1) return e % freq[0] == 0;
  return std::find(freq.begin(), freq.end(), e) != freq.end();
}

struct FitData {
  std::unique_ptr<BatchSource> train, val;
};

FitData fit_data(layers::Layer &model, const CompiledModel &c, const FitOptions &o, Communicator *comm) {
  FitData d;
  const double split = o.validation_split;
  if (!(split >= 0.0 && split < 1.0))
    fail(Code::kInvalidArgument, "fit: validation_split is ", split, "; expected a number in [0, 1)");
  const bool has_val_arrays =
      !o.validation_x.empty() || !o.validation_y.empty() || o.validation_sample_weight.defined();
  if (has_val_arrays && o.validation_dataset)
    fail(Code::kInvalidArgument, "fit: give validation data either as tensors or as a dataset, not both");
  // Keras: validation_batch_size or batch_size, both None: 32, or the validation arrays over
  // validation_steps.
  auto val_batch = [&](int64_t n_val) {
    if (o.validation_batch_size != -1)
      return batch_size_or_default(o.validation_batch_size, "fit", "validation_batch_size");
    return array_batch_size(o.batch_size, o.validation_steps, n_val, "fit", "batch_size");
  };
  if (o.dataset) {
    if (!o.x.empty() || !o.y.empty() || o.sample_weight.defined())
      fail(Code::kInvalidArgument, "fit: give the data either as x/y tensors or as a dataset, not both");
    if (split != 0.0)
      fail(Code::kInvalidArgument,
           "fit: validation_split is only supported for tensors, not a dataset; give "
           "validation data instead");
    require_steps(*o.dataset, o.steps_per_epoch, "fit", "", "steps_per_epoch");
    d.train = dataset_source(o.dataset, o.num_inputs, o.class_weight, "fit");
  } else {
    check_arrays(o.x, o.y, o.sample_weight, "fit");
    check_num_targets(c, o.y.size(), "fit");
    check_sparse_labels(model, c, o.x, o.y, "fit");
    const int64_t n = o.x[0].shape()[0];
    std::vector<Tensor> x = o.x, y = o.y, sw;
    if (o.sample_weight.defined()) sw.push_back(o.sample_weight);
    if (split > 0.0 && !has_val_arrays && !o.validation_dataset) {
      // Keras's train_validation_split: the last fraction, before any shuffling.
      const auto at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - split)));
      if (at <= 0 || at >= n)
        fail(Code::kInvalidArgument, "fit: the training data holds ", n,
             " samples, which is not enough to split into a training and a validation set with "
             "validation_split=",
             split);
      std::vector<Tensor> vsw = rows(sw, at, n);
      d.val = std::make_unique<ArraySource>(
          batch_data(rows(x, at, n), rows(y, at, n), vsw.empty() ? Tensor() : vsw[0]), x.size(), y.size(),
          val_batch(n - at), false);
      x = rows(x, 0, at);
      y = rows(y, 0, at);
      sw = rows(sw, 0, at);
    }
    const Tensor w = combined_sample_weight(y, sw.empty() ? Tensor() : sw[0], o.class_weight, "fit");
    // Keras divides the training part (after the split) over steps_per_epoch when batch_size is None.
    const int64_t train_batch =
        array_batch_size(o.batch_size, o.steps_per_epoch, x[0].shape()[0], "fit", "batch_size");
    d.train =
        std::make_unique<ArraySource>(batch_data(x, y, w), x.size(), y.size(), train_batch, o.shuffle, comm);
  }
  if (o.validation_dataset) {
    require_steps(*o.validation_dataset, o.validation_steps, "fit", "validation ", "validation_steps");
    d.val = dataset_source(o.validation_dataset, o.num_inputs, {}, "fit");
  } else if (has_val_arrays) {
    check_arrays(o.validation_x, o.validation_y, o.validation_sample_weight, "fit (validation data)");
    check_num_targets(c, o.validation_y.size(), "fit (validation data)");
    check_sparse_labels(model, c, o.validation_x, o.validation_y, "fit (validation data)");
    d.val = std::make_unique<ArraySource>(
        batch_data(o.validation_x, o.validation_y, o.validation_sample_weight), o.validation_x.size(),
        o.validation_y.size(), val_batch(o.validation_x[0].shape()[0]), false);
  }
  if (comm) {
    d.train = std::make_unique<ShardSource>(std::move(d.train), comm->rank(), comm->size());
    if (d.val) d.val = std::make_unique<ShardSource>(std::move(d.val), comm->rank(), comm->size());
  }
  return d;
}

// The callbacks that write files (checkpoints, TensorBoard logs, CSV): only rank 0 of a
// distributed fit runs them, as Horovod's and tf.distribute's chief.
bool writes_files(const Callback &cb) {
  const std::string &n = cb.class_name();
  return n == "ModelCheckpoint" || n == "TensorBoard" || n == "CSVLogger";
}

// For the length of a distributed fit, the compiled optimizer sums each step's gradients over the
// ranks, each rank's weighted by its share of the global batch (so the step is the one a single
// process takes on the whole batch); the optimizer's own allreduce (a DistributedOptimizer's)
// comes back afterwards.
class FitAllreduce {
 public:
  FitAllreduce(OptimizerPtr optimizer, const CommunicatorPtr &comm) : optimizer_(std::move(optimizer)) {
    saved_ = optimizer_->gradient_allreduce();
    mine_ = std::make_shared<GradientAllreduce>(
        comm, true, saved_ ? saved_->fusion_threshold_bytes() : kDefaultFusionThresholdBytes,
        saved_ ? saved_->overlap() : true);
    optimizer_->set_gradient_allreduce(mine_);
  }
  ~FitAllreduce() { optimizer_->set_gradient_allreduce(saved_); }
  FitAllreduce(const FitAllreduce &) = delete;
  FitAllreduce &operator=(const FitAllreduce &) = delete;
  void set_share(double share) { mine_->set_scale(share); }

 private:
  OptimizerPtr optimizer_;
  GradientAllreducePtr saved_, mine_;
};

// Rank 0's weights (and the optimizer's state once it has any) on every rank before the first
// step; an unbuilt model is built first by a call on the rank's first batch (training false).
void sync_initial_state(const LayerPtr &model, const std::vector<Tensor> &batch, size_t num_inputs,
                        Communicator &comm) {
  if (!model->built()) {
    layers::CallContext ctx;
    ctx.training = false;
    (void)(*model)(slice_vector(batch, 0, num_inputs), ctx);
  }
  std::vector<VariablePtr> vars = model->variables();
  const OptimizerPtr &opt = training_state(*model)->optimizer;
  if (opt)
    for (const VariablePtr &v : opt->variables()) vars.push_back(v);
  broadcast_variables(comm, vars, 0);
}

// The data of evaluate / predict (options o: EvaluateOptions or PredictOptions), in order.
template <typename Options>
std::unique_ptr<BatchSource> loop_source(const Options &o, const std::vector<Tensor> &y, const Tensor &sw,
                                         const char *what) {
  batch_size_or_default(o.batch_size, what, "batch_size");
  check_verbose(o.verbose, what);
  check_steps(o.steps, what, "steps");
  if (o.dataset) {
    if (!o.x.empty() || !y.empty() || sw.defined())
      fail(Code::kInvalidArgument, what, ": give the data either as x/y tensors or as a dataset, not both");
    require_steps(*o.dataset, o.steps, what, "", "steps");
    return dataset_source(o.dataset, o.num_inputs, {}, what);
  }
  check_arrays(o.x, y, sw, what);
  const int64_t batch_size = array_batch_size(o.batch_size, o.steps, o.x[0].shape()[0], what, "batch_size");
  return std::make_unique<ArraySource>(batch_data(o.x, y, sw), o.x.size(), y.size(), batch_size, false);
}

// Keras's CallbackList of evaluate / predict: no History, a progress bar unless verbose is 0.
template <typename Options>
CallbackList loop_callbacks(const LayerPtr &model, const Options &o, const BatchSource &src) {
  CallbackParams params;
  params.verbose = o.verbose;
  params.epochs = 1;
  params.steps = o.steps > 0 ? o.steps : src.num_batches();
  return CallbackList(o.callbacks, false, o.verbose != 0, model, params);
}

}  // namespace

std::shared_ptr<History> fit(const LayerPtr &model, const FitOptions &o) {
  KILN_REQUIRE(model != nullptr, "fit: model is null");
  auto c = compiled_model(*model, "fit");
  const ModelBusy busy(*model, "fit");
  batch_size_or_default(o.batch_size, "fit", "batch_size");  // checked up front, for datasets too
  KILN_REQUIRE(o.epochs >= 0, "fit: epochs is ", o.epochs, "; expected >= 0");
  KILN_REQUIRE(o.initial_epoch >= 0, "fit: initial_epoch is ", o.initial_epoch, "; expected >= 0");
  check_verbose(o.verbose, "fit");
  check_steps(o.steps_per_epoch, "fit", "steps_per_epoch");
  check_steps(o.validation_steps, "fit", "validation_steps");
  for (int64_t f : o.validation_freq)
    KILN_REQUIRE(f > 0, "fit: validation_freq holds ", f, "; expected positive epoch numbers (1-based)");
  // A distribution over one process is a plain fit.
  Communicator *comm = o.distribution && o.distribution->size() > 1 ? o.distribution.get() : nullptr;
  const bool chief = !comm || comm->rank() == 0;
  FitData d = fit_data(*model, *c, o, comm);
  EpochIterator epochs(*d.train, o.steps_per_epoch);
  CallbackParams params;
  params.verbose = chief ? o.verbose : 0;
  params.epochs = o.epochs;
  params.steps = epochs.steps();
  params.chief = chief;
  std::vector<CallbackPtr> callbacks;
  for (const CallbackPtr &cb : o.callbacks)
    if (chief || !cb || !writes_files(*cb)) callbacks.push_back(cb);
  CallbackList cbs(std::move(callbacks), true, params.verbose != 0, model, params);
  auto state = training_state(*model);
  std::optional<FitAllreduce> allreduce;
  if (comm) allreduce.emplace(state->optimizer, o.distribution);
  auto *shard = comm ? static_cast<ShardSource *>(d.train.get()) : nullptr;
  bool synced = false;
  state->stop_training = false;
  c->resume_epoch = -1;
  Logs begin;
  cbs.on_train_begin(begin);
  // A callback may move the start (BackupAndRestore continuing after the epoch of its backup).
  const int64_t first_epoch = c->resume_epoch >= 0 ? c->resume_epoch : o.initial_epoch;
  c->resume_epoch = -1;
  auto stop_now = [&] {
    return comm ? any_rank(*comm, state->stop_training.load()) : state->stop_training.load();
  };
  Logs training_logs;
  for (int64_t epoch = first_epoch; epoch < o.epochs; ++epoch) {
    reset_metrics(*model);
    Logs e;
    cbs.on_epoch_begin(epoch, e);
    Logs logs;
    epochs.run_epoch(
        [&](int64_t step, const std::vector<Tensor> &batch) {
          Logs b;
          cbs.on_train_batch_begin(step, b);
          if (comm) {
            if (!synced) sync_initial_state(model, batch, d.train->num_inputs(), *comm);
            synced = true;
            allreduce->set_share(shard->share());
          }
          logs = run_train_step(model, batch, d.train->num_inputs(), d.train->num_y());
          if (comm) logs = distributed_logs(*model, logs, *comm);
          cbs.on_train_batch_end(step, logs);
        },
        [&] {
          if (!stop_now()) return false;
          state->stop_training = true;
          return true;
        },
        "fit");
    // A distributed step's logs are already the ranks' together.
    Logs epoch_logs = comm ? logs : metrics_or_logs(*model, logs);
    if (d.val && should_eval(epoch, o.validation_freq)) {
      const Logs v = evaluate_loop(model, *d.val, o.validation_steps, cbs, comm);
      for (const auto &kv : v.items()) epoch_logs.set("val_" + kv.first, kv.second);
    }
    cbs.on_epoch_end(epoch, epoch_logs);
    training_logs = epoch_logs;
    if (stop_now()) {
      state->stop_training = true;
      break;
    }
  }
  // Keras's fit ends with optimizer.finalize_variable_values (use_ema: the weights take their
  // moving averages) whenever epochs > 0.
  if (state->optimizer && o.epochs > 0)
    state->optimizer->finalize_variable_values(model->trainable_variables());
  cbs.on_train_end(training_logs);
  return cbs.history();
}

Logs evaluate(const LayerPtr &model, const EvaluateOptions &o) {
  KILN_REQUIRE(model != nullptr, "evaluate: model is null");
  auto c = compiled_model(*model, "evaluate");
  const ModelBusy busy(*model, "evaluate");
  auto src = loop_source(o, o.y, o.sample_weight, "evaluate");
  if (!o.dataset) {
    check_num_targets(*c, o.y.size(), "evaluate");
    check_sparse_labels(*model, *c, o.x, o.y, "evaluate");
  }
  CallbackList cbs = loop_callbacks(model, o, *src);
  return evaluate_loop(model, *src, o.steps, cbs);
}

std::vector<Tensor> predict(const LayerPtr &model, const PredictOptions &o) {
  KILN_REQUIRE(model != nullptr, "predict: model is null");
  auto src = loop_source(o, {}, Tensor(), "predict");
  CallbackList cbs = loop_callbacks(model, o, *src);
  Logs begin;
  cbs.on_predict_begin(begin);
  src->begin_pass();
  std::vector<Tensor> batch;
  std::vector<std::vector<Tensor>> outputs;
  int64_t step = 0;
  while ((o.steps < 0 || step < o.steps) && src->next(&batch)) {
    Logs b;
    cbs.on_predict_batch_begin(step, b);
    const std::vector<Tensor> y = (*model)(slice_vector(batch, 0, src->num_inputs()), layers::CallContext{});
    if (outputs.empty()) outputs.resize(y.size());
    if (y.size() != outputs.size())
      fail(Code::kInternal, "predict: the model gave ", y.size(), " outputs after ", outputs.size());
    for (size_t i = 0; i < y.size(); ++i) outputs[i].push_back(y[i]);
    Logs e;
    cbs.on_predict_batch_end(step, e);
    ++step;
  }
  if (step == 0) fail(Code::kInvalidArgument, "predict: the data is empty (no batches)");
  std::vector<Tensor> out;
  for (const auto &parts : outputs) out.push_back(parts.size() == 1 ? parts[0] : ops::concat(parts, 0));
  Logs end;
  cbs.on_predict_end(end);
  return out;
}

}  // namespace kiln::train
