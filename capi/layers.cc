// Layers across the ABI: kiln_layer handles over the core's layer objects, tensor lists, and
// CallbackLayer, the trampoline that runs a foreign (C, kiln.hpp, Python) layer's callbacks.
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "capi/data_handle.h"
#include "capi/handles.h"
#include "capi/options.h"
#include "layers/adapt.h"
#include "layers/lookup.h"
#include "layers/sequential.h"
#include "ops/ops.h"

using kiln::Code;
using kiln::Config;
using kiln::fail;
using kiln::Tensor;
using kiln::capi::config_or_empty;
using kiln::capi::layer_of;
using kiln::capi::peek_layer;
using kiln::capi::require_not_null;
using kiln::layers::Layer;
using kiln::layers::LayerPtr;
using kiln::layers::PartialShape;

namespace {

kiln_layer *new_layer(LayerPtr l) { return new kiln_layer{std::move(l)}; }

std::shared_ptr<kiln::layers::Sequential> sequential_of(const kiln_layer *l, const char *fn) {
  auto seq = std::dynamic_pointer_cast<kiln::layers::Sequential>(layer_of(l, fn, "sequential"));
  if (!seq)
    fail(Code::kInvalidArgument, fn, ": '", peek_layer(l)->name(), "' is a ", peek_layer(l)->class_name(),
         "; expected a Sequential");
  return seq;
}

char *copy_string(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// Input shapes as C gives them: every input's dims one after the other, ranks[i] each.
std::vector<PartialShape> shapes_from_c(const int64_t *dims, const size_t *ranks, size_t n, const char *fn) {
  std::vector<PartialShape> shapes;
  if (n > 0) require_not_null(ranks, fn, "ranks");
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ranks[i] > KILN_MAX_RANK)
      fail(Code::kInvalidArgument, fn, ": input ", i, " has rank ", ranks[i], "; at most KILN_MAX_RANK (",
           KILN_MAX_RANK, ")");
    if (ranks[i] > 0) require_not_null(dims, fn, "dims");
    PartialShape s(dims + at, dims + at + ranks[i]);
    for (int64_t d : s)
      if (d < -1) fail(Code::kInvalidArgument, fn, ": input ", i, " has dim ", d, "; expected >= 0, or -1 for unknown");
    shapes.push_back(std::move(s));
    at += ranks[i];
  }
  return shapes;
}

// The same layout back, for build callbacks.
void shapes_to_c(const std::vector<PartialShape> &shapes, std::vector<int64_t> *dims, std::vector<size_t> *ranks) {
  for (const PartialShape &s : shapes) {
    dims->insert(dims->end(), s.begin(), s.end());
    ranks->push_back(s.size());
  }
}

// A callback's status as an exception of the same code, naming the layer and the hook.
void check_callback(kiln_status *st, const Layer &l, const char *hook) {
  if (!st) return;
  kiln_status_code code = kiln_status_get_code(st);
  std::string msg = kiln_status_get_message(st);
  kiln_status_free(st);
  if (code <= KILN_STATUS_OK || code > KILN_STATUS_INTERNAL) code = KILN_STATUS_INTERNAL;
  fail(static_cast<Code>(code), l.describe(), " ", hook, ": ", msg);
}

// Masks as callbacks see them: one slot per input, empty where an input has none.
std::vector<Tensor> mask_slots(const std::vector<Tensor> &inputs, const std::vector<Tensor> &masks) {
  std::vector<Tensor> slots = masks;
  slots.resize(inputs.size());
  return slots;
}

// The trampoline: a core layer whose build/call/get_config are the foreign callbacks.
class CallbackLayer final : public Layer {
 public:
  CallbackLayer(const std::string &class_name, const Config &base, const kiln_layer_callbacks &cb, void *user_data,
                bool is_model)
      : CallbackLayer(class_name, kiln::ConfigReader(base, class_name), cb, user_data, is_model) {}
  ~CallbackLayer() override {
    if (cb_.destroy) cb_.destroy(user_data_);
  }
  // Hands user_data to the layer: from now on its death calls destroy.
  void arm_destroy(void (*destroy)(void *)) { cb_.destroy = destroy; }

 private:
  CallbackLayer(const std::string &class_name, kiln::ConfigReader &&r, const kiln_layer_callbacks &cb,
                void *user_data, bool is_model)
      : Layer(class_name, r), cb_(cb), user_data_(user_data) {
    r.finish();
    set_is_model(is_model);
    set_supports_masking(cb_.supports_masking);
  }

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                   const std::vector<Tensor> &previous_masks) override {
    if (!cb_.compute_mask) return Layer::compute_mask(inputs, previous_masks);
    kiln_tensor_list in{inputs};
    kiln_tensor_list masks{mask_slots(inputs, previous_masks)};
    kiln_tensor_list out;
    kiln_layer self{shared_from_this()};
    check_callback(cb_.compute_mask(&out, &self, &in, &masks, user_data_), *this, "compute_mask");
    return std::move(out.tensors);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    if (cb_.build) {
      std::vector<int64_t> dims;
      std::vector<size_t> ranks;
      shapes_to_c(shapes, &dims, &ranks);
      kiln_layer self{shared_from_this()};
      check_callback(cb_.build(&self, dims.data(), ranks.data(), ranks.size(), user_data_), *this, "build");
    }
    // An explicit model.build builds the sub-layers as Keras's Model.build does for subclassed
    // models: by calling itself once on inputs of the shapes (zeros in the layer's dtype,
    // unknown dims as 1). Built by a call, the call's own inputs build them (with their dtypes,
    // and without running the model twice).
    if (is_model() && !building_from_call()) {
      std::vector<Tensor> zeros;
      for (const PartialShape &s : shapes) {
        std::vector<int64_t> d(s);
        for (int64_t &x : d)
          if (x < 0) x = 1;
        zeros.push_back(kiln::ops::zeros(kiln::Shape(d), compute_dtype()));
      }
      call_impl(zeros, kiln::layers::CallContext{});
    }
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const kiln::layers::CallContext &ctx) override {
    kiln_tensor_list in{inputs};
    kiln_tensor_list out;
    kiln_layer self{shared_from_this()};
    if (cb_.call_with_mask) {
      kiln_tensor_list masks{mask_slots(inputs, ctx.mask ? *ctx.mask : std::vector<Tensor>{})};
      check_callback(cb_.call_with_mask(&out, &self, &in, &masks, ctx.training, user_data_), *this, "call");
    } else {
      check_callback(cb_.call(&out, &self, &in, ctx.training, user_data_), *this, "call");
    }
    for (size_t i = 0; i < out.tensors.size(); ++i)
      if (!out.tensors[i].defined())
        fail(Code::kInvalidArgument, describe(), " call: output ", i,
             " is an empty slot; every output needs a tensor");
    return std::move(out.tensors);
  }

  void add_config(Config &config) const override {
    if (!cb_.get_config) return;
    kiln_config c{config};
    // get_config is const; the handle is const for the callback too.
    kiln_layer self{std::const_pointer_cast<Layer>(shared_from_this())};
    check_callback(cb_.get_config(&c, &self, user_data_), *this, "get_config");
    config = std::move(c.value);
  }

  kiln_layer_callbacks cb_;
  void *user_data_;
};

kiln_status *create_custom(kiln_layer **out, const char *class_name, const kiln_config *base_config,
                           const kiln_layer_callbacks *callbacks, void *user_data, bool is_model, const char *fn) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  require_not_null(class_name, fn, "class_name");
  require_not_null(callbacks, fn, "callbacks");
  if (callbacks->struct_size < offsetof(kiln_layer_callbacks, destroy) + sizeof(callbacks->destroy))
    fail(Code::kInvalidArgument, fn, ": callbacks->struct_size is ", callbacks->struct_size,
         "; expected sizeof(kiln_layer_callbacks)");
  if (!*class_name) fail(Code::kInvalidArgument, fn, ": class_name is empty");
  kiln_layer_callbacks cb{};
  std::memcpy(&cb, callbacks, std::min(callbacks->struct_size, sizeof cb));
  if (!cb.call && !cb.call_with_mask)
    fail(Code::kInvalidArgument, fn,
         ": callbacks->call is NULL, and so is callbacks->call_with_mask; a layer needs a call");
  // Until the layer exists, user_data stays the caller's: a failed create must not destroy it.
  const auto destroy = cb.destroy;
  cb.destroy = nullptr;
  auto layer = std::make_shared<CallbackLayer>(class_name, config_or_empty(base_config), cb, user_data, is_model);
  *out = new_layer(layer);
  layer->arm_destroy(destroy);
  KILN_CAPI_END_AS(fn)
}

}  // namespace

extern "C" {

// ---------------------------------------------------------------- tensor lists

kiln_status *kiln_tensor_list_create(kiln_tensor_list **out) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_tensor_list{};
  KILN_CAPI_END
}

void kiln_tensor_list_free(kiln_tensor_list *list) { delete list; }

kiln_status *kiln_tensor_list_append(kiln_tensor_list *list, const kiln_tensor *tensor) {
  KILN_CAPI_BEGIN
  require_not_null(list, __func__, "list");
  list->tensors.push_back(tensor ? kiln::capi::tensor_of(tensor, __func__, "tensor") : Tensor());
  KILN_CAPI_END
}

size_t kiln_tensor_list_get_size(const kiln_tensor_list *list) { return list ? list->tensors.size() : 0; }

kiln_status *kiln_tensor_list_get(kiln_tensor **out, const kiln_tensor_list *list, size_t index) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(list, __func__, "list");
  if (index >= list->tensors.size())
    fail(Code::kOutOfRange, __func__, ": index ", index, " is out of range for a list of ", list->tensors.size());
  const Tensor &t = list->tensors[index];
  *out = t.defined() ? kiln::capi::new_tensor(t) : nullptr;
  KILN_CAPI_END
}

// ---------------------------------------------------------------- layers

kiln_status *kiln_layer_create(kiln_layer **out, const char *class_name, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(class_name, __func__, "class_name");
  *out = new_layer(kiln::layers::create_layer(class_name, config_or_empty(config)));
  KILN_CAPI_END
}

kiln_status *kiln_layer_create_around(kiln_layer **out, const char *class_name, const kiln_config *config,
                                      kiln_layer *const *layers, size_t num_layers) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(class_name, __func__, "class_name");
  if (num_layers == 0)
    fail(Code::kInvalidArgument, __func__, ": num_layers is 0; expected at least one layer (the cell)");
  require_not_null(layers, __func__, "layers");
  std::vector<LayerPtr> given;
  for (size_t i = 0; i < num_layers; ++i)
    given.push_back(layer_of(layers[i], __func__, ("layers[" + std::to_string(i) + "]").c_str()));
  *out = new_layer(kiln::layers::create_layer_around(class_name, config_or_empty(config), given));
  KILN_CAPI_END
}

kiln_status *kiln_layer_deserialize(kiln_layer **out, const kiln_config *serialized) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(serialized, __func__, "serialized");
  *out = new_layer(kiln::layers::deserialize_layer(serialized->value));
  KILN_CAPI_END
}

kiln_status *kiln_layer_serialize(kiln_config **out, const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{kiln::layers::serialize_layer(*layer_of(layer, __func__))};
  KILN_CAPI_END
}

kiln_status *kiln_layer_get_config(kiln_config **out, const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{layer_of(layer, __func__)->get_config()};
  KILN_CAPI_END
}

kiln_status *kiln_layer_clone(kiln_layer **out, const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new_layer(layer_of(layer, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_layer_clone_weak(kiln_layer **out, const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_layer(std::weak_ptr<Layer>(layer_of(layer, __func__)));
  KILN_CAPI_END
}

void kiln_layer_free(kiln_layer *layer) { delete layer; }

uint64_t kiln_layer_get_id(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l ? l->id() : 0;
}
const char *kiln_layer_get_name(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l ? l->name().c_str() : nullptr;
}
const char *kiln_layer_get_class_name(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l ? l->class_name().c_str() : nullptr;
}
bool kiln_layer_get_built(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l && l->built();
}
bool kiln_layer_is_model(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l && l->is_model();
}
bool kiln_layer_get_trainable(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l && l->trainable();
}

kiln_status *kiln_layer_set_trainable(kiln_layer *layer, bool trainable) {
  KILN_CAPI_BEGIN
  layer_of(layer, __func__)->set_trainable(trainable);
  KILN_CAPI_END
}

kiln_status *kiln_layer_build(kiln_layer *layer, const int64_t *dims, const size_t *ranks, size_t num_inputs) {
  KILN_CAPI_BEGIN
  const LayerPtr &l = layer_of(layer, __func__);
  l->build(shapes_from_c(dims, ranks, num_inputs, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_layer_call(kiln_tensor_list **out, kiln_layer *layer, const kiln_tensor_list *inputs,
                             bool training) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr &l = layer_of(layer, __func__);
  require_not_null(inputs, __func__, "inputs");
  kiln::layers::CallContext ctx;
  ctx.training = training;
  *out = new kiln_tensor_list{(*l)(inputs->tensors, ctx)};
  KILN_CAPI_END
}

kiln_status *kiln_layer_call_tensor(kiln_tensor **out, kiln_layer *layer, const kiln_tensor *input, bool training) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr &l = layer_of(layer, __func__);
  const Tensor &x = kiln::capi::tensor_of(input, __func__, "input");
  *out = kiln::capi::new_tensor((*l)(x, training));
  KILN_CAPI_END
}

static kiln_layer_call_options call_defaults() {
  kiln_layer_call_options o{};
  o.struct_size = sizeof o;
  return o;
}
static const size_t kCallOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_layer_call_options, masks);

kiln_status *kiln_layer_call_options_init(kiln_layer_call_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, call_defaults(), kCallOptionsV1,
                           "kiln_layer_call_options_init", "kiln_layer_call_options");
  KILN_CAPI_END
}

kiln_status *kiln_layer_call_with_options(kiln_tensor_list **out, kiln_tensor_list **out_masks,
                                          kiln_layer *layer, const kiln_tensor_list *inputs,
                                          const kiln_layer_call_options *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr &l = layer_of(layer, __func__);
  require_not_null(inputs, __func__, "inputs");
  const kiln_layer_call_options o =
      kiln::capi::read_options(options, call_defaults(), kCallOptionsV1, __func__, "kiln_layer_call_options");
  kiln::layers::CallContext ctx;
  ctx.training = o.training;
  ctx.training_from_context = o.training_from_context;
  if (o.masks) ctx.mask = &o.masks->tensors;
  kiln::layers::CallResult r = l->call(inputs->tensors, ctx);
  auto outputs = std::make_unique<kiln_tensor_list>(kiln_tensor_list{std::move(r.outputs)});
  if (out_masks) *out_masks = new kiln_tensor_list{std::move(r.masks)};
  *out = outputs.release();
  KILN_CAPI_END
}

kiln_status *kiln_layer_compute_mask(kiln_tensor_list **out, kiln_layer *layer,
                                     const kiln_tensor_list *inputs, const kiln_tensor_list *masks) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr &l = layer_of(layer, __func__);
  require_not_null(inputs, __func__, "inputs");
  for (size_t i = 0; i < inputs->tensors.size(); ++i)
    if (!inputs->tensors[i].defined())
      fail(Code::kInvalidArgument, __func__, ": input ", i, " is an empty slot; every input needs a tensor");
  if (masks && masks->tensors.size() != inputs->tensors.size())
    fail(Code::kInvalidArgument, __func__, ": layer '", l->name(), "' (", l->class_name(), "): got ",
         masks->tensors.size(), " masks for ", inputs->tensors.size(), " inputs; expected one per input");
  *out =
      new kiln_tensor_list{l->compute_mask(inputs->tensors, masks ? masks->tensors : std::vector<Tensor>{})};
  KILN_CAPI_END
}

bool kiln_layer_get_supports_masking(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l && l->supports_masking();
}

kiln_status *kiln_layer_set_supports_masking(kiln_layer *layer, bool supports_masking) {
  KILN_CAPI_BEGIN
  layer_of(layer, __func__)->set_supports_masking(supports_masking);
  KILN_CAPI_END
}

kiln_status *kiln_layer_get_state_size(int64_t *out, size_t capacity, size_t *out_count,
                                       const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out_count, __func__, "out_count");
  const std::vector<int64_t> sizes = layer_of(layer, __func__)->state_size();
  if (capacity > 0) require_not_null(out, __func__, "out");
  for (size_t i = 0; i < capacity && i < sizes.size(); ++i) out[i] = sizes[i];
  *out_count = sizes.size();
  KILN_CAPI_END
}

kiln_status *kiln_layer_set_state_size(kiln_layer *layer, const int64_t *sizes, size_t count) {
  KILN_CAPI_BEGIN
  const LayerPtr &l = layer_of(layer, __func__);
  if (!dynamic_cast<const CallbackLayer *>(l.get()))
    fail(Code::kInvalidArgument, __func__,
         ": only a custom layer (kiln_layer_create_custom) takes a state size; got ", l->describe());
  if (count > 0) require_not_null(sizes, __func__, "sizes");
  l->set_state_size(count > 0 ? std::vector<int64_t>(sizes, sizes + count) : std::vector<int64_t>{});
  KILN_CAPI_END
}

kiln_status *kiln_layer_compute_output_shape(int64_t *out_dims, size_t capacity, size_t *out_rank,
                                             kiln_layer *layer, const int64_t *dims, size_t rank) {
  KILN_CAPI_BEGIN
  require_not_null(out_rank, __func__, "out_rank");
  if (capacity > 0) require_not_null(out_dims, __func__, "out_dims");  // before the layer may build
  const LayerPtr &l = layer_of(layer, __func__);
  const std::vector<PartialShape> shapes = l->compute_output_shape(shapes_from_c(dims, &rank, 1, __func__));
  if (shapes.size() != 1)
    fail(Code::kInvalidArgument, __func__, ": layer '", l->name(), "' has ", shapes.size(),
         " outputs; expected 1");
  for (size_t i = 0; i < capacity && i < shapes[0].size(); ++i) out_dims[i] = shapes[0][i];
  *out_rank = shapes[0].size();
  KILN_CAPI_END
}

kiln_status *kiln_layer_compute_output_shapes(int64_t *out_dims, size_t dims_capacity, size_t *out_ranks,
                                              size_t ranks_capacity, size_t *out_count, size_t *out_num_dims,
                                              kiln_layer *layer, const int64_t *dims, const size_t *ranks,
                                              size_t num_inputs) {
  KILN_CAPI_BEGIN
  require_not_null(out_count, __func__, "out_count");
  require_not_null(out_num_dims, __func__, "out_num_dims");
  if (dims_capacity > 0) require_not_null(out_dims, __func__, "out_dims");  // before the layer may build
  if (ranks_capacity > 0) require_not_null(out_ranks, __func__, "out_ranks");
  const LayerPtr &l = layer_of(layer, __func__);
  const std::vector<PartialShape> shapes =
      l->compute_output_shape(shapes_from_c(dims, ranks, num_inputs, __func__));
  std::vector<int64_t> all_dims;
  std::vector<size_t> all_ranks;
  shapes_to_c(shapes, &all_dims, &all_ranks);
  std::copy_n(all_dims.begin(), std::min(dims_capacity, all_dims.size()), out_dims);
  std::copy_n(all_ranks.begin(), std::min(ranks_capacity, all_ranks.size()), out_ranks);
  *out_count = all_ranks.size();
  *out_num_dims = all_dims.size();
  KILN_CAPI_END
}

kiln_status *kiln_layer_get_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                      const kiln_layer *layer, kiln_variables_kind kind) {
  KILN_CAPI_BEGIN
  require_not_null(out_count, __func__, "out_count");
  const LayerPtr &l = layer_of(layer, __func__);
  const int k = static_cast<int>(kind);
  if (k < KILN_VARIABLES_ALL || k > KILN_VARIABLES_NON_TRAINABLE)
    fail(Code::kInvalidArgument, __func__, ": kind ", k, " is not a kiln_variables_kind; expected 0 to 2");
  const std::vector<kiln::layers::VariablePtr> vars = k == KILN_VARIABLES_ALL         ? l->variables()
                                                      : k == KILN_VARIABLES_TRAINABLE ? l->trainable_variables()
                                                                                      : l->non_trainable_variables();
  if (capacity > 0) require_not_null(out, __func__, "out");
  kiln::capi::write_variables(out, capacity, out_count, vars);
  KILN_CAPI_END
}

kiln_status *kiln_layer_count_params(int64_t *out, const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = layer_of(layer, __func__)->count_params();
  KILN_CAPI_END
}

kiln_status *kiln_layer_get_losses(kiln_tensor_list **out, const kiln_layer *layer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_tensor_list{layer_of(layer, __func__)->losses()};
  KILN_CAPI_END
}

size_t kiln_layer_get_num_layers(const kiln_layer *layer) {
  const LayerPtr l = peek_layer(layer);
  return l ? l->layers().size() : 0;
}

kiln_status *kiln_layer_get_layer(kiln_layer **out, const kiln_layer *layer, size_t index) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const auto &layers = layer_of(layer, __func__)->layers();
  if (index >= layers.size())
    fail(Code::kOutOfRange, __func__, ": index ", index, " is out of range for a layer with ", layers.size(),
         " sub-layers");
  *out = new_layer(layers[index]);
  KILN_CAPI_END
}

kiln_status *kiln_layer_get_layer_by_name(kiln_layer **out, const kiln_layer *layer, const char *name) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(name, __func__, "name");
  const LayerPtr &l = layer_of(layer, __func__);
  std::string names;
  for (const LayerPtr &c : l->layers()) {
    if (c->name() == name) {
      *out = new_layer(c);
      return nullptr;
    }
    names += (names.empty() ? "" : ", ") + c->name();
  }
  fail(Code::kNotFound, __func__, ": no layer named '", name, "' in '", l->name(), "'; its layers: ",
       names.empty() ? "none" : names);
  KILN_CAPI_END
}

kiln_status *kiln_layer_summary(char **out, const kiln_layer *layer, int line_length) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr &l = layer_of(layer, __func__);
  if (line_length < 0 || line_length > 10000)
    fail(Code::kInvalidArgument, __func__, ": line_length ", line_length, " is out of range; expected 0 (default) to 10000");
  *out = copy_string(kiln::layers::summary(*l, line_length == 0 ? 65 : line_length));
  KILN_CAPI_END
}

kiln_status *kiln_sequential_add(kiln_layer *sequential, kiln_layer *layer) {
  KILN_CAPI_BEGIN
  sequential_of(sequential, __func__)->add(layer_of(layer, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_sequential_pop(kiln_layer *sequential) {
  KILN_CAPI_BEGIN
  sequential_of(sequential, __func__)->pop();
  KILN_CAPI_END
}

void kiln_clear_session(void) { kiln::layers::clear_session(); }

kiln_status *kiln_initializer_call(kiln_tensor **out, const kiln_config *initializer, const int64_t *dims,
                                   size_t rank, kiln_dtype dtype) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(initializer, __func__, "initializer");
  const kiln::Shape shape = kiln::capi::shape_from_c(dims, rank, __func__);
  const kiln::DType dt = kiln::capi::dtype_from_c(dtype, __func__);
  *out = kiln::capi::new_tensor((*kiln::layers::deserialize_initializer(initializer->value))(shape, dt));
  KILN_CAPI_END
}

// ---------------------------------------------------------------- custom layers

static kiln_add_weight_options add_weight_defaults() {
  kiln_add_weight_options o{};
  o.struct_size = sizeof o;
  o.dtype = KILN_DTYPE_FLOAT32;
  o.initializer = "glorot_uniform";
  o.trainable = true;
  return o;
}
static const size_t kAddWeightOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_add_weight_options, regularizer_config);

kiln_status *kiln_add_weight_options_init(kiln_add_weight_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, add_weight_defaults(), kAddWeightOptionsV1,
                           "kiln_add_weight_options_init", "kiln_add_weight_options");
  KILN_CAPI_END
}

kiln_status *kiln_layer_add_weight(kiln_variable **out, kiln_layer *layer, const char *name, const int64_t *dims,
                                   size_t rank, const kiln_add_weight_options *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LayerPtr &l = layer_of(layer, __func__);
  require_not_null(name, __func__, "name");
  kiln_add_weight_options defaults = add_weight_defaults();
  defaults.dtype = static_cast<kiln_dtype>(l->dtype());
  const kiln_add_weight_options o =
      kiln::capi::read_options(options, defaults, kAddWeightOptionsV1, __func__, "kiln_add_weight_options");
  const kiln::Shape shape = kiln::capi::shape_from_c(dims, rank, __func__);
  const kiln::DType dtype = kiln::capi::dtype_from_c(o.dtype, __func__);
  const kiln::layers::InitializerPtr init =
      o.initializer_config ? kiln::layers::deserialize_initializer(o.initializer_config->value)
                           : kiln::layers::get_initializer(o.initializer ? o.initializer : "glorot_uniform");
  Config reg;
  if (o.regularizer_config)
    reg.set("r", o.regularizer_config->value);
  else if (o.regularizer)
    reg.set("r", o.regularizer);
  kiln::layers::RegularizerPtr r = kiln::layers::regularizer_from_value(reg, "r");
  *out = new kiln_variable{l->add_weight(name, shape, dtype, *init, o.trainable, std::move(r))};
  KILN_CAPI_END
}

kiln_status *kiln_layer_track(kiln_layer *layer, kiln_layer *child) {
  KILN_CAPI_BEGIN
  layer_of(layer, __func__)->track(layer_of(child, __func__, "child"));
  KILN_CAPI_END
}

kiln_status *kiln_layer_track_variable(kiln_layer *layer, kiln_variable *variable, const char *name) {
  KILN_CAPI_BEGIN
  require_not_null(variable, __func__, "variable");
  require_not_null(name, __func__, "name");
  layer_of(layer, __func__)->track_variable(variable->variable, name);
  KILN_CAPI_END
}

kiln_status *kiln_layer_track_as(kiln_layer *layer, kiln_layer *child, const char *attribute) {
  KILN_CAPI_BEGIN
  require_not_null(attribute, __func__, "attribute");
  if (!*attribute)
    kiln::fail(kiln::Code::kInvalidArgument, __func__,
               ": the attribute is empty; expected an attribute name");
  layer_of(layer, __func__)->track(layer_of(child, __func__, "child"), attribute);
  KILN_CAPI_END
}

kiln_status *kiln_layer_add_loss(kiln_layer *layer, const kiln_tensor *loss) {
  KILN_CAPI_BEGIN
  layer_of(layer, __func__)->add_loss(kiln::capi::tensor_of(loss, __func__, "loss"));
  KILN_CAPI_END
}

kiln_status *kiln_layer_adapt(kiln_layer *layer, const kiln_tensor *data) {
  KILN_CAPI_BEGIN
  const LayerPtr l = layer_of(layer, __func__);
  kiln::layers::adapt(*l, kiln::capi::tensor_of(data, __func__, "data"));
  KILN_CAPI_END
}

kiln_status *kiln_layer_adapt_dataset(kiln_layer *layer, const kiln_dataset *dataset) {
  KILN_CAPI_BEGIN
  const LayerPtr l = layer_of(layer, __func__);
  require_not_null(dataset, __func__, "dataset");
  const kiln::data::IteratorPtr it = dataset->dataset->make_iterator();
  kiln::data::Element element;
  kiln::layers::adapt(*l, [&](Tensor *out) {
    if (!it->next(&element)) return false;
    if (element.empty())
      fail(Code::kInvalidArgument,
           "kiln_layer_adapt_dataset: the dataset's elements have no components; expected a "
           "batch, or (x, ...) whose x is one");
    *out = element[0];
    return true;
  });
  KILN_CAPI_END
}

kiln_status *kiln_layer_get_vocabulary(kiln_tensor **out, const kiln_layer *layer,
                                       bool include_special_tokens) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = nullptr;
  const LayerPtr l = layer_of(layer, __func__);
  *out = kiln::capi::new_tensor(kiln::layers::get_vocabulary(*l, include_special_tokens));
  KILN_CAPI_END
}

kiln_status *kiln_layer_set_vocabulary(kiln_layer *layer, const kiln_tensor *vocabulary,
                                       const kiln_tensor *idf_weights) {
  KILN_CAPI_BEGIN
  const LayerPtr l = layer_of(layer, __func__);
  const Tensor v = kiln::capi::tensor_of(vocabulary, __func__, "vocabulary");
  kiln::layers::set_vocabulary(
      *l, v, idf_weights ? kiln::capi::tensor_of(idf_weights, __func__, "idf_weights") : Tensor());
  KILN_CAPI_END
}

kiln_status *kiln_layer_create_custom(kiln_layer **out, const char *class_name, const kiln_config *base_config,
                                      const kiln_layer_callbacks *callbacks, void *user_data) {
  return create_custom(out, class_name, base_config, callbacks, user_data, false, __func__);
}

kiln_status *kiln_model_create_custom(kiln_layer **out, const char *class_name, const kiln_config *base_config,
                                      const kiln_layer_callbacks *callbacks, void *user_data) {
  return create_custom(out, class_name, base_config, callbacks, user_data, true, __func__);
}

}  // extern "C"
