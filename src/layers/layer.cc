#include "layers/layer.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <set>
#include <utility>

#include "autodiff/autocast.h"
#include "core/error.h"
#include "core/factory_registry.h"
#include "core/utf8.h"
#include "layers/builtins.h"
#include "ops/ops.h"

namespace kiln::layers {

// ------------------------------------------------------------------ names and shapes

std::string partial_shape_string(const PartialShape &s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += s[i] < 0 ? "None" : std::to_string(s[i]);
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

PartialShape partial_shape_of(const Shape &s) { return PartialShape(s.data(), s.data() + s.rank()); }

std::string to_snake_case(const std::string &name) {
  // Keras's three substitutions, written out (std::regex trips GCC 12's maybe-uninitialized
  // warning in sanitizer builds): drop non-word characters; put '_' before a capitalised word
  // that follows any character ("(.)([A-Z][a-z]+)", matches not overlapping); put '_' between
  // a lower-case and an upper-case letter ("([a-z])([A-Z])"); then lower-case.
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  std::string w;
  for (char c : name)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') w += c;
  std::string a;
  size_t from = 0;  // w[from..] not yet copied; a match's (.) must lie there
  for (size_t k = 1; k + 1 < w.size(); ++k) {
    if (!upper(w[k]) || !lower(w[k + 1]) || k - 1 < from) continue;
    size_t end = k + 1;
    while (end < w.size() && lower(w[end])) ++end;
    a += w.substr(from, k - from) + "_" + w.substr(k, end - k);
    from = end;
    k = end - 1;
  }
  a += w.substr(from);
  std::string b;
  for (size_t k = 0; k < a.size(); ++k) {
    if (k + 1 < a.size() && lower(a[k]) && upper(a[k + 1])) {
      b += a[k];
      b += '_';
      b += a[k + 1];
      ++k;
    } else {
      b += a[k];
    }
  }
  std::transform(b.begin(), b.end(), b.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return b;
}

namespace {

std::mutex &names_mu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, int64_t> &name_counts() {
  static std::map<std::string, int64_t> m;
  return m;
}

}  // namespace

std::string unique_name(const std::string &base) {
  std::lock_guard<std::mutex> lock(names_mu());
  const int64_t n = name_counts()[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

void clear_session() {
  std::lock_guard<std::mutex> lock(names_mu());
  name_counts().clear();
}

// ------------------------------------------------------------------ Layer

namespace {
// "package>Name" -> "Name" (Keras's registered names); other names as they are.
std::string class_part(const std::string &name) {
  const size_t gt = name.rfind('>');
  return gt == std::string::npos ? name : name.substr(gt + 1);
}

// Keras's input autocast (DTypePolicy.convert_input) for one input of a layer that autocasts:
// a floating input of another dtype than the compute dtype is cast to it.
bool casts_input(bool autocast, const DTypePolicy &policy, const Tensor &t) {
  return autocast && is_floating(t.dtype()) && t.dtype() != policy.compute_dtype;
}
}  // namespace

std::optional<PartialShape> dims_of_json(const Config::Json &v) {
  if (!v.is_array()) return std::nullopt;
  PartialShape out;
  for (const Config::Json &d : v) {
    if (d.is_null())
      out.push_back(kUnknownDim);
    else if (d.is_number_integer() && d.get<int64_t>() >= 0)
      out.push_back(d.get<int64_t>());
    else
      return std::nullopt;
  }
  return out;
}

PartialShape config_dims(const Config &config, const std::string &key, const std::string &owner) {
  const Config::Json &v = config.json().at(key);
  std::optional<PartialShape> dims = dims_of_json(v);
  if (!dims)
    fail(Code::kInvalidArgument, owner, ": ", key, " is ", v.dump(),
         "; expected a shape: a list of non-negative ints and nulls");
  return std::move(*dims);
}

Layer::Layer(std::string class_name, ConfigReader &base)
    : class_name_(class_part(class_name)),
      registered_name_(class_name_ == class_name ? std::string() : class_name),
      id_(next_object_id()) {
  require_utf8(class_name, "Layer", "the class name");  // it reaches configs as text
  if (class_name_.empty()) fail(Code::kInvalidArgument, "layer class name '", class_name, "' has no class after '>'");
  const std::optional<std::string> name = base.get_optional_string("name");
  if (name && name->empty()) fail(Code::kInvalidArgument, class_name_, ": name must not be empty");
  if (name && name->find('/') != std::string::npos)
    fail(Code::kInvalidArgument, class_name_, ": name '", *name, "' must not contain '/' (it separates weight paths)");
  name_ = name ? *name : unique_name(to_snake_case(class_name_));
  trainable_ = base.get_bool("trainable", true);
  // Keras's legacy shape arguments: input_shape (with batch_size) or tf.keras 2's batch_input_shape.
  const bool has_shape = base.has("input_shape"), has_batch_shape = base.has("batch_input_shape");
  if (has_shape && has_batch_shape)
    fail(Code::kInvalidArgument, class_name_, ": give input_shape or batch_input_shape, not both");
  if (has_shape) {
    input_shape_arg_ = PartialShape{base.has("batch_size") ? base.get_int("batch_size") : kUnknownDim};
    if ((*input_shape_arg_)[0] < kUnknownDim || (*input_shape_arg_)[0] == 0)
      fail(Code::kInvalidArgument, class_name_, ": batch_size is ", (*input_shape_arg_)[0],
           "; expected a positive int");
    const PartialShape dims = config_dims(base.config(), "input_shape", class_name_);
    input_shape_arg_->insert(input_shape_arg_->end(), dims.begin(), dims.end());
  } else if (has_batch_shape) {
    input_shape_arg_ = config_dims(base.config(), "batch_input_shape", class_name_);
    if (input_shape_arg_->empty())
      fail(Code::kInvalidArgument, class_name_,
           ": batch_input_shape is empty; expected the batch axis first");
  }
  policy_ = policy_from_config(base.config(), "dtype", class_name_);
  base.accept({"dtype"});
  // Keras 3's quantized and LoRA layers (its configs carry "quantization_config": null).
  if (base.has("quantization_config"))
    fail(Code::kUnimplemented, class_name_,
         ": quantization_config (Keras's quantized layers) is not supported");
  if (base.has("lora_rank"))
    fail(Code::kUnimplemented, class_name_, ": lora_rank (Keras's LoRA layers) is not supported");
}

Layer::~Layer() = default;

namespace {
// The layer whose build is running its when-built callbacks on this thread: built to them.
thread_local const Layer *t_finishing_build = nullptr;
}  // namespace

bool Layer::built() const { return built_.load(std::memory_order_acquire) || t_finishing_build == this; }

void Layer::set_trainable(bool trainable) {
  std::lock_guard<std::mutex> lock(mu_);
  trainable_ = trainable;
  for (const Weight &w : weights_)
    if (w.trainable) w.variable->set_trainable(trainable);
  for (const LayerPtr &l : layers_) l->set_trainable(trainable);
}

void Layer::check_input(size_t i, size_t count, int64_t rank, int64_t last,
                        const std::function<PartialShape()> &shape) const {
  const InputSpec &spec = input_spec_;
  auto which = [&] { return count > 1 ? "input " + std::to_string(i) : std::string("input"); };
  if (spec.ndim >= 0 && rank != spec.ndim)
    bad_input(which(), " has shape ", partial_shape_string(shape()), "; expected rank ", spec.ndim);
  if (spec.min_ndim >= 0 && rank < spec.min_ndim)
    bad_input(which(), " has shape ", partial_shape_string(shape()), "; expected rank >= ", spec.min_ndim);
  if (spec.last_dim >= 0 && (rank == 0 || (last >= 0 && last != spec.last_dim)))
    bad_input(which(), " has shape ", partial_shape_string(shape()), "; expected the last axis to be ",
              spec.last_dim, " (the layer was built for it)");
}

void Layer::check_input_spec(const std::vector<PartialShape> &shapes) const {
  for (size_t i = 0; i < shapes.size(); ++i) {
    const PartialShape &s = shapes[i];
    check_input(i, shapes.size(), static_cast<int64_t>(s.size()), s.empty() ? -1 : s.back(),
                [&] { return s; });
  }
}

void Layer::check_input_spec(const std::vector<Tensor> &inputs) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape &s = inputs[i].shape();
    check_input(i, inputs.size(), s.rank(), s.rank() ? s[s.rank() - 1] : -1,
                [&] { return partial_shape_of(s); });
  }
}

void Layer::build(const std::vector<PartialShape> &input_shapes) { build_once(input_shapes, false); }

void Layer::build_once(const std::vector<PartialShape> &input_shapes, bool from_call) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (building_ && builder_ == std::this_thread::get_id())
      fail(Code::kFailedPrecondition, "layer '", name_, "': build called again while it is building");
    // Another thread's build (first calls from several threads at once): wait for it, then use
    // its layer, or build when it failed.
    built_cv_.wait(lock, [&] { return !building_; });
    if (built_) return;
    building_ = true;
    builder_ = std::this_thread::get_id();
    building_from_call_ = from_call;
  }
  try {
    check_input_spec(input_shapes);
    // A build that calls the layer (a custom model's build) reads variables as its call does.
    autodiff::AutocastScope scope(autocast_scope_dtype());
    build_impl(input_shapes);
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      building_ = false;
    }
    built_cv_.notify_all();
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    build_shapes_ = input_shapes;
  }
  // The callbacks (a deferred checkpoint restore) run before any other thread may call the layer:
  // they see it built on this thread, and the others wait until they have run, so no call reads
  // the initial weights of a layer whose values are on their way. A callback another thread adds
  // meanwhile (a second restore) runs in the next round; the layer is built once a round finds
  // none. Every callback runs even when one fails; the first failure is the build's.
  std::exception_ptr first;
  const Layer *previous = t_finishing_build;
  t_finishing_build = this;
  for (;;) {
    std::vector<std::function<void()>> then;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (when_built_.empty()) {
        building_ = false;
        built_.store(true, std::memory_order_release);
        break;
      }
      then.swap(when_built_);
    }
    for (const std::function<void()> &f : then) {
      try {
        f();
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
  }
  t_finishing_build = previous;
  built_cv_.notify_all();
  if (first) std::rethrow_exception(first);
}

bool Layer::call_when_built(std::function<void()> f) {
  if (!f) fail(Code::kInvalidArgument, "layer '", name_, "': call_when_built: empty callback");
  std::lock_guard<std::mutex> lock(mu_);
  if (built_ || t_finishing_build == this) return false;
  when_built_.push_back(std::move(f));
  return true;
}

void Layer::build_impl(const std::vector<PartialShape> &) {}

std::vector<Tensor> Layer::operator()(const std::vector<Tensor> &inputs, const CallContext &ctx) {
  return call(inputs, ctx).outputs;
}

std::vector<Tensor> Layer::checked_masks(const std::vector<Tensor> &inputs, const CallContext &ctx) const {
  if (!ctx.mask) return {};
  const std::vector<Tensor> &masks = *ctx.mask;
  if (masks.size() != inputs.size())
    bad_input("got ", masks.size(), " masks for ", inputs.size(),
              " inputs; expected one per input (an empty one for an input without a mask)");
  if (raw_masks_) return masks;
  std::vector<Tensor> out(masks.size());
  for (size_t i = 0; i < masks.size(); ++i) {
    if (!masks[i].defined()) continue;
    const Shape &ms = masks[i].shape(), &xs = inputs[i].shape();
    if (!xs.starts_with(ms))
      bad_input("mask ", i, " has shape ", ms.to_string(), "; expected the leading dims of input ", i,
                "'s shape ", xs.to_string());
    out[i] = masks[i].dtype() == DType::kBool
                 ? masks[i]
                 : ops::not_equal(masks[i], ops::zeros(Shape({}), masks[i].dtype()));
  }
  return out;
}

namespace {
// The training of the innermost Layer::call running on this thread (nullptr outside any call).
thread_local const bool *t_enclosing_training = nullptr;

class EnclosingTraining {
 public:
  explicit EnclosingTraining(const bool *training) : previous_(t_enclosing_training) {
    t_enclosing_training = training;
  }
  ~EnclosingTraining() { t_enclosing_training = previous_; }
  EnclosingTraining(const EnclosingTraining &) = delete;
  EnclosingTraining &operator=(const EnclosingTraining &) = delete;

 private:
  const bool *previous_;
};
}  // namespace

CallResult Layer::call(const std::vector<Tensor> &inputs, const CallContext &ctx) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      bad_input("input ", i, " is empty (an undefined tensor); every input needs a tensor");
  if (!built()) {
    std::vector<PartialShape> shapes;
    shapes.reserve(inputs.size());
    for (const Tensor &t : inputs) shapes.push_back(partial_shape_of(t.shape()));
    build_once(shapes, true);
  }
  check_input_spec(inputs);
  // Keras's __call__: without masks given, the inputs' own (the _keras_mask a masking layer's
  // output carries) are the call's.
  std::vector<Tensor> carried;
  CallContext given = ctx;
  if (!ctx.mask)
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].keras_mask().defined()) {
        carried.resize(inputs.size());
        carried[i] = inputs[i].keras_mask();
      }
  if (!carried.empty()) given.mask = &carried;
  const std::vector<Tensor> masks = checked_masks(inputs, given);
  CallContext inner = ctx;
  inner.mask = masks.empty() ? nullptr : &masks;
  if (ctx.training_from_context && t_enclosing_training) inner.training = *t_enclosing_training;
  inner.training_from_context = false;
  const EnclosingTraining enclosing(&inner.training);
  clear_call_losses();
  // Keras's input autocast (DTypePolicy.convert_input): floating inputs to the compute dtype.
  // Models leave it to their layers, as Keras's Functional models do (a float32 Sequential of
  // float64 layers must not round its float64 inputs through float32).
  std::vector<Tensor> cast_inputs;
  if (!is_model_)
    for (size_t i = 0; i < inputs.size(); ++i)
      if (casts_input(autocast_, policy_, inputs[i])) {
        if (cast_inputs.empty()) cast_inputs = inputs;
        cast_inputs[i] = ops::cast(inputs[i], policy_.compute_dtype);
      }
  autodiff::AutocastScope scope(autocast_scope_dtype());
  CallResult result = call_with_masks(cast_inputs.empty() ? inputs : cast_inputs, inner);
  result.masks.resize(result.outputs.size());  // Keras zips masks with outputs: the rest have none
  // Keras's _set_mask_metadata: each output carries its mask, for the next layer and the loss.
  for (size_t i = 0; i < result.outputs.size(); ++i)
    if (result.masks[i].defined() && result.outputs[i].defined())
      result.outputs[i] = result.outputs[i].with_keras_mask(result.masks[i]);
  if (has_output_shapes_.load(std::memory_order_acquire)) return result;
  std::lock_guard<std::mutex> lock(mu_);
  if (output_shapes_.empty())
    for (const Tensor &t : result.outputs) {
      PartialShape s = partial_shape_of(t.shape());
      if (!s.empty()) s[0] = kUnknownDim;
      output_shapes_.push_back(std::move(s));
    }
  has_output_shapes_.store(!output_shapes_.empty(), std::memory_order_release);
  return result;
}

std::optional<CallResult> Layer::call_fused(const std::vector<Tensor> &inputs, Layer &next,
                                            const CallContext &ctx) {
  for (const Tensor &t : inputs)  // an undefined input fails in call() with its message; a
    if (!t.defined() || t.keras_mask().defined()) return std::nullopt;  // masked one takes call()
  // fuses_with first: most pairs never fuse, and it is the cheapest test for them.
  if (!fuses_with(next, inputs) || ctx.mask || is_model_ || next.is_model_ || !built() || !next.built())
    return std::nullopt;
  for (const Tensor &t : inputs)
    if (casts_input(autocast_, policy_, t)) return std::nullopt;
  if (autocast_scope_dtype() || next.autocast_scope_dtype()) return std::nullopt;
  check_input_spec(inputs);
  clear_call_losses();
  next.clear_call_losses();
  autodiff::AutocastScope scope(std::nullopt);  // as each call would set it: no variable casts
  CallResult result;
  result.outputs = call_fused_impl(inputs, next, ctx);
  result.masks.resize(result.outputs.size());
  return result;
}

bool Layer::fuses_with(const Layer &, const std::vector<Tensor> &) const { return false; }

std::vector<Tensor> Layer::call_fused_impl(const std::vector<Tensor> &, const Layer &next,
                                           const CallContext &) {
  fail(Code::kInternal, describe(), " does not fuse with layer '", next.name(), "'");
}

std::optional<DType> Layer::autocast_scope_dtype() const {
  const std::optional<DType> current = autodiff::AutocastScope::current();
  if (!autocast_ || !is_floating(policy_.compute_dtype)) return std::nullopt;
  if (current || policy_.mixed()) return policy_.compute_dtype;
  return std::nullopt;
}

CallResult Layer::call_with_masks(const std::vector<Tensor> &inputs, const CallContext &ctx) {
  CallResult r;
  r.outputs = call_impl(inputs, ctx);
  r.masks = compute_mask(inputs, ctx.mask ? *ctx.mask : std::vector<Tensor>{});
  return r;
}

std::vector<Tensor> Layer::compute_mask(const std::vector<Tensor> &,
                                        const std::vector<Tensor> &previous_masks) {
  if (!supports_masking()) return {};
  return previous_masks;
}

std::vector<int64_t> Layer::state_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_size_;
}

int64_t Layer::output_size() const {
  const std::vector<int64_t> s = state_size();
  if (s.empty()) bad_input("is not a recurrent cell (it has no state_size)");
  return s[0];
}

void Layer::set_state_size(std::vector<int64_t> sizes) {
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] <= 0) bad_input("state_size[", i, "] is ", sizes[i], "; expected a positive size");
  std::lock_guard<std::mutex> lock(mu_);
  state_size_ = std::move(sizes);
}

const Tensor *input_mask(const CallContext &ctx, size_t i) {
  if (!ctx.mask || i >= ctx.mask->size() || !(*ctx.mask)[i].defined()) return nullptr;
  return &(*ctx.mask)[i];
}

Tensor Layer::operator()(const Tensor &input, bool training) {
  CallContext ctx;
  ctx.training = training;
  std::vector<Tensor> out = (*this)({input}, ctx);
  if (out.size() != 1)
    fail(Code::kInvalidArgument, describe(), " returned ", out.size(),
         " outputs; expected one for a single-tensor call");
  return out[0];
}

// A weight's name (one edge of a checkpoint's object graph): not empty, no '/'.
static void require_weight_name(const std::string &layer, const std::string &name, const char *what) {
  if (name.empty() || name.find('/') != std::string::npos)
    fail(Code::kInvalidArgument, "layer '", layer, "': ", what, ": name '", name,
         "' must be non-empty and without '/'");
}

VariablePtr Layer::add_weight(const std::string &name, const Shape &shape, DType dtype,
                              const Initializer &initializer, bool trainable, RegularizerPtr regularizer) {
  require_weight_name(name_, name, "add_weight");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (built_)
      fail_layer(Code::kFailedPrecondition, "add_weight('", name,
                 "') after the layer was built; create weights in __init__ or build");
    for (const Weight &w : weights_)
      if (w.name == name) bad_input("add_weight: a weight named '", name, "' already exists in this layer");
  }
  Tensor init = initializer(shape, dtype);
  if (init.shape() != shape || init.dtype() != dtype)
    fail(Code::kInvalidArgument, "layer '", name_, "': initializer ", initializer.class_name(), " gave ",
         init.description(), "; expected ", dtype_name(dtype), shape.to_string());
  auto v = std::make_shared<Variable>(path() + "/" + name, init, trainable && trainable_);
  std::lock_guard<std::mutex> lock(mu_);
  weights_.push_back(Weight{v, name, std::move(regularizer), trainable});
  return v;
}

void Layer::track_variable(const VariablePtr &variable, const std::string &name) {
  if (!variable) fail(Code::kInvalidArgument, "layer '", name_, "': cannot track a null variable");
  require_weight_name(name_, name, "track_variable");
  require_utf8(name, "Layer.track_variable", "the name");
  std::lock_guard<std::mutex> lock(mu_);
  if (built_)
    fail_layer(Code::kFailedPrecondition, "cannot track the variable '", variable->name(), "' as '", name,
               "' after the layer was built; create weights in __init__ or build");
  for (const Weight &w : weights_)
    if (w.variable == variable) return;
  const Weight weight{variable, name, nullptr, variable->trainable()};
  if (!trainable_) variable->set_trainable(false);  // as add_weight's under a frozen layer
  for (Weight &w : weights_)
    if (w.name == name) {
      w = weight;
      return;
    }
  weights_.push_back(weight);
}

void Layer::track(const LayerPtr &layer, const std::string &attribute) {
  if (!layer) fail(Code::kInvalidArgument, "layer '", name_, "': cannot track a null layer");
  if (!attribute.empty()) {
    require_utf8(attribute, "Layer.track", "the attribute name");
    if (attribute.front() == '/' || attribute.back() == '/' || attribute.find("//") != std::string::npos)
      fail(Code::kInvalidArgument, "layer '", name_, "': the attribute name '", attribute,
           "' has an empty part; expected an attribute name (\"dense1\") or one with an element index "
           "(\"blocks/0\")");
  }
  for (const Layer *p = this; p; p = p->parent_)
    if (p == layer.get())
      fail(Code::kInvalidArgument, "layer '", name_, "': tracking '", layer->name(),
           "' would make a layer its own sub-layer");
  std::lock_guard<std::mutex> lock(mu_);
  if (built_ && !building_)
    fail_layer(Code::kFailedPrecondition, "cannot track the new sub-layer '", layer->name(),
               "' after the layer was built");
  if (!attribute.empty()) {
    // The attribute now names this layer; what it or its elements named before is dropped, and
    // so is a path it now sits below ("blocks" when "blocks/0" comes).
    auto under = [](const std::string &path, const std::string &top) {
      return path.size() > top.size() && path.compare(0, top.size(), top) == 0 && path[top.size()] == '/';
    };
    bool placed = false;
    std::vector<LayerPtr> displaced;
    for (auto &a : attributes_)
      if (a.first == attribute) {
        displaced.push_back(a.second);
        a.second = layer;  // keeps its place in the order
        placed = true;
      }
    auto stale = [&](const std::pair<std::string, LayerPtr> &a) {
      return under(a.first, attribute) || under(attribute, a.first);
    };
    for (const auto &a : attributes_)
      if (stale(a)) displaced.push_back(a.second);
    attributes_.erase(std::remove_if(attributes_.begin(), attributes_.end(), stale), attributes_.end());
    if (!placed) attributes_.emplace_back(attribute, layer);
    // Keras's __setattr__ drops what the attribute held: a layer no attribute names any more, and
    // that was never tracked without one, is no longer a sub-layer (its weights leave the model's).
    for (const LayerPtr &d : displaced) {
      if (d == layer || positional_.count(d.get()) ||
          std::any_of(attributes_.begin(), attributes_.end(),
                      [&](const std::pair<std::string, LayerPtr> &a) { return a.second == d; }))
        continue;
      const auto it = std::find(layers_.begin(), layers_.end(), d);
      if (it == layers_.end()) continue;
      if (d->parent_ == this) d->parent_ = nullptr;
      layers_.erase(it);
    }
  } else {
    positional_.insert(layer.get());
  }
  for (const LayerPtr &l : layers_)
    if (l == layer) return;
  layers_.push_back(layer);
  if (!layer->parent_) layer->parent_ = this;
}

void Layer::untrack_last() {
  std::lock_guard<std::mutex> lock(mu_);
  if (layers_.empty()) return;
  if (layers_.back()->parent_ == this) layers_.back()->parent_ = nullptr;
  const LayerPtr last = layers_.back();
  positional_.erase(last.get());
  attributes_.erase(
      std::remove_if(attributes_.begin(), attributes_.end(),
                     [&](const std::pair<std::string, LayerPtr> &a) { return a.second == last; }),
      attributes_.end());
  layers_.pop_back();
}

void Layer::mark_unbuilt() {
  std::lock_guard<std::mutex> lock(mu_);
  built_.store(false, std::memory_order_release);
}

std::vector<PartialShape> Layer::output_shapes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return output_shapes_;
}

void Layer::set_output_shapes(const std::vector<PartialShape> &shapes) {
  std::lock_guard<std::mutex> lock(mu_);
  output_shapes_ = shapes;
  has_output_shapes_.store(!output_shapes_.empty(), std::memory_order_release);
}

std::shared_ptr<void> Layer::attachment() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attachment_;
}

void Layer::set_attachment(std::shared_ptr<void> attachment) {
  std::lock_guard<std::mutex> lock(mu_);
  attachment_ = std::move(attachment);
}

void Layer::add_loss(const Tensor &loss) {
  if (!loss.defined()) fail(Code::kInvalidArgument, "layer '", name_, "': add_loss: undefined tensor");
  std::lock_guard<std::mutex> lock(mu_);
  call_losses_.push_back(loss);
  has_call_losses_.store(true, std::memory_order_release);
}

void Layer::clear_call_losses() {
  if (!has_call_losses_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mu_);
  call_losses_.clear();
  has_call_losses_.store(false, std::memory_order_release);
}

std::string Layer::path() const { return parent_ ? parent_->path() + "/" + name_ : name_; }

void Layer::collect_variables(std::vector<VariablePtr> &out, std::vector<uint64_t> &seen) const {
  std::vector<Weight> weights;
  std::vector<LayerPtr> layers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    weights = weights_;
    layers = layers_;
  }
  auto add = [&](const VariablePtr &v) {
    if (std::find(seen.begin(), seen.end(), v->id()) != seen.end()) return;
    seen.push_back(v->id());
    out.push_back(v);
  };
  for (const Weight &w : weights)
    if (w.trainable) add(w.variable);
  for (const Weight &w : weights)
    if (!w.trainable) add(w.variable);
  for (const LayerPtr &l : layers) l->collect_variables(out, seen);
}

std::vector<VariablePtr> Layer::variables() const {
  std::vector<VariablePtr> out;
  std::vector<uint64_t> seen;
  collect_variables(out, seen);
  return out;
}

std::vector<VariablePtr> Layer::trainable_variables() const {
  std::vector<VariablePtr> out;
  if (!trainable_) return out;
  for (const VariablePtr &v : variables())
    if (v->trainable()) out.push_back(v);
  return out;
}

std::vector<VariablePtr> Layer::non_trainable_variables() const {
  std::vector<VariablePtr> all = variables();
  if (!trainable_) return all;
  std::vector<VariablePtr> out;
  for (const VariablePtr &v : all)
    if (!v->trainable()) out.push_back(v);
  return out;
}

void Layer::collect_losses(std::vector<Tensor> &out) const {
  std::vector<Weight> weights;
  std::vector<LayerPtr> layers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.insert(out.end(), call_losses_.begin(), call_losses_.end());
    weights = weights_;
    layers = layers_;
  }
  for (const Weight &w : weights)
    if (w.regularizer) out.push_back((*w.regularizer)(w.variable->value()));
  for (const LayerPtr &l : layers) l->collect_losses(out);
}

std::vector<Tensor> Layer::losses() const {
  std::vector<Tensor> out;
  collect_losses(out);
  return out;
}

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const VariablePtr &v : variables()) n += v->shape().num_elements();
  return n;
}

Config Layer::get_config() const {
  Config c;
  c.set("name", name_).set("trainable", trainable_);
  set_policy_config(c, "dtype", policy_);
  add_config(c);
  return c;
}

void Layer::add_config(Config &) const {}

std::vector<PartialShape> Layer::compute_output_shape(const std::vector<PartialShape> &input_shapes) {
  // Run the layer on zeros twice, with unknown dims set to 2 and then 3: output dims that
  // differ between the runs follow an unknown input dim and are reported unknown. Shapes other than
  // the build's are checked against the input spec first, as a call's are.
  build(input_shapes);
  check_input_spec(input_shapes);
  autodiff::AutocastScope scope(autocast_scope_dtype());
  auto run = [&](int64_t fill) {
    std::vector<Tensor> zeros;
    for (const PartialShape &s : input_shapes) {
      std::vector<int64_t> d(s);
      for (int64_t &x : d)
        if (x < 0) x = fill;
      zeros.push_back(ops::zeros(Shape(d), policy_.compute_dtype));
    }
    std::vector<Tensor> out = call_impl(zeros, CallContext{});
    std::vector<PartialShape> shapes;
    for (const Tensor &t : out) shapes.push_back(partial_shape_of(t.shape()));
    return shapes;
  };
  std::vector<PartialShape> a = run(2);
  bool any_unknown = false;
  for (const PartialShape &s : input_shapes)
    for (int64_t d : s) any_unknown |= d < 0;
  if (!any_unknown) return a;
  const std::vector<PartialShape> b = run(3);
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    for (size_t k = 0; k < a[i].size() && k < b[i].size(); ++k)
      if (a[i][k] != b[i][k]) a[i][k] = kUnknownDim;
  return a;
}

// ------------------------------------------------------------------ registry

namespace {

// The built-in classes and the custom ones (register_layer), apart: a custom class never takes a
// built-in name. Never destroyed: a custom class's factory may own foreign state (a Python
// callable) that must not be released after its runtime has shut down at process exit.
FactoryRegistry<LayerFactory> &builtin_registry() {
  static auto *r = new FactoryRegistry<LayerFactory>;
  return *r;
}
FactoryRegistry<LayerFactory> &custom_registry() {
  static auto *r = new FactoryRegistry<LayerFactory>;
  return *r;
}

}  // namespace

void add_layer_factory(const std::string &class_name, LayerFactory factory) {
  builtin_registry().set(class_name, std::move(factory));
}

bool builtin_layer(const std::string &class_name) {
  register_builtin_layers();
  return builtin_registry().has(class_name);
}

void register_layer(const std::string &class_name, LayerFactory factory) {
  if (class_name.empty()) fail(Code::kInvalidArgument, "register_layer: class name must not be empty");
  require_utf8(class_name, "register_layer", "the class name");
  if (!factory) fail(Code::kInvalidArgument, "register_layer: '", class_name, "' has no factory");
  if (builtin_layer(class_name))
    fail(Code::kInvalidArgument, "register_layer: '", class_name,
         "' is a built-in layer class; register a custom class under its own name (e.g. 'MyPackage>",
         class_name, "')");
  custom_registry().set(class_name, std::move(factory));
}

void unregister_layer(const std::string &class_name) {
  if (builtin_layer(class_name))
    fail(Code::kInvalidArgument, "unregister_layer: '", class_name, "' is a built-in layer class");
  if (!custom_registry().erase(class_name))
    fail(Code::kNotFound, "unregister_layer: no layer class '", class_name, "' is registered");
}

bool layer_registered(const std::string &class_name) {
  return builtin_layer(class_name) || custom_registry().has(class_name);
}

std::vector<std::string> registered_layers() {
  register_builtin_layers();
  std::vector<std::string> names = builtin_registry().names(), custom = custom_registry().names();
  names.insert(names.end(), custom.begin(), custom.end());
  std::sort(names.begin(), names.end());
  return names;
}

LayerPtr create_layer(const std::string &class_name, const Config &config) {
  register_builtin_layers();
  LayerFactory factory = builtin_registry().get(class_name);
  if (!factory) factory = custom_registry().get(class_name);
  if (!factory) {
    std::string known;
    for (const std::string &n : registered_layers()) known += (known.empty() ? "" : ", ") + n;
    fail(Code::kNotFound, "unknown layer class '", class_name, "'; known: ", known);
  }
  return factory(config);
}

namespace {
FactoryRegistry<LayerAroundFactory> &around_registry() {
  static auto *r = new FactoryRegistry<LayerAroundFactory>;
  return *r;
}
}  // namespace

void add_layer_around_factory(const std::string &class_name, LayerAroundFactory factory) {
  around_registry().set(class_name, std::move(factory));
}

LayerPtr create_layer_around(const std::string &class_name, const Config &config,
                             const std::vector<LayerPtr> &layers) {
  register_builtin_layers();
  const LayerAroundFactory factory = around_registry().get(class_name);
  if (!factory) {
    std::string known;
    for (const std::string &n : around_registry().names()) known += (known.empty() ? "" : ", ") + n;
    fail(Code::kInvalidArgument, "layer class '", class_name,
         "' is not made around given layers; classes that are: ", known);
  }
  for (size_t i = 0; i < layers.size(); ++i)
    if (!layers[i]) fail(Code::kInvalidArgument, class_name, ": layer ", i, " is null");
  return factory(config, layers);
}

Config serialize_layer(const Layer &layer) {
  Config c;
  c.set("class_name", layer.class_name());
  if (!layer.registered_name().empty()) c.set("registered_name", layer.registered_name());
  c.set("config", layer.get_config());
  return c;
}

LayerPtr deserialize_layer(const Config &serialized) {
  ConfigReader r(serialized, "layer");
  const std::string cls = r.get_string("class_name", "");
  if (cls.empty()) fail(Code::kInvalidArgument, "layer: a serialized layer needs a 'class_name'");
  const std::optional<Config> config = r.get_optional_config("config");
  const std::optional<std::string> registered = r.get_optional_string("registered_name");
  r.accept({"module", "build_config"});
  r.finish();
  // Keras looks the registered name up first ("Custom>MyDense"), then the class name.
  const std::string &key = registered && layer_registered(*registered) ? *registered : cls;
  return create_layer(key, config.value_or(Config()));
}

}  // namespace kiln::layers
