#include "train/saved_model.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <set>
#include <utility>

#include "core/error.h"
#include "io/file_util.h"
#include "layers/sequential.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/model_training.h"
#include "train/serialized.h"
#include "train/training_state.h"

#ifndef KILN_VERSION_FOR_CORE
#define KILN_VERSION_FOR_CORE "unknown"
#endif

namespace kiln::train {

namespace fs = std::filesystem;
using layers::LayerPtr;
using layers::PartialShape;

Config compile_config(layers::Layer &model) {
  const std::shared_ptr<CompiledModel> c = compiled_model(model, "compile_config");
  const std::shared_ptr<TrainingState> state = training_state(model);
  Config::Json j = Config::Json::object();
  j["optimizer"] = state->optimizer->serialize().json();
  Config::Json losses = Config::Json::array();
  for (const LossPtr &l : c->losses) losses.push_back(serialize_loss(*l).json());
  j["loss"] = losses;
  if (c->loss_weights.empty())
    j["loss_weights"] = nullptr;
  else
    j["loss_weights"] = c->loss_weights;
  // Keras's lists mix names ("accuracy") and serialized metric objects; weighted_metrics is null
  // when there are none, as Keras writes it.
  Config::Json metrics = Config::Json::array(), weighted = Config::Json::array();
  for (const CompiledMetric &m : c->metrics)
    (m.weighted ? weighted : metrics)
        .push_back(m.object ? serialize_metric(*m.object).json() : Config::Json(m.name));
  j["metrics"] = metrics;
  j["weighted_metrics"] = weighted.empty() ? Config::Json(nullptr) : weighted;
  j["run_eagerly"] = c->run_eagerly;
  return Config::from_value(std::move(j), "compile_config");
}

void compile_from_config(const LayerPtr &model, const Config &config) {
  const char *what = "compile_config";
  CompileOptions o;
  if (config.has("optimizer") && !config.is_null("optimizer"))
    o.optimizer = deserialize_optimizer(config.get_config("optimizer"));
  if (config.has("loss") && !config.is_null("loss"))
    for (const Config &l : config.get_config_list("loss")) o.losses.push_back(deserialize_loss(l));
  if (config.has("loss_weights") && !config.is_null("loss_weights"))
    o.loss_weights = config.get_float_list("loss_weights");
  for (const char *key : {"metrics", "weighted_metrics"}) {
    if (!config.has(key) || config.is_null(key)) continue;
    const Config::Json &metrics = config.json().at(key);
    if (!metrics.is_array()) fail(Code::kInvalidArgument, what, ": \"", key, "\" must be a list");
    for (const Config::Json &m : metrics) {
      o.metric_is_object.push_back(!m.is_string());
      o.metric_is_weighted.push_back(std::string(key) == "weighted_metrics");
      if (m.is_string())
        o.metric_names.push_back(m.get<std::string>());
      else
        o.metrics.push_back(deserialize_metric(Config::from_value(m, "compile_config metric")));
    }
  }
  if (config.has("run_eagerly")) o.run_eagerly = config.get_bool("run_eagerly");
  compile(model, o);
}

namespace {

// ------------------------------------------------------------------ signatures

std::string shape_text(const std::vector<int64_t> &dims) { return layers::partial_shape_string(dims); }

// The model's outputs for zeros of the inputs' specs: a batch of 1, each other unknown dim 1, or,
// when the model refuses that (a VALID convolution window, a crop: Conv1D over (None, 8)
// sequences), 32 and then 256 (while the zeros stay under 2^24 elements an input).
std::vector<Tensor> call_on_zeros(layers::Layer &model, const std::vector<io::TensorSpecInfo> &inputs) {
  constexpr int64_t kMaxElements = int64_t{1} << 24;
  std::exception_ptr first_error;
  for (int64_t stand_in : {1, 32, 256}) {
    std::vector<std::vector<int64_t>> dims;
    bool unknown = false, too_big = false;
    for (const io::TensorSpecInfo &s : inputs) {
      dims.push_back(s.dims);
      int64_t n = 1;
      for (size_t i = 0; i < dims.back().size(); ++i) {
        int64_t &d = dims.back()[i];
        if (d < 0) {
          unknown |= i > 0;
          d = i == 0 ? 1 : stand_in;
        }
        too_big |= d > 0 && n > kMaxElements / d;
        if (!too_big) n *= d;
      }
    }
    if (stand_in > 1 && (!unknown || too_big)) break;
    std::vector<Tensor> zeros;
    for (size_t i = 0; i < inputs.size(); ++i) zeros.push_back(ops::zeros(Shape(dims[i]), inputs[i].dtype));
    try {
      return model(zeros, layers::CallContext{});
    } catch (const Error &) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  std::rethrow_exception(first_error);
}

// The model's input and output specs as save_model records them: inputs from the options or
// the built shapes; outputs from one inference call on zeros (call_on_zeros), with the output
// shapes compute_output_shape gives for the signature's input shapes.
io::SignatureInfo make_signature(const LayerPtr &model, const SaveModelOptions &o) {
  const std::vector<PartialShape> &built = model->build_input_shapes();
  const bool sequential = model->class_name() == "Sequential" && !model->layers().empty();
  if (!o.inputs.empty() && o.inputs.size() != built.size())
    fail(Code::kInvalidArgument, "save_model: ", o.inputs.size(), " input specs for a model with ",
         built.size(), " input(s); give one per input");
  // A Sequential model's Input gives the inputs' dtype (an Embedding's int32 ids), as Keras's
  // traced signature; other models take float32 unless the options say otherwise.
  DType input_dtype = DType::kFloat32;
  if (const auto *seq = dynamic_cast<const layers::Sequential *>(model.get()); seq && seq->input_layer())
    input_dtype = seq->input_layer()->input_dtype();
  io::SignatureInfo sig;
  for (size_t i = 0; i < built.size(); ++i) {
    io::TensorSpecInfo spec;
    spec.dtype = input_dtype;
    if (!o.inputs.empty()) spec = o.inputs[i];
    if (spec.name.empty())
      spec.name = sequential ? model->layers()[0]->name() + "_input" : "input_" + std::to_string(i + 1);
    if (spec.dims.empty()) {
      spec.dims = built[i];
      if (!spec.dims.empty()) spec.dims[0] = layers::kUnknownDim;  // any batch size
    } else if (spec.dims.size() != built[i].size()) {
      fail(Code::kInvalidArgument, "save_model: input spec '", spec.name, "' has shape ",
           shape_text(spec.dims), " but the model was built with ", shape_text(built[i]), "; expected rank ",
           built[i].size());
    }
    for (int64_t d : spec.dims)
      if (d < layers::kUnknownDim)
        fail(Code::kInvalidArgument, "save_model: input spec '", spec.name, "' has dimension ", d,
             "; expected -1 (unknown) or >= 0");
    sig.inputs.push_back(std::move(spec));
  }
  std::vector<PartialShape> shapes;
  for (const io::TensorSpecInfo &s : sig.inputs) shapes.push_back(s.dims);
  const std::vector<Tensor> outputs = call_on_zeros(*model, sig.inputs);
  std::vector<PartialShape> out_shapes;
  try {
    out_shapes = model->compute_output_shape(shapes);
  } catch (const Error &) {
    out_shapes.clear();
  }
  if (!o.output_names.empty() && o.output_names.size() != outputs.size())
    fail(Code::kInvalidArgument, "save_model: ", o.output_names.size(), " output names for a model with ",
         outputs.size(), " output(s); give one per output");
  for (size_t i = 0; i < outputs.size(); ++i) {
    io::TensorSpecInfo spec;
    spec.name = !o.output_names.empty()             ? o.output_names[i]
                : sequential && outputs.size() == 1 ? model->layers().back()->name()
                                                    : "output_" + std::to_string(i + 1);
    spec.dtype = outputs[i].dtype();
    if (out_shapes.size() == outputs.size() &&
        out_shapes[i].size() == static_cast<size_t>(outputs[i].rank())) {
      spec.dims = out_shapes[i];
    } else {
      spec.dims = outputs[i].shape().to_vector();
      if (!spec.dims.empty()) spec.dims[0] = layers::kUnknownDim;
    }
    sig.outputs.push_back(std::move(spec));
  }
  std::set<std::string> names;
  for (const auto *side : {&sig.inputs, &sig.outputs}) {
    names.clear();
    for (const io::TensorSpecInfo &s : *side)
      if (!names.insert(s.name).second)
        fail(Code::kInvalidArgument, "save_model: the signature names '", s.name,
             "' twice; names must be unique");
  }
  return sig;
}

// ------------------------------------------------------------------ the directory

void remove_tree_quietly(const std::string &path) noexcept {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// What an export in final_dir holds besides kiln's own files (assets.extra/, a TF Serving
// warm-up file, a README) is copied into the new export, so a save over it keeps them, as
// tf.saved_model.save writes into the directory and leaves other files alone.
void keep_other_files(const std::string &final_dir, const std::string &temp) {
  std::error_code ec;
  if (!fs::is_directory(final_dir, ec)) return;
  try {
    for (const fs::directory_entry &e : fs::directory_iterator(final_dir)) {
      const std::string name = e.path().filename().string();
      if (name == io::kSavedModelFile || name == io::kFingerprintFile || name == io::kVariablesDir) continue;
      fs::copy(e.path(), fs::path(temp) / name,
               fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
  } catch (const fs::filesystem_error &e) {
    fail(io::errno_code(e.code().value()), "save_model: cannot keep the other files of '", final_dir,
         "' in the new export: ", e.what());
  }
}

// Puts the finished directory `temp` in place of `final_dir`: one rename when final_dir is absent
// or empty, else an atomic exchange (renameat2 RENAME_EXCHANGE) and the old tree removed; where
// the file system cannot exchange, the old tree is renamed aside first (a crash between the two
// renames leaves the old export under `<final>.tempstate<hex>` and none under its name).
void commit_directory(const std::string &temp, const std::string &final_dir) {
  std::error_code ec;
  const std::string parent = io::dir_name(final_dir);
  if (!fs::exists(final_dir, ec) || fs::is_empty(final_dir, ec)) {
    io::rename_file(temp, final_dir);
  } else if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    io::sync_dir(parent);
    remove_tree_quietly(temp);  // now the old export
    return;
  } else {
    const int err = errno;
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP && err != EXDEV)
      fail(Code::kInternal, "save_model: cannot put '", temp, "' in place of '", final_dir,
           "': ", std::strerror(err));
    const std::string old = io::temp_path_for(final_dir);
    io::rename_file(final_dir, old);
    io::rename_file(temp, final_dir);
    io::sync_dir(parent);
    remove_tree_quietly(old);
    return;
  }
  io::sync_dir(parent);
}

}  // namespace

void save_model(const LayerPtr &model, const std::string &export_dir, const SaveModelOptions &options) {
  if (!model) fail(Code::kInvalidArgument, "save_model: the model is null");
  if (export_dir.empty()) fail(Code::kInvalidArgument, "save_model: the export directory is empty");
  if (!model->built())
    fail(Code::kFailedPrecondition, "save_model: model '", model->name(),
         "' is not built, so its input shapes are unknown; call it on a batch or build it first");
  std::string dir = export_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      fail(Code::kFailedPrecondition, "save_model: '", export_dir, "' exists and is not a directory");
    if (!fs::is_empty(dir, ec) && !io::file_exists(io::join_path(dir, io::kSavedModelFile)))
      fail(Code::kFailedPrecondition, "save_model: '", export_dir,
           "' exists and is not a SavedModel (no saved_model.pb); kiln does not replace a directory of other "
           "files: give a new or empty directory");
  }

  // Everything that can fail on the model runs before anything is written.
  io::SavedModelManifest m;
  m.kiln_version = KILN_VERSION_FOR_CORE;
  m.model_config = layers::serialize_layer(*model);
  for (const PartialShape &s : model->build_input_shapes()) {
    io::TensorSpecInfo spec;
    spec.dims = s;
    if (!spec.dims.empty()) spec.dims[0] = layers::kUnknownDim;
    m.build_inputs.push_back(std::move(spec));
  }
  m.signatures.push_back(make_signature(model, options));
  if (is_compiled(*model)) m.compile_config = compile_config(*model);
  const std::string manifest = io::encode_saved_model(m);

  const std::string parent = io::dir_name(dir);
  io::create_dirs(parent);
  const std::string temp = io::temp_path_for(dir);
  try {
    io::create_dirs(io::join_path(temp, io::kVariablesDir));
    const std::string prefix = io::join_path(temp, io::kVariablesPrefix);
    write_object_graph(make_weights_root(model), prefix);
    io::write_file_atomic(io::join_path(temp, io::kSavedModelFile), manifest);
    io::write_file_atomic(io::join_path(temp, io::kFingerprintFile),
                          io::encode_fingerprint(manifest, io::read_file(prefix + ".index")));
    keep_other_files(dir, temp);
    io::sync_dir(io::join_path(temp, io::kVariablesDir));
    io::sync_dir(temp);
    commit_directory(temp, dir);
  } catch (...) {
    remove_tree_quietly(temp);
    throw;
  }
}

// ------------------------------------------------------------------ loading

std::vector<Tensor> Signature::run(const std::vector<Tensor> &inputs) const {
  // Made only for a message: a batch-1 call takes a few microseconds.
  const auto who = [this] { return "signature '" + info_.key + "'"; };
  if (inputs.size() != info_.inputs.size())
    fail(Code::kInvalidArgument, who(), ": got ", inputs.size(), " input(s); expected ", info_.inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const io::TensorSpecInfo &spec = info_.inputs[i];
    if (!inputs[i].defined()) fail(Code::kInvalidArgument, who(), ": input '", spec.name, "' is undefined");
    if (inputs[i].dtype() != spec.dtype)
      fail(Code::kInvalidArgument, who(), ": input '", spec.name, "' has dtype ",
           dtype_name(inputs[i].dtype()), "; expected ", dtype_name(spec.dtype));
    const Shape &shape = inputs[i].shape();
    bool ok = static_cast<size_t>(shape.rank()) == spec.dims.size();
    for (size_t d = 0; ok && d < spec.dims.size(); ++d)
      ok = spec.dims[d] < 0 || spec.dims[d] == shape[static_cast<int>(d)];
    if (!ok)
      fail(Code::kInvalidArgument, who(), ": input '", spec.name, "' has shape ",
           shape_text(shape.to_vector()), "; expected ", shape_text(spec.dims));
  }
  std::vector<Tensor> outputs = (*model_)(inputs, layers::CallContext{});
  if (outputs.size() != info_.outputs.size())
    fail(Code::kInternal, who(), ": the model gave ", outputs.size(), " output(s); the signature has ",
         info_.outputs.size());
  return outputs;
}

std::vector<std::pair<std::string, Tensor>> Signature::run_named(
    const std::vector<std::pair<std::string, Tensor>> &inputs) const {
  const std::string who = "signature '" + info_.key + "'";
  std::vector<Tensor> ordered(info_.inputs.size());
  std::vector<bool> given(info_.inputs.size(), false);
  for (const auto &[name, value] : inputs) {
    size_t i = 0;
    while (i < info_.inputs.size() && info_.inputs[i].name != name) ++i;
    if (i == info_.inputs.size()) {
      std::vector<std::string> known;
      for (const io::TensorSpecInfo &s : info_.inputs) known.push_back(s.name);
      fail(Code::kInvalidArgument, who, ": no input named '", name, "'; its inputs: ", join_names(known));
    }
    if (given[i]) fail(Code::kInvalidArgument, who, ": input '", name, "' is given twice");
    given[i] = true;
    ordered[i] = value;
  }
  for (size_t i = 0; i < given.size(); ++i)
    if (!given[i]) fail(Code::kInvalidArgument, who, ": input '", info_.inputs[i].name, "' is missing");
  std::vector<Tensor> outputs = run(ordered);
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < outputs.size(); ++i) out.emplace_back(info_.outputs[i].name, std::move(outputs[i]));
  return out;
}

SavedModel::SavedModel(io::SavedModelManifest manifest, LayerPtr model)
    : manifest_(std::move(manifest)), model_(std::move(model)) {
  for (const io::SignatureInfo &s : manifest_.signatures) signatures_.emplace_back(s, model_);
}

std::vector<std::string> SavedModel::signature_keys() const {
  std::vector<std::string> keys;
  for (const Signature &s : signatures_) keys.push_back(s.key());
  return keys;
}

const Signature &SavedModel::signature(const std::string &key) const {
  for (const Signature &s : signatures_)
    if (s.key() == key) return s;
  fail(Code::kNotFound, "SavedModel: no signature '", key,
       "'; it has: ", signatures_.empty() ? std::string("none") : join_names(signature_keys()));
}

namespace {

std::shared_ptr<SavedModel> load_impl(const std::string &export_dir, const LoadModelOptions &options,
                                      const std::string &where) {
  io::SavedModelManifest m = io::read_saved_model(export_dir);
  LayerPtr model;
  try {
    model = layers::deserialize_layer(m.model_config);
  } catch (const Error &e) {
    fail(e.code(), where, ": cannot make the model from its config: ", e.what(),
         e.code() == Code::kNotFound ? " (register custom classes before loading)" : "");
  }
  if (!m.build_inputs.empty()) {
    std::vector<PartialShape> shapes;
    for (const io::TensorSpecInfo &s : m.build_inputs) shapes.push_back(s.dims);
    if (!model->built()) {
      model->build(shapes);
    } else {  // built by its config (a Sequential's build_input_shape): the two must agree
      std::vector<PartialShape> have = model->build_input_shapes();
      for (std::vector<PartialShape> *v : {&have, &shapes})
        for (PartialShape &s : *v)
          if (!s.empty()) s[0] = layers::kUnknownDim;
      if (have != shapes)
        fail(Code::kDataLoss, where, ": the SavedModel's build shapes (", shapes.size(),
             " input(s), the first ", shapes.empty() ? "none" : layers::partial_shape_string(shapes[0]),
             ") differ from its model config's build_input_shape (",
             have.empty() ? "none" : layers::partial_shape_string(have[0]), ")");
    }
  }
  if (m.compile_config && options.compile) {
    try {
      compile_from_config(model, *m.compile_config);
    } catch (const Error &e) {
      fail(e.code(), where, ": cannot compile the model as it was saved: ", e.what(),
           " (load with compile=false to get it uncompiled)");
    }
  }
  const std::string prefix = io::join_path(export_dir, m.variables_prefix);
  if (!io::file_exists(prefix + ".index"))
    fail(Code::kDataLoss, where, ": the SavedModel has no variables: '", prefix, ".index' is missing");
  LoadStatus status = restore_object_graph(make_weights_root(model), prefix);
  status.expect_partial();  // an uncompiled load leaves the optimizer's values; checked below instead
  const std::vector<std::string> missing = status.unmatched_objects();
  if (!missing.empty())
    fail(Code::kDataLoss, where, ": the SavedModel's variables have no values for ", join_names(missing));
  if (options.inference_weights != kernels::GemvWeights::kFloat32)
    model->set_inference_weights(options.inference_weights);
  return std::make_shared<SavedModel>(std::move(m), std::move(model));
}

}  // namespace

std::shared_ptr<SavedModel> load_saved_model(const std::string &export_dir, const LoadModelOptions &options) {
  if (export_dir.empty()) fail(Code::kInvalidArgument, "load_model: the export directory is empty");
  const std::string where = "load_model('" + export_dir + "')";
  try {
    return load_impl(export_dir, options, where);
  } catch (const Error &e) {
    // Every error names the export it came from, once.
    if (std::string(e.what()).compare(0, where.size(), where) == 0) throw;
    fail(e.code(), where, ": ", e.what());
  }
}

LayerPtr load_model(const std::string &export_dir, const LoadModelOptions &options) {
  return load_saved_model(export_dir, options)->model();
}

}  // namespace kiln::train
