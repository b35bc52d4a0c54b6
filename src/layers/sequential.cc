#include "layers/sequential.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "layers/builtins.h"
#include "ops/ops.h"

namespace kiln::layers {

Sequential::Sequential(const Config &config) : Sequential(config, ConfigReader(config, "Sequential")) {}

namespace {
// How many Sequential constructors run on this thread: a Sequential made inside another's (a
// nested model) is built by the outer one's build, under the outer one's name scope.
thread_local int t_constructing = 0;

// A config's build_input_shape: a list of ints and nulls (Keras 3, and Keras 2's tuples), or
// Keras 2's encoded TensorShape {"class_name": "TensorShape", "items": [...]}. Any other form
// (an older writer's) is left alone, as before kiln read the key: the model builds on its first call.
std::optional<PartialShape> build_shape_of(const Config::Json &v) {
  std::optional<PartialShape> shape = dims_of_json(v.is_object() && v.contains("items") ? v.at("items") : v);
  if (shape && shape->empty()) return std::nullopt;
  return shape;
}
}  // namespace

// ------------------------------------------------------------------ InputLayer

namespace {
// The config the Layer base reads for an InputLayer: its own keys taken out ("dtype" is the
// input's dtype here, not a policy; "input_shape" is Keras 3's deprecated alias of "shape").
Config input_layer_base_config(const Config &config) {
  Config base = config;
  for (const char *key : {"dtype", "shape", "batch_shape", "batch_size", "batch_input_shape", "input_shape",
                          "sparse", "ragged", "optional"})
    if (base.has(key)) base.erase(key);
  return base;
}

DType input_dtype_of(const Config &config) {
  if (!config.has("dtype") || config.is_null("dtype")) return DType::kFloat32;
  const Config::Json &v = config.json().at("dtype");
  // A name, or a serialized DTypePolicy naming one ({"class_name": "DTypePolicy", "config": {"name": ...}}).
  const Config::Json *name_json = &v;
  if (v.is_object() && v.contains("config") && v.at("config").is_object() && v.at("config").contains("name"))
    name_json = &v.at("config").at("name");
  if (!name_json->is_string())
    fail(Code::kInvalidArgument, "InputLayer: dtype must be a dtype name such as 'float32'; got ", v.dump());
  const std::string name = name_json->get<std::string>();
  if (const std::optional<DType> d = dtype_from_name(name)) return *d;
  std::string known;
  for (int code = 0; code < 64; ++code)
    if (dtype_valid(code))
      known += std::string(known.empty() ? "" : ", ") + dtype_name(static_cast<DType>(code));
  fail(Code::kInvalidArgument, "InputLayer: dtype '", name, "' is not a kiln dtype; expected one of ", known);
}
}  // namespace

InputLayer::InputLayer(const Config &config)
    : InputLayer(config, ConfigReader(input_layer_base_config(config), "InputLayer")) {}

InputLayer::InputLayer(const Config &config, ConfigReader &&r) : Layer("InputLayer", r) {
  r.finish();
  auto has = [&](const char *key) { return config.has(key) && !config.is_null(key); };
  const char *shape_key = has("shape") ? "shape" : has("input_shape") ? "input_shape" : nullptr;
  const char *batch_key = has("batch_shape")         ? "batch_shape"
                          : has("batch_input_shape") ? "batch_input_shape"
                                                     : nullptr;
  if (shape_key && batch_key) fail(Code::kInvalidArgument, "InputLayer: give shape or batch_shape, not both");
  if (has("batch_size") && batch_key)
    fail(Code::kInvalidArgument, "InputLayer: give batch_size with shape, not with batch_shape");
  if (!shape_key && !batch_key) fail(Code::kInvalidArgument, "InputLayer: give a shape (or a batch_shape)");
  if (shape_key) {
    int64_t batch = kUnknownDim;
    if (has("batch_size")) {
      batch = config.get_int("batch_size");
      if (batch <= 0)
        fail(Code::kInvalidArgument, "InputLayer: batch_size is ", batch, "; expected a positive int");
    }
    batch_shape_ = {batch};
    const PartialShape dims = config_dims(config, shape_key, "InputLayer");
    batch_shape_.insert(batch_shape_.end(), dims.begin(), dims.end());
  } else {
    batch_shape_ = config_dims(config, batch_key, "InputLayer");
    if (batch_shape_.empty())
      fail(Code::kInvalidArgument, "InputLayer: ", batch_key, " is empty; expected the batch axis first");
  }
  input_dtype_ = input_dtype_of(config);
  for (const char *key : {"sparse", "ragged", "optional"})
    if (has(key) && config.get_bool(key))
      fail(Code::kUnimplemented, "InputLayer: ", key,
           "=true is not supported; kiln's inputs are dense tensors");
}

std::vector<Tensor> InputLayer::call_impl(const std::vector<Tensor> &inputs, const CallContext &) {
  return inputs;
}

void InputLayer::add_config(Config &c) const {
  // Keras 3's InputLayer.get_config (the Layer base adds name and trainable).
  c.set_dims("batch_shape", batch_shape_);
  c.set("dtype", std::string(dtype_name(input_dtype_)));
  c.set("sparse", false).set("ragged", false).set("optional", false);
}

// ------------------------------------------------------------------ Sequential

Sequential::Sequential(const Config &config, ConfigReader &&r) : Model("Sequential", r) {
  std::vector<Config> layers = r.get_config_list("layers");
  if (r.has("build_input_shape") && t_constructing == 0)
    pending_build_shape_ = build_shape_of(r.config().json().at("build_input_shape"));
  r.finish();
  (void)config;
  {
    struct Constructing {  // t_constructing counts this constructor while it runs
      Constructing() { ++t_constructing; }
      ~Constructing() { --t_constructing; }
    } constructing;
    for (const Config &l : layers) add_layer(deserialize_layer(l));
  }
  // Keras builds a model with an input layer as it adds its layers (a nested one, the outer
  // model's build).
  if (input_layer_ && !pending_build_shape_ && t_constructing == 0)
    pending_build_shape_ = input_layer_->batch_shape();
}

void Sequential::build_from_config() {
  if (!pending_build_shape_) return;
  const PartialShape shape = std::move(*pending_build_shape_);
  pending_build_shape_.reset();
  if (!layers().empty()) build({shape});
}

void Sequential::fail_duplicate_name(const Layer &layer) const {
  fail(Code::kInvalidArgument, "Sequential '", name(),
       "': all layers added to a Sequential model should have unique names; '", layer.name(),
       "' is already the name of a layer in this model; pass a unique name");
}

void Sequential::add_layer(const LayerPtr &layer) {
  if (!layer) fail(Code::kInvalidArgument, "Sequential '", name(), "': add: null layer");
  // Keras: names are unique within a model (checkpoints and get_layer find layers by name).
  for (const LayerPtr &other : layers())
    if (other != layer && other->name() == layer->name()) fail_duplicate_name(*layer);
  if (input_layer_ && input_layer_ != layer && input_layer_->name() == layer->name())
    fail_duplicate_name(*layer);
  if (auto input = std::dynamic_pointer_cast<InputLayer>(layer)) {
    if (input_layer_)
      fail(Code::kInvalidArgument, "Sequential '", name(),
           "' has already been configured to use input shape ",
           partial_shape_string(input_layer_->batch_shape()), "; it cannot take another InputLayer ('",
           input->name(), "')");
    if (!layers().empty())
      fail(Code::kInvalidArgument, "Sequential '", name(), "': an InputLayer ('", input->name(),
           "') must be the first layer; the model has ", layers().size(), " already");
    input_layer_ = std::move(input);
    mark_unbuilt();
    return;
  }
  // Keras's legacy case: the first layer's input_shape argument gives the model an InputLayer.
  if (layers().empty() && !input_layer_ && layer->input_shape_arg()) {
    Config c;
    c.set_dims("batch_shape", *layer->input_shape_arg());
    input_layer_ = std::make_shared<InputLayer>(c);
  }
  mark_unbuilt();
  track(layer);
}

void Sequential::add(const LayerPtr &layer) {
  const size_t before = layers().size();
  const std::shared_ptr<InputLayer> input_before = input_layer_;
  const InputSpec spec_before = input_spec_;
  add_layer(layer);
  if (!input_layer_ || layers().empty()) return;
  try {
    build({input_layer_->batch_shape()});
  } catch (...) {
    // The layer does not fit the model's input shape: the model gets its layers, input layer and
    // input check back; it builds again on its next call or add.
    if (layers().size() > before) untrack_last();
    input_layer_ = input_before;
    input_spec_ = spec_before;
    mark_unbuilt();
    throw;
  }
}

void Sequential::pop() {
  if (layers().empty()) fail(Code::kFailedPrecondition, "Sequential '", name(), "': pop: there are no layers to remove");
  mark_unbuilt();
  untrack_last();
  if (input_layer_ && !layers().empty()) build({input_layer_->batch_shape()});
}

void Sequential::build_impl(const std::vector<PartialShape> &input_shapes) {
  if (layers().empty())
    fail(Code::kFailedPrecondition, "Sequential '", name(), "': cannot build a Sequential model with no layers");
  if (input_layer_) {
    // Keras: a model configured with an input shape builds for that shape only (a null dim of
    // either side matches any size).
    const PartialShape &want = input_layer_->batch_shape();
    bool ok = input_shapes.size() == 1 && input_shapes[0].size() == want.size();
    for (size_t i = 0; ok && i < want.size(); ++i)
      ok = want[i] == kUnknownDim || input_shapes[0][i] == kUnknownDim || want[i] == input_shapes[0][i];
    if (!ok)
      fail(Code::kInvalidArgument, "Sequential '", name(), "' has been configured to use input shape ",
           partial_shape_string(want), "; it cannot be built for input shape ",
           input_shapes.size() == 1 ? partial_shape_string(input_shapes[0])
                                    : std::to_string(input_shapes.size()) + " inputs");
    // Calls are checked against it too (Keras's functional input spec): the rank and last axis.
    input_spec_.ndim = static_cast<int64_t>(want.size());
    input_spec_.last_dim = want.empty() ? -1 : want.back();
  }
  std::vector<PartialShape> shapes = input_shapes;
  for (const LayerPtr &l : layers()) {
    l->build(shapes);
    shapes = l->compute_output_shape(shapes);
    l->set_output_shapes(shapes);
  }
}

std::vector<Tensor> Sequential::call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) {
  return call_with_masks(inputs, ctx).outputs;
}

CallResult Sequential::call_with_masks(const std::vector<Tensor> &inputs, const CallContext &ctx) {
  CallResult r{inputs, ctx.mask ? *ctx.mask : std::vector<Tensor>{}};
  // Keras converts a model's input to its Input's dtype (int32 data into an Input of float32).
  if (input_layer_ && r.outputs.size() == 1 && r.outputs[0].defined() &&
      r.outputs[0].dtype() != input_layer_->input_dtype())
    r.outputs[0] = ops::cast(r.outputs[0], input_layer_->input_dtype());
  const std::vector<LayerPtr> &ls = layers();
  for (size_t i = 0; i < ls.size(); ++i) {
    CallContext inner;
    inner.training = ctx.training;
    bool any = false;
    for (const Tensor &m : r.masks) any |= m.defined();
    inner.mask = any ? &r.masks : nullptr;
    // A pair that fuses (Conv2D + MaxPooling2D) runs as one computation.
    if (i + 1 < ls.size())
      if (std::optional<CallResult> fused = ls[i]->call_fused(r.outputs, *ls[i + 1], inner)) {
        r = std::move(*fused);
        ++i;
        continue;
      }
    r = ls[i]->call(r.outputs, inner);
  }
  return r;
}

std::vector<Tensor> Sequential::compute_mask(const std::vector<Tensor> &inputs,
                                             const std::vector<Tensor> &previous_masks) {
  CallContext ctx;
  ctx.mask = previous_masks.empty() ? nullptr : &previous_masks;
  return call(inputs, ctx).masks;
}

void Sequential::add_config(Config &c) const {
  std::vector<Config> layers;
  if (input_layer_) layers.push_back(serialize_layer(*input_layer_));  // Keras: the first entry
  for (const LayerPtr &l : this->layers()) layers.push_back(serialize_layer(*l));
  c.set("layers", layers);
  // Keras's Sequential.get_config: the input shape it was built for, so that from_config
  // returns a built model (whose weights set_weights can then fill).
  if (built() && build_input_shapes().size() == 1) {
    PartialShape shape = build_input_shapes()[0];
    if (!shape.empty()) shape[0] = kUnknownDim;
    c.set_dims("build_input_shape", shape);
  }
}

void register_sequential() {
  register_class<InputLayer>("InputLayer");
  add_layer_factory("Sequential", [](const Config &c) -> LayerPtr {
    auto s = std::make_shared<Sequential>(c);
    s->build_from_config();  // after construction: building needs the shared owner
    return s;
  });
}

// ------------------------------------------------------------------ summary

namespace {

std::string shapes_string(const std::vector<PartialShape> &shapes) {
  if (shapes.empty()) return "multiple";
  if (shapes.size() == 1) return partial_shape_string(shapes[0]);
  std::string s = "[";
  for (size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + partial_shape_string(shapes[i]);
  return s + "]";
}

// Keras's readable_memory_size: bytes as "198.79 KB" (powers of 1024).
std::string memory_string(int64_t bytes) {
  const char *units[] = {"Byte", "KB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

int64_t weight_bytes(const std::vector<VariablePtr> &vars) {
  int64_t n = 0;
  for (const VariablePtr &v : vars) n += v->shape().num_elements() * static_cast<int64_t>(dtype_size(v->dtype()));
  return n;
}

int64_t count(const std::vector<VariablePtr> &vars) {
  int64_t n = 0;
  for (const VariablePtr &v : vars) n += v->shape().num_elements();
  return n;
}

// Keras's print_row: each field is cut to its column (two spaces kept between columns, none
// after the last); what does not fit continues on the next line, broken after "),"-like ends.
std::string row(const std::vector<std::string> &fields, const std::vector<int64_t> &positions) {
  std::vector<std::string> left = fields;
  std::string out;
  auto any_left = [&] {
    for (const std::string &f : left)
      if (!f.empty()) return true;
    return false;
  };
  do {
    std::string line;
    for (size_t col = 0; col < left.size(); ++col) {
      const int64_t start = col > 0 ? positions[col - 1] : 0;
      const int64_t space = col + 1 != positions.size() ? 2 : 0;
      // At least one character a line, so that a narrow line_length ends (in more lines).
      size_t cutoff = static_cast<size_t>(std::max<int64_t>(1, positions[col] - start - space));
      std::string fit = left[col].substr(0, cutoff);
      size_t best = std::string::npos;
      for (const char *brk : {"),", "},", "],", "',"}) {
        const size_t at = fit.find(brk);
        if (at != std::string::npos) best = std::min(best, at + 2);
      }
      if (best != std::string::npos) {
        cutoff = best;
        fit = fit.substr(0, cutoff);
      }
      if (col == 0) line += " ";
      line += fit + std::string(static_cast<size_t>(space), ' ');
      left[col] = cutoff < left[col].size() ? left[col].substr(cutoff) : "";
      if (static_cast<int64_t>(line.size()) < positions[col]) line += std::string(size_t(positions[col]) - line.size(), ' ');
    }
    out += line + "\n";
  } while (any_left());
  return out;
}

}  // namespace


std::string summary(const Layer &model, int64_t line_length) {
  if (!model.built())  // Keras's ValueError
    fail(Code::kInvalidArgument,
         "This model has not yet been built. Build the model first by calling `build()` or by "
         "calling the model on a batch of data.");
  // Keras's positions [0.45, 0.85, 1.0] of the line, truncated to ints: 29, 55, 65.
  const std::vector<int64_t> positions = {int64_t(double(line_length) * 0.45), int64_t(double(line_length) * 0.85),
                                          line_length};
  std::ostringstream out;
  out << (model.is_model() ? "Model: \"" : "Layer: \"") << model.name() << "\"\n";
  out << std::string(size_t(line_length), '_') << "\n";
  out << row({"Layer (type)", "Output Shape", "Param #"}, positions);
  out << std::string(size_t(line_length), '=') << "\n";
  const auto &layers = model.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer &l = *layers[i];
    out << row({l.name() + " (" + l.class_name() + ")", shapes_string(l.output_shapes()),
                std::to_string(l.count_params())},
               positions);
    out << std::string(size_t(line_length), ' ') << "\n";  // Keras leaves a blank row after each layer
  }
  out << std::string(size_t(line_length), '=') << "\n";
  const std::vector<VariablePtr> trainable = model.trainable_variables();
  const std::vector<VariablePtr> frozen = model.non_trainable_variables();
  out << "Total params: " << count(trainable) + count(frozen) << " ("
      << memory_string(weight_bytes(trainable) + weight_bytes(frozen)) << ")\n";
  out << "Trainable params: " << count(trainable) << " (" << memory_string(weight_bytes(trainable)) << ")\n";
  out << "Non-trainable params: " << count(frozen) << " (" << memory_string(weight_bytes(frozen)) << ")\n";
  out << std::string(size_t(line_length), '_') << "\n";
  return out.str();
}

}  // namespace kiln::layers
