#include "layers/sequential.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "layers/builtins.h"

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
  const Config::Json *items = &v;
  if (v.is_object() && v.contains("items")) items = &v.at("items");
  if (!items->is_array()) return std::nullopt;
  PartialShape shape;
  for (const Config::Json &d : *items) {
    if (d.is_null())
      shape.push_back(kUnknownDim);
    else if (d.is_number_integer() && d.get<int64_t>() >= 0)
      shape.push_back(d.get<int64_t>());
    else
      return std::nullopt;
  }
  if (shape.empty()) return std::nullopt;
  return shape;
}
}  // namespace

Sequential::Sequential(const Config &config, ConfigReader &&r) : Model("Sequential", r) {
  std::vector<Config> layers = r.get_config_list("layers");
  if (r.has("build_input_shape") && t_constructing == 0)
    pending_build_shape_ = build_shape_of(r.config().json().at("build_input_shape"));
  r.finish();
  (void)config;
  ++t_constructing;
  try {
    for (const Config &l : layers) add(deserialize_layer(l));
  } catch (...) {
    --t_constructing;
    throw;
  }
  --t_constructing;
}

void Sequential::build_from_config() {
  if (!pending_build_shape_) return;
  const PartialShape shape = std::move(*pending_build_shape_);
  pending_build_shape_.reset();
  if (!layers().empty()) build({shape});
}

void Sequential::add(const LayerPtr &layer) {
  if (!layer) fail(Code::kInvalidArgument, "Sequential '", name(), "': add: null layer");
  mark_unbuilt();
  track(layer);
}

void Sequential::pop() {
  if (layers().empty()) fail(Code::kFailedPrecondition, "Sequential '", name(), "': pop: there are no layers to remove");
  mark_unbuilt();
  untrack_last();
}

void Sequential::build_impl(const std::vector<PartialShape> &input_shapes) {
  if (layers().empty())
    fail(Code::kFailedPrecondition, "Sequential '", name(), "': cannot build a Sequential model with no layers");
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
