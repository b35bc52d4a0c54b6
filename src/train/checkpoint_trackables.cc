// The object kinds of a checkpoint's object graph (checkpoint.h): layers and models, optimizers,
// variables and groups, each with the edges Keras 2.13 gives it, so the keys kiln writes are the
// keys Keras writes for the same model and optimizer.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/utf8.h"
#include "train/checkpoint.h"
#include "train/training_state.h"

namespace kiln::train {

namespace {

using layers::Layer;
using layers::LayerPtr;

// "12" -> 12; anything but a plain decimal number -> -1.
int64_t parse_index(const std::string &s) {
  if (s.empty() || s.size() > 12) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  if (s.size() > 1 && s[0] == '0') return -1;
  return v;
}

TrackableAttribute variable_attribute(const VariablePtr &v) {
  TrackableAttribute a;
  a.full_name = v->name();
  a.dtype = v->dtype();
  a.shape = v->shape();
  a.read = [v] { return v->peek(); };
  a.write = [v](const Tensor &t) { v->assign(t); };
  return a;
}

class VariableTrackable final : public Trackable {
 public:
  explicit VariableTrackable(VariablePtr v) : v_(std::move(v)) {}
  Id id() const override { return Id{v_.get(), ""}; }
  std::string description() const override { return "variable '" + v_->name() + "'"; }
  std::vector<TrackableAttribute> attributes() const override { return {variable_attribute(v_)}; }
  VariablePtr variable() const override { return v_; }

 private:
  VariablePtr v_;
};

// A node with no edges and no values (Keras's empty `_index_dict`).
class EmptyTrackable final : public Trackable {
 public:
  EmptyTrackable(const void *owner, std::string facet) : owner_(owner), facet_(std::move(facet)) {}
  Id id() const override { return Id{owner_, facet_}; }
  std::string description() const override { return facet_; }

 private:
  const void *owner_;
  std::string facet_;
};

// ------------------------------------------------------------------ layers

// Keras's attribute names for the sub-layers of built-in layers that keep them as attributes:
// (class, sub-layer name) -> edge. Other sub-layers get the models' positional edges.
const char *keras_sublayer_edge(const std::string &class_name, const std::string &sub_name) {
  struct Entry {
    const char *cls, *sub, *edge;
  };
  static const Entry kEntries[] = {
      {"MultiHeadAttention", "query", "_query_dense"},
      {"MultiHeadAttention", "key", "_key_dense"},
      {"MultiHeadAttention", "value", "_value_dense"},
      {"MultiHeadAttention", "attention_output", "_output_dense"},
  };
  for (const Entry &e : kEntries)
    if (class_name == e.cls && sub_name == e.sub) return e.edge;
  return nullptr;
}

// The object-graph edges of attribute paths (Layer::track): one edge per first part, in the order
// first given; a part with more below it is a node of its own (Keras's ListWrapper or dict
// wrapper of `self.blocks = [...]`), owned by `owner` under the facet "attribute:<path>".
std::vector<Trackable::Child> attribute_children(const Layer *owner, const std::string &prefix,
                                                 const std::vector<std::pair<std::string, LayerPtr>> &paths);

class AttributeContainerTrackable final : public Trackable {
 public:
  AttributeContainerTrackable(const Layer *owner, std::string path,
                              std::vector<std::pair<std::string, LayerPtr>> below)
      : owner_(owner), path_(std::move(path)), below_(std::move(below)) {}
  Id id() const override { return Id{owner_, "attribute:" + path_}; }
  std::string description() const override {
    return "attribute '" + path_ + "' of layer '" + owner_->name() + "'";
  }
  std::vector<Child> children() const override { return attribute_children(owner_, path_, below_); }

 private:
  const Layer *owner_;
  std::string path_;
  std::vector<std::pair<std::string, LayerPtr>> below_;  // paths relative to path_
};

std::vector<Trackable::Child> attribute_children(const Layer *owner, const std::string &prefix,
                                                 const std::vector<std::pair<std::string, LayerPtr>> &paths) {
  std::vector<Trackable::Child> out;
  std::vector<std::string> heads;
  for (const auto &p : paths) {
    const std::string head = p.first.substr(0, p.first.find('/'));
    if (std::find(heads.begin(), heads.end(), head) == heads.end()) heads.push_back(head);
  }
  for (const std::string &head : heads) {
    std::vector<std::pair<std::string, LayerPtr>> below;
    for (const auto &p : paths) {
      if (p.first == head) {
        out.push_back(Trackable::Child{head, make_trackable(p.second)});
      } else if (p.first.compare(0, head.size() + 1, head + "/") == 0) {
        below.emplace_back(p.first.substr(head.size() + 1), p.second);
      }
    }
    if (!below.empty()) {
      const std::string path = prefix.empty() ? head : prefix + "/" + head;
      out.push_back(Trackable::Child{
          head, std::make_shared<AttributeContainerTrackable>(owner, path, std::move(below))});
    }
  }
  return out;
}

class LayerTrackable final : public Trackable {
 public:
  explicit LayerTrackable(LayerPtr layer) : layer_(std::move(layer)) {}
  Id id() const override { return Id{layer_.get(), ""}; }
  std::string description() const override {
    return "layer '" + layer_->name() + "' (" + layer_->class_name() + ")";
  }
  LayerPtr layer() const override { return layer_; }

  // kiln before 2026-12-06 named every sub-layer by position, attributes or not: a checkpoint
  // written then still restores.
  TrackablePtr child(const std::string &name) const override {
    if (TrackablePtr c = Trackable::child(name)) return c;
    auto starts = [&name](const std::string &prefix) { return name.compare(0, prefix.size(), prefix) == 0; };
    if (!starts("layer-") && !starts("layer_with_weights-")) return nullptr;
    for (const Child &c : positional_children({}))
      if (c.name == name) return c.object;
    return nullptr;
  }

  std::vector<Child> children() const override {
    std::vector<Child> out;
    const bool model = layer_->is_model();
    // Weights first for layers (Keras assigns `self.kernel` in build); models list them after
    // their layers.
    if (!model) add_weights(out);
    // Sub-layers kept in attributes (subclassed layers and models) by their attribute names, as
    // Keras's AutoTrackable; the others by position.
    const std::vector<std::pair<std::string, LayerPtr>> attributes = layer_->tracked_attributes();
    const std::vector<Child> named = attribute_children(layer_.get(), "", attributes);
    out.insert(out.end(), named.begin(), named.end());
    for (Child &c : positional_children(attributes)) out.push_back(std::move(c));
    if (model) {
      add_weights(out);
      // A compiled model tracks its optimizer (Keras's model.optimizer).
      if (layer_->attachment()) {
        const std::shared_ptr<TrainingState> state = training_state(*layer_);
        if (state->optimizer) out.push_back(Child{"optimizer", make_trackable(state->optimizer)});
      }
    }
    return out;
  }

 private:
  // Keras's functional models (and kiln's for sub-layers without an attribute name): every layer
  // as `layer-<i>`, each one that has weights also as `layer_with_weights-<k>`, which survives
  // inserting weightless layers; built-in layers' sub-layers by Keras's attribute names where kiln
  // knows them. Leaves out the layers that `attributes` names (none left out for an empty list).
  std::vector<Child> positional_children(
      const std::vector<std::pair<std::string, LayerPtr>> &attributes) const {
    const bool model = layer_->is_model();
    int64_t with_weights = 0;
    const std::vector<LayerPtr> subs = layer_->layers();
    std::vector<Child> keras_named, positional;
    for (size_t i = 0; i < subs.size(); ++i) {
      const LayerPtr &l = subs[i];
      if (const char *edge = model ? nullptr : keras_sublayer_edge(layer_->class_name(), l->name())) {
        keras_named.push_back(Child{edge, make_trackable(l)});
        continue;
      }
      const bool has_weights = !l->variables().empty();
      const bool skip = std::any_of(attributes.begin(), attributes.end(),
                                    [&](const std::pair<std::string, LayerPtr> &a) { return a.second == l; });
      if (has_weights && !skip)
        positional.push_back(Child{"layer_with_weights-" + std::to_string(with_weights), make_trackable(l)});
      if (has_weights) ++with_weights;
      if (!skip) positional.push_back(Child{"layer-" + std::to_string(i), make_trackable(l)});
    }
    keras_named.insert(keras_named.end(), positional.begin(), positional.end());
    return keras_named;
  }

  void add_weights(std::vector<Child> &out) const {
    for (const auto &w : layer_->own_weights()) out.push_back(Child{w.first, make_trackable(w.second)});
  }

  LayerPtr layer_;
};

// ------------------------------------------------------------------ optimizers

// Keras 2.13's slot lists of each built-in class: the list attribute, the kiln slot it holds,
// and the build loop that fills it (Keras's `_variables` holds loop 0's slots for every variable,
// then loop 1's ...; inside a loop, each variable's slots in list order). `always`: Keras makes
// the (possibly empty) list even when the slot is off.
struct SlotList {
  const char *list;
  const char *slot;
  int loop;
  bool always;
};

struct OptimizerLayout {
  std::vector<SlotList> lists;
  std::vector<std::string> state_names;  // edges of state_variables()
  // Whether the variables' shapes decide which slots exist (Adafactor's placeholders), so that
  // `_variables` entries cannot be placed before the slots exist.
  bool shaped = false;
};

OptimizerLayout keras_layout(const Optimizer &opt) {
  const std::string &c = opt.class_name();
  OptimizerLayout l;
  if (c == "SGD") {
    l.lists = {{"momentums", "momentum", 0, true}};
  } else if (c == "Adam" || c == "AdamW") {
    l.lists = {{"_momentums", "momentum", 0, true},
               {"_velocities", "velocity", 0, true},
               {"_velocity_hats", "velocity_hat", 1, false}};
  } else if (c == "RMSprop") {
    l.lists = {{"_velocities", "velocity", 0, true},
               {"_momentums", "momentum", 1, true},
               {"_average_gradients", "average_gradient", 2, true}};
  } else if (c == "Adagrad") {
    l.lists = {{"_accumulators", "accumulator", 0, true}};
  } else if (c == "Adadelta") {
    l.lists = {{"_accumulated_grads", "accumulated_grad", 0, true},
               {"_accumulated_delta_vars", "accumulated_delta_var", 0, true}};
  } else if (c == "Adamax") {
    l.lists = {{"_m", "momentum", 0, true}, {"_u", "norm", 0, true}};
  } else if (c == "Lion") {
    l.lists = {{"momentums", "momentum", 0, true}};  // tf.keras's Lion: self.momentums, as SGD's
  } else if (c == "Lamb") {                          // Keras 3's Lamb (tf.keras has none): Adam's lists
    l.lists = {{"_momentums", "momentum", 0, true}, {"_velocities", "velocity", 0, true}};
  } else if (c == "Ftrl") {
    l.lists = {{"_accumulators", "accumulator", 0, true}, {"_linears", "linear", 0, true}};
  } else if (c == "Adafactor") {  // a rank < 2 variable's r and c are placeholders in `_r` and `_c`
    l.lists = {{"_r", "r", 0, true}, {"_c", "c", 0, true}, {"_v", "velocity", 0, true}};
    l.shaped = true;
  } else if (c == "Nadam") {
    l.lists = {{"_momentums", "momentum", 0, true}, {"_velocities", "velocity", 0, true}};
    l.state_names = {"_u_product"};
  }
  // The base optimizer's build makes its lists before the class's: the moving averages (use_ema),
  // then the gradient accumulators (Keras 3's gradient_accumulation_steps).
  std::vector<SlotList> base;
  if (opt.use_ema()) base.push_back({"_model_variables_moving_average", "average", 0, false});
  if (opt.gradient_accumulation_steps())
    base.push_back({"_accumulated_gradients", "gradient_accumulator", static_cast<int>(base.size()), false});
  if (!base.empty() && !l.lists.empty()) {
    for (SlotList &s : l.lists) s.loop += static_cast<int>(base.size());
    l.lists.insert(l.lists.begin(), base.begin(), base.end());
  }
  return l;
}

// The optimizer's slots as Keras's `_variables` orders them after the iterations: (position,
// slot index in slot_names()) per entry, placeholders left out. Classes kiln has no Keras layout
// for use one loop over every slot.
struct SlotOrder {
  std::vector<std::pair<size_t, size_t>> entries;
  bool single_loop = true;  // entry n is (n / S, n % S): its meaning does not depend on how many
                            // variables have slots, nor on their shapes
};

SlotOrder keras_slot_order(const Optimizer &opt, const std::vector<Optimizer::VariableSlots> &slots) {
  const size_t num_positions = slots.size();
  const std::vector<std::string> names = opt.slot_names();
  const OptimizerLayout layout = keras_layout(opt);
  // loop of each slot index
  std::vector<int> loop_of(names.size(), 0);
  if (!layout.lists.empty()) {
    for (size_t k = 0; k < names.size(); ++k) {
      auto it = std::find_if(layout.lists.begin(), layout.lists.end(),
                             [&](const SlotList &s) { return names[k] == s.slot; });
      loop_of[k] = it == layout.lists.end() ? 0 : it->loop;
    }
  }
  SlotOrder order;
  int max_loop = 0;
  for (int lp : loop_of) max_loop = std::max(max_loop, lp);
  std::vector<int> loops;  // loops in use, ascending
  for (int lp = 0; lp <= max_loop; ++lp)
    if (std::count(loop_of.begin(), loop_of.end(), lp)) loops.push_back(lp);
  order.single_loop = loops.size() <= 1 && !layout.shaped;
  for (int lp : loops)
    for (size_t p = 0; p < num_positions; ++p)
      for (size_t k = 0; k < names.size(); ++k)
        if (loop_of[k] == lp && !slots[p].placeholder[k]) order.entries.emplace_back(p, k);
  return order;
}

// The optimizer's learning rate as Keras's float32 `_learning_rate` variable.
class LearningRateTrackable final : public Trackable {
 public:
  explicit LearningRateTrackable(OptimizerPtr opt) : opt_(std::move(opt)) {}
  Id id() const override { return Id{opt_.get(), "_learning_rate"}; }
  std::string description() const override { return "learning rate of optimizer '" + opt_->name() + "'"; }
  std::vector<TrackableAttribute> attributes() const override {
    TrackableAttribute a;
    a.full_name = "learning_rate";
    a.dtype = DType::kFloat32;
    a.shape = Shape{};
    OptimizerPtr opt = opt_;
    a.read = [opt] { return Tensor::scalar<float>(static_cast<float>(opt->learning_rate())); };
    // The float32 value replaces the rate only when it differs from the rate rounded to float32,
    // so a kiln rate that float32 cannot hold exactly survives a round trip.
    a.write = [opt](const Tensor &t) {
      const float v = t.data<float>()[0];
      if (opt->learning_rate_schedule()) return;
      if (static_cast<float>(opt->learning_rate()) != v) opt->set_learning_rate(v);
    };
    a.check = [opt](const Tensor &t) {
      const float v = t.data<float>()[0];
      if (!opt->learning_rate_schedule() && !std::isfinite(v))
        fail(Code::kInvalidArgument, "the checkpoint's learning rate of optimizer '", opt->name(), "' is ", v,
             "; expected a finite float");
    };
    return {a};
  }

 private:
  OptimizerPtr opt_;
};

// Keras's `_variables` list: "0" the iterations, then every slot in Keras's order.
class OptimizerVariablesList final : public Trackable {
 public:
  explicit OptimizerVariablesList(OptimizerPtr opt) : opt_(std::move(opt)) {}
  Id id() const override { return Id{opt_.get(), "_variables"}; }
  std::string description() const override { return "_variables of optimizer '" + opt_->name() + "'"; }

  std::vector<Child> children() const override {
    std::vector<Child> out{Child{"0", make_trackable(opt_->iterations_variable())}};
    const std::vector<Optimizer::VariableSlots> slots = opt_->slot_variables();
    const SlotOrder order = keras_slot_order(*opt_, slots);
    for (size_t n = 0; n < order.entries.size(); ++n) {
      const auto &e = order.entries[n];
      out.push_back(Child{std::to_string(n + 1), make_trackable(slots[e.first].slots[e.second])});
    }
    return out;
  }

  // Entries past "0" are followed only when their meaning does not depend on how many variables
  // have slots (one build loop); otherwise the class's slot lists carry the slots.
  TrackablePtr child(const std::string &name) const override {
    const int64_t n = parse_index(name);
    if (n == 0) return make_trackable(opt_->iterations_variable());
    if (n < 0) return nullptr;
    const std::vector<Optimizer::VariableSlots> slots = opt_->slot_variables();
    const SlotOrder order = keras_slot_order(*opt_, slots);
    if (!order.single_loop || static_cast<size_t>(n) > order.entries.size()) return nullptr;
    const auto &e = order.entries[static_cast<size_t>(n - 1)];
    return make_trackable(slots[e.first].slots[e.second]);
  }

  bool defer_child(const std::string &name, const Tensor &value, std::function<void()> on_restored) override {
    const int64_t n = parse_index(name);
    const size_t per_var = opt_->slot_names().size();
    if (n < 1 || per_var == 0 || !keras_slot_order(*opt_, {}).single_loop) return false;
    const size_t i = static_cast<size_t>(n - 1);
    opt_->defer_slot_restore(i / per_var, opt_->slot_names()[i % per_var], value, std::move(on_restored));
    return true;
  }

 private:
  OptimizerPtr opt_;
};

// One of the class's slot lists (Adam's `_momentums`): entry i is that slot of the i-th variable
// to get slots.
class SlotListTrackable final : public Trackable {
 public:
  SlotListTrackable(OptimizerPtr opt, std::string list, std::string slot)
      : opt_(std::move(opt)), list_(std::move(list)), slot_(std::move(slot)) {}
  Id id() const override { return Id{opt_.get(), list_}; }
  std::string description() const override { return list_ + " of optimizer '" + opt_->name() + "'"; }

  std::vector<Child> children() const override {
    std::vector<Child> out;
    const std::vector<std::string> names = opt_->slot_names();
    const auto k = std::find(names.begin(), names.end(), slot_);
    if (k == names.end()) return out;
    const std::vector<Optimizer::VariableSlots> slots = opt_->slot_variables();
    for (size_t p = 0; p < slots.size(); ++p)
      out.push_back(
          Child{std::to_string(p), make_trackable(slots[p].slots[static_cast<size_t>(k - names.begin())])});
    return out;
  }

  bool defer_child(const std::string &name, const Tensor &value, std::function<void()> on_restored) override {
    const int64_t p = parse_index(name);
    const std::vector<std::string> names = opt_->slot_names();
    if (p < 0 || std::find(names.begin(), names.end(), slot_) == names.end()) return false;
    opt_->defer_slot_restore(static_cast<size_t>(p), slot_, value, std::move(on_restored));
    return true;
  }

 private:
  OptimizerPtr opt_;
  std::string list_, slot_;
};

// An optimizer's own state variable: a value saved in another float dtype (a Nadam
// `_u_product` saved in float64 for a float32 model's, or the other way round) is converted.
class StateVariableTrackable final : public Trackable {
 public:
  explicit StateVariableTrackable(VariablePtr v) : v_(std::move(v)) {}
  Id id() const override { return Id{v_.get(), ""}; }
  std::string description() const override { return "variable '" + v_->name() + "'"; }
  std::vector<TrackableAttribute> attributes() const override {
    TrackableAttribute a = variable_attribute(v_);
    a.convert_float = is_floating(v_->dtype());
    return {a};
  }
  VariablePtr variable() const override { return v_; }

 private:
  VariablePtr v_;
};

class OptimizerTrackable final : public Trackable {
 public:
  explicit OptimizerTrackable(OptimizerPtr opt) : opt_(std::move(opt)) {}
  Id id() const override { return Id{opt_.get(), ""}; }
  std::string description() const override {
    return "optimizer '" + opt_->name() + "' (" + opt_->class_name() + ")";
  }
  OptimizerPtr optimizer() const override { return opt_; }

  std::vector<Child> children() const override {
    std::vector<Child> out;
    out.push_back(Child{"_variables", std::make_shared<OptimizerVariablesList>(opt_)});
    out.push_back(Child{"_iterations", make_trackable(opt_->iterations_variable())});
    if (!opt_->learning_rate_schedule())
      out.push_back(Child{"_learning_rate", std::make_shared<LearningRateTrackable>(opt_)});
    out.push_back(Child{"_index_dict", std::make_shared<EmptyTrackable>(opt_.get(), "_index_dict")});
    const OptimizerLayout layout = keras_layout(*opt_);
    const std::vector<std::string> names = opt_->slot_names();
    for (const SlotList &s : layout.lists) {
      const bool on = std::find(names.begin(), names.end(), s.slot) != names.end();
      if (on || s.always)
        out.push_back(Child{s.list, std::make_shared<SlotListTrackable>(opt_, s.list, s.slot)});
    }
    const std::vector<VariablePtr> state = opt_->state_variables();
    for (size_t i = 0; i < state.size(); ++i) {
      const std::string name =
          i < layout.state_names.size() ? layout.state_names[i] : "_state_variable-" + std::to_string(i);
      out.push_back(Child{name, std::make_shared<StateVariableTrackable>(state[i])});
    }
    return out;
  }

 private:
  OptimizerPtr opt_;
};

// ------------------------------------------------------------------ the global random state

// The object the global random state's nodes name in their ids: one state, however many views.
const char kGlobalRngAnchor = 0;
constexpr const char *kRngStateEdge = "_state-";

// The state as one int64 [1 + k, 2] value (checkpoint.h). A view made for a save holds a snapshot
// taken once, so its edge name, shape and value agree even while other threads draw; a view made
// for a restore knows k from the saved edge and writes the whole state at once.
class GlobalRngStateTrackable final : public Trackable {
 public:
  GlobalRngStateTrackable(int64_t k, GlobalRngState snapshot) : k_(k), snapshot_(std::move(snapshot)) {}
  Id id() const override { return Id{&kGlobalRngAnchor, "_state"}; }
  std::string description() const override { return "the global random state"; }
  std::vector<TrackableAttribute> attributes() const override {
    TrackableAttribute a;
    a.full_name = "global_random_state";
    a.dtype = DType::kInt64;
    a.shape = Shape{k_ + 1, 2};
    const GlobalRngState snapshot = snapshot_;
    a.read = [snapshot] {
      std::vector<int64_t> rows{static_cast<int64_t>(snapshot.seed),
                                static_cast<int64_t>(snapshot.next_unseeded)};
      for (const auto &c : snapshot.op_seed_calls) {
        rows.push_back(c.first);
        rows.push_back(static_cast<int64_t>(c.second));
      }
      const int64_t n = static_cast<int64_t>(rows.size() / 2);
      return Tensor::from_data(DType::kInt64, Shape{n, 2}, rows.data(), rows.size() * sizeof(int64_t));
    };
    const auto decode = [](const Tensor &t) {
      const int64_t *p = t.data<int64_t>();
      GlobalRngState s;
      s.seed = static_cast<uint64_t>(p[0]);
      s.next_unseeded = static_cast<uint64_t>(p[1]);
      for (int64_t r = 1; r < t.shape()[0]; ++r)
        s.op_seed_calls.emplace_back(p[2 * r], static_cast<uint64_t>(p[2 * r + 1]));
      return s;
    };
    a.write = [decode](const Tensor &t) { set_global_rng_state(decode(t)); };
    // A negative or repeated op seed is refused before anything is restored.
    a.check = [decode](const Tensor &t) { check_global_rng_state(decode(t)); };
    return {a};
  }

 private:
  int64_t k_;
  GlobalRngState snapshot_;
};

class GlobalRngTrackable final : public Trackable {
 public:
  Id id() const override { return Id{&kGlobalRngAnchor, ""}; }
  std::string description() const override { return "the global random generator"; }
  std::vector<Child> children() const override {
    GlobalRngState s = global_rng_state();
    const int64_t k = static_cast<int64_t>(s.op_seed_calls.size());
    return {
        Child{kRngStateEdge + std::to_string(k), std::make_shared<GlobalRngStateTrackable>(k, std::move(s))}};
  }
  // Any saved k: the restored state replaces the live one whatever its size.
  TrackablePtr child(const std::string &name) const override {
    const std::string edge = kRngStateEdge;
    if (name.compare(0, edge.size(), edge) != 0) return nullptr;
    const int64_t k = parse_index(name.substr(edge.size()));
    if (k < 0) return nullptr;
    return std::make_shared<GlobalRngStateTrackable>(k, GlobalRngState{});
  }
};

}  // namespace

TrackablePtr Trackable::child(const std::string &name) const {
  for (const Child &c : children())
    if (c.name == name) return c.object;
  return nullptr;
}

TrackablePtr make_trackable(const LayerPtr &layer) {
  if (!layer) fail(Code::kInvalidArgument, "make_trackable: the layer is null");
  return std::make_shared<LayerTrackable>(layer);
}

TrackablePtr make_trackable(const OptimizerPtr &optimizer) {
  if (!optimizer) fail(Code::kInvalidArgument, "make_trackable: the optimizer is null");
  return std::make_shared<OptimizerTrackable>(optimizer);
}

TrackablePtr make_trackable(const VariablePtr &variable) {
  if (!variable) fail(Code::kInvalidArgument, "make_trackable: the variable is null");
  return std::make_shared<VariableTrackable>(variable);
}

TrackablePtr make_global_rng_trackable() { return std::make_shared<GlobalRngTrackable>(); }

void TrackableGroup::track(const std::string &name, TrackablePtr object) {
  if (name.empty()) fail(Code::kInvalidArgument, "TrackableGroup.track: the name is empty");
  require_utf8(name, "TrackableGroup.track", "the name");
  if (!object) fail(Code::kInvalidArgument, "TrackableGroup.track: the object for '", name, "' is null");
  std::lock_guard<std::mutex> lock(mu_);
  for (Child &c : children_)
    if (c.name == name) {
      c.object = std::move(object);
      return;
    }
  children_.push_back(Child{name, std::move(object)});
}

std::vector<Trackable::Child> TrackableGroup::children() const {
  std::lock_guard<std::mutex> lock(mu_);
  return children_;
}

}  // namespace kiln::train
