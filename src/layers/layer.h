// Layer: Keras's layer contract (Keras 3 layers/layer.py) in C++, the one object model under the
// C, C++ and Python APIs. A layer has a unique name, builds once from its first inputs' shapes
// (lazily on the first call, or explicitly), then is locked; it owns weights created with
// add_weight and tracks sub-layers, both in creation order; it lists variables depth first in
// that order; it checks an input spec, collects losses, and describes itself with get_config
// for reconstruction through the registry (from_config).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "autodiff/variable.h"
#include "core/config.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/gemv.h"
#include "layers/initializers.h"
#include "layers/policy.h"
#include "layers/regularizers.h"

namespace kiln::layers {

using autodiff::Variable;
using VariablePtr = std::shared_ptr<Variable>;
// A shape whose dims may be unknown (-1, Keras's None): the batch dim of model.build((None, 784)).
using PartialShape = std::vector<int64_t>;
constexpr int64_t kUnknownDim = -1;
// A shape as Keras writes it (a list of non-negative ints and nulls); nullopt for anything else.
std::optional<PartialShape> dims_of_json(const Config::Json &v);
// A config's shape under key, as dims_of_json reads it; INVALID_ARGUMENT naming owner and key for
// anything else.
PartialShape config_dims(const Config &config, const std::string &key, const std::string &owner);

std::string partial_shape_string(const PartialShape &s);  // "(None, 784)"
PartialShape partial_shape_of(const Shape &s);

// Keras's InputSpec: what a layer accepts, checked before build and call.
struct InputSpec {
  int64_t ndim = -1;      // exact rank, or -1
  int64_t min_ndim = -1;  // minimum rank, or -1
  int64_t last_dim = -1;  // required size of the last axis, or -1 (set by build: Dense's input dim)
  std::optional<DType> dtype;
};

// Keras's to_snake_case of a class name: "LayerNormalization" -> "layer_normalization",
// "Conv2D" -> "conv2d", "MyDense" -> "my_dense".
std::string to_snake_case(const std::string &class_name);
// A unique name from a per-process counter per base name: "dense", "dense_1", "dense_2" ...
std::string unique_name(const std::string &base);
// keras.backend.clear_session(): name counters start again.
void clear_session();

// What a call gets besides its inputs. mask: Keras's input masks, one per input (an undefined
// Tensor where an input has none), or nullptr when no input has one. A mask is bool and has the
// leading dims of its input ([B, T] for a [B, T, F] input): true marks a valid step.
// training_from_context: the caller gave no training (Keras's training=None). Layer::call then
// takes the training of the layer call that encloses this one on this thread (Keras's call
// context: a Dropout called inside a custom layer's call drops when the model is called with
// training=True), or `training` when no call encloses it.
struct CallContext {
  bool training = false;
  bool training_from_context = false;
  const std::vector<Tensor> *mask = nullptr;
};

// Input i's mask in ctx, or nullptr when it has none.
const Tensor *input_mask(const CallContext &ctx, size_t i);

// A call's outputs and their masks (Keras's _keras_mask): one mask per output, undefined where an
// output has none.
struct CallResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> masks;
};

class Layer : public std::enable_shared_from_this<Layer> {
 public:
  // Reads the base keys of every layer's config (name, trainable, dtype); subclasses read
  // theirs from the same reader and call reader.finish() at the end of their constructor.
  Layer(std::string class_name, ConfigReader &base);
  virtual ~Layer();
  Layer(const Layer &) = delete;
  Layer &operator=(const Layer &) = delete;

  const std::string &class_name() const { return class_name_; }
  // How errors name the layer: "layer '<name>' (<class name>)".
  std::string describe() const { return "layer '" + name() + "' (" + class_name_ + ")"; }
  // Fails naming the layer: "layer '<name>' (<class name>): " then the parts; bad_input with
  // InvalidArgument, fail_layer with the code given.
  template <typename... Parts>
  [[noreturn]] void bad_input(Parts &&...parts) const {
    fail(Code::kInvalidArgument, describe(), ": ", std::forward<Parts>(parts)...);
  }
  template <typename... Parts>
  [[noreturn]] void fail_layer(Code code, Parts &&...parts) const {
    fail(code, describe(), ": ", std::forward<Parts>(parts)...);
  }
  // Keras's registered name ("Custom>MyDense" for a class registered under package "Custom"):
  // the name its class is registered under, when that differs from class_name; else empty.
  // A layer made with class name "package>Name" has class_name "Name" and this registered name.
  const std::string &registered_name() const { return registered_name_; }
  const std::string &name() const { return name_; }
  // Unique for the process, never reused (bindings map handles to objects with it).
  uint64_t id() const { return id_; }
  bool built() const;
  bool trainable() const { return trainable_; }
  // Keras's legacy input-shape arguments of any layer ("input_shape", with "batch_size", or
  // tf.keras 2's "batch_input_shape"), as a batch shape: a Sequential whose first layer has one
  // starts with an InputLayer of that shape. Not part of the layer's own config.
  const std::optional<PartialShape> &input_shape_arg() const { return input_shape_arg_; }
  // Freezes or unfreezes this layer, its variables and every sub-layer (as Keras).
  void set_trainable(bool trainable);
  // Keras's dtype policy: the config's "dtype" (a policy name or a serialized DTypePolicy), or
  // the global policy when it has none. dtype() is the variable dtype, as Keras's layer.dtype.
  const DTypePolicy &dtype_policy() const { return policy_; }
  DType dtype() const { return policy_.variable_dtype; }
  DType variable_dtype() const { return policy_.variable_dtype; }
  DType compute_dtype() const { return policy_.compute_dtype; }
  // Keras's autocast: a call casts floating inputs to the compute dtype and reads floating
  // variables cast to it (an AutocastScope). Layers that compute in float32 themselves
  // (normalization, Embedding) turn it off.
  bool autocast() const { return autocast_; }
  bool is_model() const { return is_model_; }

  // The Keras __call__: checks the input spec, builds from the inputs' shapes if not built,
  // clears this call's losses, casts floating inputs to the compute dtype (autocast; models
  // leave that to their layers), then call()s inside the layer's AutocastScope, with its
  // training (given, or from the enclosing call: CallContext) as the context of the layer calls
  // made inside it on this thread. Thread-safe for built layers.
  std::vector<Tensor> operator()(const std::vector<Tensor> &inputs, const CallContext &ctx = {});
  Tensor operator()(const Tensor &input, bool training = false);
  // The Keras __call__ with masks: ctx.mask holds the inputs' masks (checked: one per input,
  // each with its input's leading dims; non-bool masks are read as "nonzero"), and the result
  // carries the outputs' masks. Thread-safe for built layers: masks live in the call, not in
  // the layer.
  CallResult call(const std::vector<Tensor> &inputs, const CallContext &ctx = {});
  // next.call(call(inputs)) as one fused computation, for containers that run layers in a
  // chain (Sequential), when this layer can fuse with next (fuses_with) and the call needs none
  // of __call__'s other steps: both built and not models, no masks, no autocast casts or scope.
  // nullopt when the pair does not fuse; the caller then calls them one after the other.
  std::optional<CallResult> call_fused(const std::vector<Tensor> &inputs, Layer &next,
                                       const CallContext &ctx);

  // Keras's supports_masking: the layer passes its input's mask on to its output unchanged
  // (Dense, Dropout, LayerNormalization, ...). Default false.
  bool supports_masking() const { return supports_masking_.load(std::memory_order_relaxed); }
  // Keras's `layer.supports_masking = ...` (built-in layers set it in their constructors).
  void set_supports_masking(bool s) { supports_masking_.store(s, std::memory_order_relaxed); }
  // The layer's call gets its input masks as given (any dtype, any shape; it checks them itself, as
  // Keras's Softmax takes a mask that broadcasts and reads a non-bool one as > 0.5) instead of bool
  // masks of its inputs' leading dims. Set in constructors.
  void set_takes_raw_masks(bool raw) { raw_masks_ = raw; }
  // The SavedModel load option "inference_weights" (ops/dense_options.h): Dense layers then read
  // their kernels rounded to bfloat16 or quantized to int8 in float32 calls no tape records with
  // at most 8 rows. Not part of the config. Sets it on this layer and every sub-layer tracked now.
  void set_inference_weights(kernels::GemvWeights format) {
    inference_weights_.store(format, std::memory_order_relaxed);
    for (const auto &l : layers_) l->set_inference_weights(format);
  }
  kernels::GemvWeights inference_weights() const {
    return inference_weights_.load(std::memory_order_relaxed);
  }
  // Keras compute_mask: the outputs' masks for these inputs and their masks (previous_masks
  // empty, or one per input, undefined for none). Returns one mask per output, undefined for
  // none, or an empty vector for no masks at all. Default: previous_masks when the layer
  // supports masking, else none.
  virtual std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                           const std::vector<Tensor> &previous_masks);
  // Builds once (again is a no-op). Shapes may hold kUnknownDim.
  void build(const std::vector<PartialShape> &input_shapes);
  // Runs f once, right after this layer's build_impl (on the building thread, outside the
  // layer's lock, with the layer built() to that thread only): Keras's deferred restoration, where
  // a checkpoint restored into an unbuilt model assigns its values once the weights exist. Other
  // threads' first calls wait until f has run. Returns false, keeping nothing, when the layer is
  // built already (the caller then acts at once). An exception from f comes out of the build (or
  // the call that built the layer), which has finished: the layer stays built.
  // f must not hold a strong reference to this layer.
  bool call_when_built(std::function<void()> f);
  // The shapes the build saw (Keras's build input shape), for summary and compute_output_shape.
  const std::vector<PartialShape> &build_input_shapes() const { return build_shapes_; }

  // A new weight, tracked in creation order. Allowed before and during build; after build,
  // FAILED_PRECONDITION. Duplicate names in one layer are INVALID_ARGUMENT.
  VariablePtr add_weight(const std::string &name, const Shape &shape, DType dtype,
                         const Initializer &initializer, bool trainable,
                         RegularizerPtr regularizer = nullptr);
  // Tracks a variable made elsewhere as one of this layer's weights, under name (Keras's
  // `self.w = tf.Variable(...)` in a subclassed layer: the attribute name, its checkpoint edge),
  // trainable as the variable is. Allowed when add_weight is. The name given again replaces that
  // weight (Python's reassignment); a variable already among the weights is not added again.
  void track_variable(const VariablePtr &variable, const std::string &name);
  // Tracks a sub-layer (creation order). Allowed until build finishes. A layer tracked twice is
  // listed once. attribute: the attribute a subclassed layer or model keeps it in, which names
  // it in checkpoints as Keras does ("dense1"; "blocks/0" for element 0 of a list attribute,
  // each '/'-separated part an edge of the object graph); empty: none. A layer may have several;
  // an attribute given again now names the new layer (Python's reassignment), and a path under
  // it or above it ("blocks" against "blocks/0") is dropped; a layer they named that no attribute
  // names any more, and that was never tracked without one, is no longer a sub-layer.
  void track(const std::shared_ptr<Layer> &layer, const std::string &attribute = {});
  // Loss terms of the current call (Keras add_loss: activity regularizers and the like).
  void add_loss(const Tensor &loss);

  const std::vector<std::shared_ptr<Layer>> &layers() const { return layers_; }
  // The attributes given to track, in the order first given, each with its layer.
  std::vector<std::pair<std::string, std::shared_ptr<Layer>>> tracked_attributes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attributes_;
  }
  // This layer's own weights (not its sub-layers'), in creation order, each with the name
  // add_weight got ("kernel"): the names a checkpoint's object graph gives them.
  std::vector<std::pair<std::string, VariablePtr>> own_weights() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<std::string, VariablePtr>> out;
    for (const Weight &w : weights_) out.emplace_back(w.name, w.variable);
    return out;
  }
  // Depth-first by creation: this layer's own weights (trainable then non-trainable, each in
  // creation order), then each sub-layer's. A variable shared by two layers is listed once.
  std::vector<VariablePtr> variables() const;
  std::vector<VariablePtr> trainable_variables() const;
  std::vector<VariablePtr> non_trainable_variables() const;
  // Losses of the last call (this layer and sub-layers) plus the weight regularizers' terms,
  // computed now from the current values.
  std::vector<Tensor> losses() const;
  // Sum of the element counts of variables(), trainable_variables(), ...
  int64_t count_params() const;

  // The scope this layer's weight names sit under: parents' names and its own, joined by '/'.
  std::string path() const;

  // Keras get_config: name, trainable, dtype, then the subclass's keys.
  virtual Config get_config() const;
  // Output shapes for input shapes, without running (default: run call on zeros of the shapes
  // with unknown dims set to 1, and report the results with those dims unknown again).
  virtual std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &input_shapes);
  // For summaries: the output shapes a container recorded when it built this layer (unknown
  // batch dims kept), else those of the first call with the batch dim shown unknown; empty
  // before either.
  std::vector<PartialShape> output_shapes() const;
  void set_output_shapes(const std::vector<PartialShape> &shapes);

  const InputSpec &input_spec() const { return input_spec_; }

  // Keras's RNN cell protocol. A cell's call takes its input then its states ([x, s0, s1, ...]) and
  // returns its output then the new states ([y, s0', s1', ...]); state_size gives the states' sizes
  // (each state is [batch, size]), empty for a layer that is not a cell. Built-in cells report
  // their own; any other layer reports what set_state_size gave it (a custom cell's
  // `self.state_size = ...`). output_size is Keras's: the output's size, by default state_size's first.
  virtual std::vector<int64_t> state_size() const;
  virtual int64_t output_size() const;
  // Every size must be positive (INVALID_ARGUMENT otherwise); an empty list makes the layer no cell.
  void set_state_size(std::vector<int64_t> sizes);

  // State a part of the library above layers keeps on this layer, opaque here: train/ keeps a
  // model's compile state in it (optimizer, losses, metrics, stop_training), so a model handle
  // carries it to every API. It must not hold a strong reference back to this layer.
  std::shared_ptr<void> attachment() const;
  void set_attachment(std::shared_ptr<void> attachment);

 protected:
  // Subclass hooks. build_impl creates weights (add_weight) and may set input_spec_;
  // call_impl computes outputs from inputs.
  virtual void build_impl(const std::vector<PartialShape> &input_shapes);
  virtual std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) = 0;
  // The call with masks behind call(): call_impl, then compute_mask for the outputs' masks.
  // Containers (Sequential) override it to carry masks through their sub-layers.
  virtual CallResult call_with_masks(const std::vector<Tensor> &inputs, const CallContext &ctx);
  // Fusion with the next layer of a chain (call_fused): whether this layer computes
  // next(this(inputs)) itself for these inputs, and that computation. Default: never.
  virtual bool fuses_with(const Layer &next, const std::vector<Tensor> &inputs) const;
  virtual std::vector<Tensor> call_fused_impl(const std::vector<Tensor> &inputs, const Layer &next,
                                              const CallContext &ctx);
  // Subclass config keys (appended by get_config after the base keys).
  virtual void add_config(Config &config) const;
  void set_is_model(bool m) { is_model_ = m; }
  void set_autocast(bool a) { autocast_ = a; }
  // The variable-read cast this layer's call runs under (Keras's rule): its compute dtype when
  // it autocasts and is mixed or sits inside a casting layer; none when it does not autocast.
  std::optional<DType> autocast_scope_dtype() const;
  // In build_impl: whether the build runs for a call (whose inputs then go to call_impl), not
  // for an explicit build(shapes).
  bool building_from_call() const { return building_from_call_; }
  // For containers whose layer list changes (Sequential.add/pop): the layer builds again on
  // its next call, and the last tracked layer can be dropped.
  void mark_unbuilt();
  void untrack_last();

  InputSpec input_spec_;

 private:
  friend class LayerTestAccess;
  void check_input_spec(const std::vector<PartialShape> &shapes) const;
  // The same checks on the tensors of a call (no PartialShape built unless one fails).
  void check_input_spec(const std::vector<Tensor> &inputs) const;
  // Input i of count against input_spec_: its rank and last dim (-1: unknown); shape() gives its
  // shape for the message.
  void check_input(size_t i, size_t count, int64_t rank, int64_t last,
                   const std::function<PartialShape()> &shape) const;
  void build_once(const std::vector<PartialShape> &input_shapes, bool from_call);
  std::vector<Tensor> checked_masks(const std::vector<Tensor> &inputs, const CallContext &ctx) const;
  void collect_variables(std::vector<VariablePtr> &out, std::vector<uint64_t> &seen) const;
  void collect_losses(std::vector<Tensor> &out) const;
  void clear_call_losses();

  struct Weight {
    VariablePtr variable;
    std::string name;
    std::shared_ptr<const Regularizer> regularizer;
    bool trainable;  // as created; the variable's own flag also follows the layer's switch
  };

  const std::string class_name_;
  const std::string registered_name_;
  std::string name_;
  const uint64_t id_;
  bool trainable_ = true;
  std::optional<PartialShape> input_shape_arg_;
  DTypePolicy policy_;
  bool autocast_ = true;
  bool is_model_ = false;
  std::atomic<bool> supports_masking_{false};
  bool raw_masks_ = false;
  std::atomic<kernels::GemvWeights> inference_weights_{kernels::GemvWeights::kFloat32};
  Layer *parent_ = nullptr;  // the first layer that tracked this one (weights are named under it)

  mutable std::mutex mu_;  // guards build and the call losses
  // Written under mu_; atomic so that a call of a built layer reads them without taking it (a
  // batch-1 inference makes a few calls of a few microseconds each).
  std::atomic<bool> built_{false};
  std::atomic<bool> has_call_losses_{false};    // call_losses_ is not empty
  std::atomic<bool> has_output_shapes_{false};  // output_shapes_ is not empty
  bool building_ = false;
  bool building_from_call_ = false;  // set with building_, read by the building thread
  std::thread::id builder_;          // the thread building, while building_
  std::condition_variable built_cv_;  // a build ended (built, or failed): other threads' calls wait on it
  std::vector<PartialShape> build_shapes_;
  std::vector<Weight> weights_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<std::pair<std::string, std::shared_ptr<Layer>>> attributes_;  // see track
  std::set<const Layer *> positional_;  // the sub-layers tracked without an attribute (once, at least)
  std::vector<Tensor> call_losses_;
  std::vector<PartialShape> output_shapes_;
  std::shared_ptr<void> attachment_;
  std::vector<std::function<void()>> when_built_;
  std::vector<int64_t> state_size_;  // set_state_size's, under mu_
};

using LayerPtr = std::shared_ptr<Layer>;

// The registry of layer classes by name, which from_config (and the SavedModel) uses. The
// built-in classes are registered first; register_layer adds a custom class (C, C++ or Python
// code's own), replacing an earlier registration of that name. A built-in class name is
// INVALID_ARGUMENT: register a custom class under its own name ("MyPackage>Dense").
using LayerFactory = std::function<LayerPtr(const Config &config)>;
void register_layer(const std::string &class_name, LayerFactory factory);
// Removes a custom class; NOT_FOUND when none has that name, INVALID_ARGUMENT for a built-in.
// A factory running on another thread finishes with the copy it holds.
void unregister_layer(const std::string &class_name);
bool layer_registered(const std::string &class_name);
bool builtin_layer(const std::string &class_name);
std::vector<std::string> registered_layers();
// A new layer of class_name from its config (Keras from_config); NOT_FOUND naming the class
// and listing the known ones for an unknown class.
LayerPtr create_layer(const std::string &class_name, const Config &config);
// A class made around the layer objects given, not copies (RNN, StackedRNNCells: builtins.h);
// INVALID_ARGUMENT for another class or a null layer.
LayerPtr create_layer_around(const std::string &class_name, const Config &config,
                             const std::vector<LayerPtr> &layers);
// Keras's serialize/deserialize form: {"class_name": ..., "config": {...}}, plus
// "registered_name" when the layer has one; deserialize looks a registered name up first.
Config serialize_layer(const Layer &layer);
LayerPtr deserialize_layer(const Config &serialized);

}  // namespace kiln::layers
