// The SavedModel across the ABI: kiln_saved_model (a loaded model and its signatures) and
// kiln_saved_model_signature, over train/saved_model.h.
#include "train/saved_model.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capi/handles.h"
#include "kiln/saved_model.h"

using kiln::Code;
using kiln::fail;
using kiln::capi::require_not_null;
namespace train = kiln::train;

struct kiln_saved_model_signature {
  const train::Signature *signature = nullptr;
};

struct kiln_saved_model {
  std::shared_ptr<train::SavedModel> saved_model;
  std::vector<kiln_saved_model_signature> signatures;  // one per signature, in order
};

namespace {

const kiln_saved_model &saved_model_of(const kiln_saved_model *s, const char *fn) {
  require_not_null(s, fn, "saved_model");
  return *s;
}

const train::Signature &signature_of(const kiln_saved_model_signature *s, const char *fn) {
  require_not_null(s, fn, "signature");
  return *s->signature;
}

train::SaveModelOptions save_options(const kiln_config *options, const char *fn) {
  kiln::ConfigReader r(kiln::capi::config_or_empty(options), "saved_model save options");
  train::SaveModelOptions o;
  if (r.has("inputs")) {
    for (const kiln::Config &c : r.get_config_list("inputs")) {
      kiln::ConfigReader spec(c, "saved_model input spec");
      kiln::io::TensorSpecInfo s;
      s.name = spec.get_string("name", "");
      const std::string dtype = spec.get_string("dtype", "float32");
      const std::optional<kiln::DType> d = kiln::dtype_from_name(dtype);
      if (!d)
        fail(Code::kInvalidArgument, fn, ": input spec dtype '", dtype,
             "' is unknown; expected float32, bfloat16, float64, int32, int64, uint8 or bool");
      s.dtype = *d;
      if (spec.has("shape")) s.dims = c.get_dims("shape");
      spec.finish();
      o.inputs.push_back(std::move(s));
    }
  }
  if (r.has("output_names")) o.output_names = r.config().get_string_list("output_names");
  r.finish();
  return o;
}

train::LoadModelOptions load_options(const kiln_config *options) {
  kiln::ConfigReader r(kiln::capi::config_or_empty(options), "saved_model load options");
  train::LoadModelOptions o;
  o.compile = r.get_bool("compile", o.compile);
  const std::string weights = r.get_string("inference_weights", "float32");
  if (weights == "bfloat16")
    o.inference_weights = kiln::kernels::GemvWeights::kBFloat16;
  else if (weights == "int8")
    o.inference_weights = kiln::kernels::GemvWeights::kInt8;
  else if (weights != "float32")
    kiln::fail(kiln::Code::kInvalidArgument, "saved_model load options: \"inference_weights\" is '", weights,
               "'; expected \"float32\", \"bfloat16\" or \"int8\"");
  r.finish();
  return o;
}

void describe(const std::vector<kiln::io::TensorSpecInfo> &specs, size_t index, const char *side,
              const char **out_name, kiln_dtype *out_dtype, int64_t *out_dims, size_t capacity,
              size_t *out_rank, const char *fn) {
  if (index >= specs.size())
    fail(Code::kOutOfRange, fn, ": ", side, " ", index, " is past the end; the signature has ", specs.size());
  if (capacity) require_not_null(out_dims, fn, "out_dims");
  const kiln::io::TensorSpecInfo &s = specs[index];
  if (out_name) *out_name = s.name.c_str();
  if (out_dtype) *out_dtype = static_cast<kiln_dtype>(s.dtype);
  if (capacity) std::copy_n(s.dims.begin(), std::min(capacity, s.dims.size()), out_dims);
  if (out_rank) *out_rank = s.dims.size();
}

std::vector<kiln::Tensor> input_tensors(const kiln_tensor *const *inputs, size_t n, const char *fn) {
  if (n) require_not_null(inputs, fn, "inputs");
  std::vector<kiln::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!inputs[i]) fail(Code::kInvalidArgument, fn, ": inputs[", i, "] is NULL");
    out.push_back(inputs[i]->value);
  }
  return out;
}

}  // namespace

extern "C" {

kiln_status *kiln_saved_model_save(const kiln_layer *model, const char *export_dir,
                                   const kiln_config *options) {
  KILN_CAPI_BEGIN
  const kiln::layers::LayerPtr m = kiln::capi::layer_of(model, __func__, "model");
  require_not_null(export_dir, __func__, "export_dir");
  train::save_model(m, export_dir, save_options(options, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_load(kiln_saved_model **out, const char *export_dir,
                                   const kiln_config *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(export_dir, __func__, "export_dir");
  auto s = std::make_unique<kiln_saved_model>();
  s->saved_model = train::load_saved_model(export_dir, load_options(options));
  for (const std::string &key : s->saved_model->signature_keys())
    s->signatures.push_back(kiln_saved_model_signature{&s->saved_model->signature(key)});
  *out = s.release();
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_load_model(kiln_layer **out, const char *export_dir,
                                         const kiln_config *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(export_dir, __func__, "export_dir");
  *out = new kiln_layer(train::load_model(export_dir, load_options(options)));
  KILN_CAPI_END
}

void kiln_saved_model_free(kiln_saved_model *saved_model) { delete saved_model; }

kiln_status *kiln_saved_model_get_model(kiln_layer **out, const kiln_saved_model *saved_model) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_layer(saved_model_of(saved_model, __func__).saved_model->model());
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_get_kiln_version(const char **out, const kiln_saved_model *saved_model) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = saved_model_of(saved_model, __func__).saved_model->manifest().kiln_version.c_str();
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_get_num_signatures(size_t *out, const kiln_saved_model *saved_model) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = saved_model_of(saved_model, __func__).signatures.size();
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_get_signature_key(const char **out, const kiln_saved_model *saved_model,
                                                size_t index) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const kiln_saved_model &s = saved_model_of(saved_model, __func__);
  if (index >= s.signatures.size())
    fail(Code::kOutOfRange, __func__, ": signature ", index, " is past the end; the SavedModel has ",
         s.signatures.size());
  *out = s.signatures[index].signature->key().c_str();
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_get_signature(const kiln_saved_model_signature **out,
                                            const kiln_saved_model *saved_model, const char *key) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const kiln_saved_model &s = saved_model_of(saved_model, __func__);
  const std::string k = key ? key : kiln::io::kServingDefault;
  const train::Signature &sig = s.saved_model->signature(k);  // NotFound listing the keys
  for (const kiln_saved_model_signature &h : s.signatures)
    if (h.signature == &sig) *out = &h;
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_signature_get_num_inputs(size_t *out,
                                                       const kiln_saved_model_signature *signature) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = signature_of(signature, __func__).info().inputs.size();
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_signature_get_num_outputs(size_t *out,
                                                        const kiln_saved_model_signature *signature) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = signature_of(signature, __func__).info().outputs.size();
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_signature_get_input(const char **out_name, kiln_dtype *out_dtype,
                                                  int64_t *out_dims, size_t capacity, size_t *out_rank,
                                                  const kiln_saved_model_signature *signature, size_t index) {
  KILN_CAPI_BEGIN
  describe(signature_of(signature, __func__).info().inputs, index, "input", out_name, out_dtype, out_dims,
           capacity, out_rank, __func__);
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_signature_get_output(const char **out_name, kiln_dtype *out_dtype,
                                                   int64_t *out_dims, size_t capacity, size_t *out_rank,
                                                   const kiln_saved_model_signature *signature,
                                                   size_t index) {
  KILN_CAPI_BEGIN
  describe(signature_of(signature, __func__).info().outputs, index, "output", out_name, out_dtype, out_dims,
           capacity, out_rank, __func__);
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_signature_run(kiln_tensor_list **out,
                                            const kiln_saved_model_signature *signature,
                                            const kiln_tensor *const *inputs, size_t num_inputs) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const train::Signature &sig = signature_of(signature, __func__);
  std::vector<kiln::Tensor> outputs = sig.run(input_tensors(inputs, num_inputs, __func__));
  *out = new kiln_tensor_list{std::move(outputs)};
  KILN_CAPI_END
}

kiln_status *kiln_saved_model_signature_run_named(kiln_tensor_list **out,
                                                  const kiln_saved_model_signature *signature,
                                                  const char *const *names, const kiln_tensor *const *inputs,
                                                  size_t num_inputs) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const train::Signature &sig = signature_of(signature, __func__);
  if (num_inputs) require_not_null(names, __func__, "names");
  std::vector<kiln::Tensor> values = input_tensors(inputs, num_inputs, __func__);
  std::vector<std::pair<std::string, kiln::Tensor>> named;
  for (size_t i = 0; i < num_inputs; ++i) {
    if (!names[i]) fail(Code::kInvalidArgument, __func__, ": names[", i, "] is NULL");
    named.emplace_back(names[i], std::move(values[i]));
  }
  std::vector<kiln::Tensor> outputs;
  for (auto &[name, value] : sig.run_named(named)) outputs.push_back(std::move(value));
  *out = new kiln_tensor_list{std::move(outputs)};
  KILN_CAPI_END
}

}  // extern "C"
