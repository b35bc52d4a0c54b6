// kiln's SavedModel (TF's tf.saved_model.save / load and Keras's model.save / load_model): a
// directory that brings a model back without the code that defined it.
//   <export_dir>/saved_model.pb         the manifest (io/saved_model_format.h): the model's Keras
//                                       config, the shapes it was built with, the signatures,
//                                       the compile config, the kiln version
//   <export_dir>/variables/variables.*  a TensorFlow checkpoint of the model (save_weights' object
//                                       graph, with a compiled model's optimizer)
//   <export_dir>/fingerprint.pb         hashes of the parts (TF's FingerprintDef numbering)
// Loading rebuilds the model through the layer registry (built-in classes, and custom ones
// registered from C, C++ or Python), builds it, compiles it as it was compiled, and restores the
// variables; the signatures then run it on named tensors from any number of threads.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/saved_model_format.h"
#include "layers/layer.h"

namespace kiln::train {

struct SaveModelOptions {
  // The serving_default signature's inputs, one per model input, in order. Empty: Keras's
  // names (Sequential: "<first layer>_input"; other models "input_1", "input_2", ...), the dtype
  // of a Sequential model's Input (float32 for other models), the shapes the model was built
  // with with the batch dim unknown. A spec may leave its name empty (the default name) or its
  // dims empty (the built shape).
  std::vector<io::TensorSpecInfo> inputs;
  // The outputs' names, one per model output. Empty: Keras's (Sequential: the last layer's
  // name; other models "output_1", ...).
  std::vector<std::string> output_names;
};

// Writes the SavedModel of a built model to export_dir. The directory is written under a
// temporary name beside it, fsynced, then put in place by one rename (an existing SavedModel
// there is swapped out atomically where the file system allows it), so a crash leaves either the
// previous export or the new one. An existing export_dir that is not empty and holds no
// saved_model.pb is FailedPrecondition (kiln does not replace a directory of other files). The
// files an existing export holds besides saved_model.pb, fingerprint.pb and variables/ (e.g.
// assets.extra/) are copied into the new one, as TF leaves them. FailedPrecondition for a model
// that is not built ("call it on a batch or build it first").
void save_model(const layers::LayerPtr &model, const std::string &export_dir,
                const SaveModelOptions &options = {});

// A signature of a loaded model (TF's ConcreteFunction under .signatures[key]). Thread-safe.
class Signature {
 public:
  Signature(io::SignatureInfo info, layers::LayerPtr model)
      : info_(std::move(info)), model_(std::move(model)) {}
  const io::SignatureInfo &info() const { return info_; }
  const std::string &key() const { return info_.key; }
  // Runs the model in inference mode on one tensor per input, in the signature's input order.
  // InvalidArgument naming the input for a wrong count, dtype or shape (known dims must match).
  // The outputs come in the signature's output order.
  std::vector<Tensor> run(const std::vector<Tensor> &inputs) const;
  // As run, with inputs by name (each input exactly once; unknown names are InvalidArgument).
  std::vector<std::pair<std::string, Tensor>> run_named(
      const std::vector<std::pair<std::string, Tensor>> &inputs) const;

 private:
  io::SignatureInfo info_;
  layers::LayerPtr model_;
};

struct LoadModelOptions {
  // Compile the model as it was compiled when saved (Keras's load_model(compile=True)); the
  // optimizer's state then comes back too. False: the model comes back uncompiled.
  bool compile = true;
  // Dense layers read their kernels rounded to bfloat16 or quantized to int8 in float32 calls
  // that no tape records with at most 8 rows (the signatures' batch-1 serving): faster, results
  // within bfloat16's or int8's error of float32's (ops/dense_options.h). kFloat32: the saved bits.
  kernels::GemvWeights inference_weights = kernels::GemvWeights::kFloat32;
};

class SavedModel {
 public:
  SavedModel(io::SavedModelManifest manifest, layers::LayerPtr model);
  const layers::LayerPtr &model() const { return model_; }
  const io::SavedModelManifest &manifest() const { return manifest_; }
  std::vector<std::string> signature_keys() const;
  // NotFound naming the key and listing the keys there are.
  const Signature &signature(const std::string &key = io::kServingDefault) const;

 private:
  io::SavedModelManifest manifest_;
  layers::LayerPtr model_;
  std::vector<Signature> signatures_;
};

// tf.saved_model.load: the model and its signatures. NotFound when export_dir is not a SavedModel,
// DataLoss for a damaged one (naming the file, and the tensor for variables), NotFound naming a
// class the layer registry does not know (register it first).
std::shared_ptr<SavedModel> load_saved_model(const std::string &export_dir,
                                             const LoadModelOptions &options = {});
// keras.models.load_model(export_dir): the model alone.
layers::LayerPtr load_model(const std::string &export_dir, const LoadModelOptions &options = {});

// The Keras compile_config of a compiled model (optimizer, loss, loss_weights, metrics,
// run_eagerly), and compile from one (for the SavedModel; exposed for tests).
Config compile_config(layers::Layer &model);
void compile_from_config(const layers::LayerPtr &model, const Config &config);

}  // namespace kiln::train
