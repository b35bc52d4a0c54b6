// Restoring object graphs (checkpoint.h): the restore follows the saved graph from the root by
// local names, matching each saved node to a live object; checks every match and reads every
// value before anything changes; hands values whose objects do not exist yet to their owners
// (an optimizer's slots, by position or, for TF's legacy optimizers, by variable); and keeps the
// part of the graph below a layer that is not built yet until it builds (Keras's deferred
// restoration), then restores that part the same way.
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/error.h"
#include "io/bundle.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "trackable_object_graph.pb.h"
#include "train/checkpoint_internal.h"

namespace kiln::train {

namespace {

// The parsed checkpoint. Restores deferred until layers build share it, and its open files.
struct SavedGraph {
  std::string prefix;
  std::unique_ptr<io::BundleReader> reader;
  tfproto::TrackableObjectGraph graph;
  std::vector<std::string> path;  // each node's saved path (for messages)
  int size() const { return graph.nodes_size(); }
};

std::shared_ptr<const SavedGraph> open_saved_graph(const std::string &prefix) {
  auto g = std::make_shared<SavedGraph>();
  g->prefix = prefix;
  g->reader = std::make_unique<io::BundleReader>(prefix);
  const io::BundleReader &reader = *g->reader;
  if (!reader.contains(kObjectGraphKey))
    fail(Code::kInvalidArgument, "checkpoint restore: '", prefix, "' has no object graph (", kObjectGraphKey,
         "): it is a name-based (TF1) checkpoint; read its tensors by name with the checkpoint reader");
  const std::vector<std::string> strings = reader.read_strings(kObjectGraphKey);
  tfproto::TrackableObjectGraph &graph = g->graph;
  if (strings.size() != 1 || !graph.ParseFromString(strings[0]) || graph.nodes_size() == 0)
    fail(Code::kDataLoss, "checkpoint restore: the object graph in '", prefix,
         "' is not a valid TrackableObjectGraph");
  const int n = graph.nodes_size();
  for (int i = 0; i < n; ++i)
    for (const auto &c : graph.nodes(i).children())
      if (c.node_id() < 0 || c.node_id() >= n)
        fail(Code::kDataLoss, "checkpoint restore: the object graph in '", prefix, "' has an edge '",
             c.local_name(), "' to node ", c.node_id(), " of ", n);
  for (int i = 0; i < n; ++i)
    for (const auto &r : graph.nodes(i).slot_variables())
      if (r.original_variable_node_id() < 0 || r.original_variable_node_id() >= n ||
          r.slot_variable_node_id() <= 0 || r.slot_variable_node_id() >= n)
        fail(Code::kDataLoss, "checkpoint restore: the object graph in '", prefix, "' has a slot '",
             r.slot_name(), "' of node ", r.original_variable_node_id(), " in node ",
             r.slot_variable_node_id(), " of ", n);

  // The saved paths, breadth first (as the keys were made).
  std::vector<std::string> &saved_path = g->path;
  saved_path.resize(static_cast<size_t>(n));
  std::vector<char> seen(static_cast<size_t>(n), 0);
  std::deque<int> queue{0};
  seen[0] = 1;
  while (!queue.empty()) {
    const int s = queue.front();
    queue.pop_front();
    for (const auto &c : graph.nodes(s).children()) {
      const size_t k = static_cast<size_t>(c.node_id());
      if (seen[k]) continue;
      seen[k] = 1;
      saved_path[k] = child_path(saved_path[static_cast<size_t>(s)], c.local_name());
      queue.push_back(c.node_id());
    }
  }
  // A legacy optimizer's slots hang off no edge: TF names them
  // `<variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>`.
  for (int s = 0; s < n; ++s)
    for (const auto &r : graph.nodes(s).slot_variables()) {
      const size_t k = static_cast<size_t>(r.slot_variable_node_id());
      if (seen[k]) continue;
      seen[k] = 1;
      saved_path[k] = saved_path[static_cast<size_t>(r.original_variable_node_id())] + "/.OPTIMIZER_SLOT/" +
                      saved_path[static_cast<size_t>(s)] + "/" + escape_local_name(r.slot_name());
    }
  return g;
}

// Marks what hangs below top in *out: the nodes its saved edges reach (within scope, and not
// through nodes `stop` says are handled elsewhere), and the slot nodes of those that are
// optimizers.
void mark_below(const SavedGraph &g, int top, const std::vector<char> &scope, std::vector<char> *out,
                const std::function<bool(int)> &stop = {}) {
  std::deque<int> queue{top};
  (*out)[static_cast<size_t>(top)] = 1;
  while (!queue.empty()) {
    const int s = queue.front();
    queue.pop_front();
    const auto &node = g.graph.nodes(s);
    for (const auto &c : node.children()) {
      const size_t k = static_cast<size_t>(c.node_id());
      if ((*out)[k] || !scope[k] || (stop && stop(c.node_id()))) continue;
      (*out)[k] = 1;
      queue.push_back(c.node_id());
    }
    for (const auto &r : node.slot_variables()) {
      const size_t k = static_cast<size_t>(r.slot_variable_node_id());
      if (!(*out)[k] && scope[k] && !(stop && stop(r.slot_variable_node_id()))) (*out)[k] = 1;
    }
  }
}

// One restore pass: the saved nodes in scope, matched from the saved node top, which the live
// object live_top stands for. Results go to state; not_required objects are never reported as
// unmatched; optimizers maps saved optimizer nodes outside the scope to their live optimizers
// (their legacy slots of variables in the scope are restored here).
void restore_pass(const std::shared_ptr<const SavedGraph> &saved, int top, const TrackablePtr &live_top,
                  const std::vector<char> &scope, const std::map<int, OptimizerPtr> &optimizers,
                  const std::shared_ptr<LoadStatus::State> &state,
                  const std::set<Trackable::Id> &not_required);

// Keeps the saved nodes below the unbuilt layer that node top matched until the layer builds,
// then restores them. The callback holds the layer weakly: a model dropped unbuilt is freed.
void defer_until_built(const std::shared_ptr<const SavedGraph> &saved, int top, const Trackable &live,
                       std::vector<char> scope, std::map<int, OptimizerPtr> optimizers,
                       const std::shared_ptr<LoadStatus::State> &state) {
  const layers::LayerPtr layer = live.layer();
  const bool weights_root = is_weights_root(live);
  std::weak_ptr<layers::Layer> weak_layer = layer;
  std::weak_ptr<LoadStatus::State> weak_state = state;
  saved->reader->hold_data_files();
  auto restore = [saved, top, scope, optimizers, weak_layer, weak_state, weights_root] {
    const layers::LayerPtr l = weak_layer.lock();
    if (!l) return;
    std::shared_ptr<LoadStatus::State> st = weak_state.lock();
    if (!st) {
      // Nobody holds the status any more: the values land all the same, silently.
      st = std::make_shared<LoadStatus::State>();
      st->path = saved->prefix;
      st->expect_partial = true;
    }
    {
      std::lock_guard<std::mutex> lock(st->mu);
      for (size_t k = 0; k < scope.size(); ++k)
        if (scope[k]) st->pending.erase(static_cast<int>(k));
    }
    restore_pass(saved, top, weights_root ? make_weights_root(l) : make_trackable(l), scope, optimizers, st,
                 {});
  };
  {
    std::lock_guard<std::mutex> lock(state->mu);
    for (size_t k = 0; k < scope.size(); ++k) {
      const auto &node = saved->graph.nodes(static_cast<int>(k));
      if (scope[k] && !node.attributes().empty())
        state->pending[static_cast<int>(k)] = value_name(saved->path[k], node.attributes(0).name());
    }
    state->nontrivial = true;
  }
  if (!layer->call_when_built(restore)) restore();  // it built meanwhile
}

void restore_pass(const std::shared_ptr<const SavedGraph> &saved, int top, const TrackablePtr &live_top,
                  const std::vector<char> &scope, const std::map<int, OptimizerPtr> &optimizers,
                  const std::shared_ptr<LoadStatus::State> &state,
                  const std::set<Trackable::Id> &not_required) {
  const SavedGraph &g = *saved;
  const tfproto::TrackableObjectGraph &graph = g.graph;
  const io::BundleReader &reader = *g.reader;
  const std::string &prefix = g.prefix;
  const std::vector<std::string> &saved_path = g.path;
  const int n = g.size();

  // A node's one saved float scalar (a legacy optimizer's hyperparameter), or nothing.
  auto saved_scalar = [&](int node) -> std::optional<double> {
    const auto &attrs = graph.nodes(node).attributes();
    if (attrs.size() != 1 || !reader.contains(attrs[0].checkpoint_key())) return std::nullopt;
    const io::BundleEntry &e = reader.entry(attrs[0].checkpoint_key());
    if (e.sliced || !e.shape.empty() || (e.dtype != io::TfDType::kFloat && e.dtype != io::TfDType::kDouble))
      return std::nullopt;
    const Tensor t = reader.read(attrs[0].checkpoint_key());
    return t.dtype() == DType::kFloat32 ? static_cast<double>(t.data<float>()[0]) : t.data<double>()[0];
  };

  // 1. Match: follow the saved edges from top, asking each live object for its child of that
  // name. Edges with no live child are kept: their values may be deferred. A layer that is not
  // built has no weights to match yet: what hangs below it waits for its build.
  struct Edge {
    int parent;
    std::string name;
  };
  std::vector<TrackablePtr> bound(static_cast<size_t>(n));
  std::vector<std::vector<Edge>> unresolved(static_cast<size_t>(n));
  std::vector<int> unbuilt;  // matched nodes whose layer is not built
  bound[static_cast<size_t>(top)] = live_top;
  {
    std::deque<int> queue{top};
    while (!queue.empty()) {
      const int s = queue.front();
      queue.pop_front();
      const Trackable &parent = *bound[static_cast<size_t>(s)];
      if (const layers::LayerPtr l = parent.layer(); l && !l->built()) {
        unbuilt.push_back(s);
        continue;
      }
      for (const auto &c : graph.nodes(s).children()) {
        const size_t k = static_cast<size_t>(c.node_id());
        if (bound[k] || !scope[k]) continue;
        TrackablePtr live = parent.child(c.local_name());
        if (!live)
          live = legacy_optimizer_child(parent, c.local_name(), [&] { return saved_scalar(c.node_id()); });
        if (!live) {
          unresolved[k].push_back(Edge{s, c.local_name()});
          continue;
        }
        bound[k] = std::move(live);
        queue.push_back(c.node_id());
      }
    }
  }

  // The live optimizer of each saved optimizer node, matched here or given.
  auto optimizer_at = [&](int s) -> OptimizerPtr {
    if (const TrackablePtr &b = bound[static_cast<size_t>(s)]) return b->optimizer();
    auto it = optimizers.find(s);
    return it == optimizers.end() ? nullptr : it->second;
  };

  // What waits for each unbuilt layer: the nodes below it that this pass matched no object to
  // (what it matched, the optimizer of a model that another edge reached, stays this pass's, and
  // so does what hangs below that), and the legacy slots of their variables (with the optimizers
  // that own them).
  std::vector<std::vector<char>> waiting;
  std::vector<std::map<int, OptimizerPtr>> waiting_optimizers(unbuilt.size());
  std::vector<char> deferred(static_cast<size_t>(n), 0);
  for (size_t i = 0; i < unbuilt.size(); ++i) {
    std::vector<char> below(static_cast<size_t>(n), 0);
    mark_below(g, unbuilt[i], scope, &below, [&](int k) {
      return bound[static_cast<size_t>(k)] != nullptr || deferred[static_cast<size_t>(k)];
    });
    for (int k = 0; k < n; ++k)
      if (k != unbuilt[i] && below[static_cast<size_t>(k)]) deferred[static_cast<size_t>(k)] = 1;
    waiting.push_back(std::move(below));  // with the layer's own node, where the later pass starts
  }
  for (int s = 0; s < n && !unbuilt.empty(); ++s) {
    const OptimizerPtr opt = optimizer_at(s);
    if (!opt) continue;
    for (const auto &r : graph.nodes(s).slot_variables())
      for (size_t i = 0; i < unbuilt.size(); ++i) {
        const size_t v = static_cast<size_t>(r.original_variable_node_id());
        const size_t k = static_cast<size_t>(r.slot_variable_node_id());
        if (!waiting[i][v] || static_cast<int>(v) == unbuilt[i] || !scope[k] || bound[k]) continue;
        waiting[i][k] = 1;
        deferred[k] = 1;
        // An optimizer below the layer is matched again by the later pass.
        if (!waiting[i][static_cast<size_t>(s)]) waiting_optimizers[i][s] = opt;
      }
  }

  // 1b. A legacy optimizer's slots (checkpoint_internal.h): each saved (variable, slot name, slot
  // node) whose optimizer and variable matched takes the live slot, or waits for the optimizer to
  // make it (TF's legacy optimizers key deferred slots by their variable, and so does this).
  struct LegacySlot {
    OptimizerPtr optimizer;
    VariablePtr variable;
    std::string slot;
  };
  std::map<int, LegacySlot> legacy_slots;  // slot node -> the slot waiting for it
  for (int s = 0; s < n; ++s) {
    const OptimizerPtr opt = optimizer_at(s);
    if (!opt) continue;
    for (const auto &r : graph.nodes(s).slot_variables()) {
      const int k = r.slot_variable_node_id();
      if (!scope[static_cast<size_t>(k)] || deferred[static_cast<size_t>(k)]) continue;
      const TrackablePtr &var_node = bound[static_cast<size_t>(r.original_variable_node_id())];
      const VariablePtr var = var_node ? var_node->variable() : nullptr;
      if (!var || bound[static_cast<size_t>(k)] || legacy_slots.count(k)) continue;
      const std::string slot = legacy_slot_name(*opt, r.slot_name());
      if (slot.empty()) continue;  // left unmatched: the class has no such slot
      const std::vector<std::string> names = opt->slot_names();
      const size_t index = static_cast<size_t>(std::find(names.begin(), names.end(), slot) - names.begin());
      VariablePtr live;
      for (const Optimizer::VariableSlots &vs : opt->slot_variables())
        if (vs.var_id == var->id() && index < vs.slots.size()) live = vs.slots[index];
      if (live)
        bound[static_cast<size_t>(k)] = make_trackable(live);
      else
        legacy_slots[k] = LegacySlot{opt, var, slot};
    }
  }

  // 2. Check every matched value against its object (dtype, shape) from the index alone.
  struct Assignment {
    TrackableAttribute attribute;
    std::string key;
    bool cast;
  };
  struct Deferral {
    int node;
    std::string key;
  };
  std::vector<Assignment> assignments;
  std::vector<Deferral> deferrals;
  std::vector<std::string> unmatched_values;
  std::set<Trackable::Id> restored_objects;
  auto entry_of = [&](const std::string &key) -> const io::BundleEntry & {
    if (!reader.contains(key))
      fail(Code::kDataLoss, "checkpoint restore: the object graph of '", prefix, "' names the key '", key,
           "', which its index does not hold");
    return reader.entry(key);
  };
  for (int s = 0; s < n; ++s) {
    const auto &node = graph.nodes(s);
    const std::string &path = saved_path[static_cast<size_t>(s)];
    if (node.attributes().empty() || !scope[static_cast<size_t>(s)] || deferred[static_cast<size_t>(s)])
      continue;
    const TrackablePtr &live = bound[static_cast<size_t>(s)];
    auto legacy = legacy_slots.find(s);
    if (!live && legacy != legacy_slots.end() && node.attributes_size() == 1 &&
        node.attributes(0).name() == kVariableValue) {
      // A legacy slot the optimizer has not made yet: checked against its variable now, as a
      // slot has the variable's dtype and shape.
      const std::string &key = node.attributes(0).checkpoint_key();
      const io::BundleEntry &e = entry_of(key);
      const VariablePtr &var = legacy->second.variable;
      if (e.sliced || e.dtype != io::to_tf_dtype(var->dtype()) || e.shape != var->shape().to_vector())
        fail(Code::kInvalidArgument, "checkpoint restore: the slot '", legacy->second.slot, "' of variable '",
             var->name(), "' (", dtype_name(var->dtype()), var->shape().to_string(), ") at '", path, "' is ",
             io::tf_dtype_name(e.dtype), list_string(e.shape), e.sliced ? " (partitioned)" : "", " in '",
             prefix, "'");
      deferrals.push_back(Deferral{s, key});
      continue;
    }
    if (!live) {
      // A lone value whose object does not exist yet may wait for it (an optimizer's slot, or an
      // int32 placeholder of Adafactor's).
      const bool deferrable = node.attributes_size() == 1 && node.attributes(0).name() == kVariableValue &&
                              node.children().empty() && !unresolved[static_cast<size_t>(s)].empty();
      if (deferrable) {
        const io::BundleEntry &e = entry_of(node.attributes(0).checkpoint_key());
        if (!e.sliced && (e.dtype == io::TfDType::kFloat || e.dtype == io::TfDType::kDouble ||
                          e.dtype == io::TfDType::kInt32)) {
          deferrals.push_back(Deferral{s, node.attributes(0).checkpoint_key()});
          continue;
        }
      }
      for (const auto &a : node.attributes()) unmatched_values.push_back(value_name(path, a.name()));
      continue;
    }
    const std::vector<TrackableAttribute> attrs = live->attributes();
    bool restored_any = false;
    for (const auto &a : node.attributes()) {
      auto it = std::find_if(attrs.begin(), attrs.end(),
                             [&](const TrackableAttribute &t) { return t.name == a.name(); });
      if (it == attrs.end()) {
        unmatched_values.push_back(value_name(path, a.name()));
        continue;
      }
      const io::BundleEntry &e = entry_of(a.checkpoint_key());
      const std::string who = live->description() + " at '" + (path.empty() ? "(root)" : path) + "'";
      const std::string saved_shape = list_string(e.shape);
      const io::TfDType want = io::to_tf_dtype(it->dtype);
      bool cast = false;
      if (e.dtype != want) {
        const bool float_saved = e.dtype == io::TfDType::kFloat || e.dtype == io::TfDType::kDouble ||
                                 e.dtype == io::TfDType::kBFloat16;
        if (!(it->convert_float && float_saved))
          fail(Code::kInvalidArgument, "checkpoint restore: ", who, " is ", dtype_name(it->dtype),
               it->shape.to_string(), " but '", prefix, "' holds ", io::tf_dtype_name(e.dtype), saved_shape,
               " under '", a.checkpoint_key(), "'");
        cast = true;
      }
      if (e.sliced || e.shape != it->shape.to_vector())
        fail(Code::kInvalidArgument, "checkpoint restore: ", who, " has shape ", it->shape.to_string(),
             " but '", prefix, "' holds shape ", saved_shape, e.sliced ? " (partitioned)" : "", " under '",
             a.checkpoint_key(), "'");
      assignments.push_back(Assignment{*it, a.checkpoint_key(), cast});
      restored_any = true;
    }
    if (restored_any) restored_objects.insert(live->id());
  }

  // 3. Read every value (a corrupt or truncated file fails here, before anything changes).
  std::vector<Tensor> values;
  values.reserve(assignments.size());
  for (const Assignment &a : assignments) {
    Tensor t = reader.read(a.key);
    if (a.cast) t = ops::cast(t, a.attribute.dtype);
    values.push_back(std::move(t));
  }
  std::vector<Tensor> deferred_values;
  for (const Deferral &d : deferrals) deferred_values.push_back(reader.read(d.key));

  // 4. Check every value its owner would refuse (a non-finite learning rate, a bad random
  // state) before any is written, so a restore changes all or nothing; assign, then hand the
  // deferred values to the objects that will make their owners.
  for (size_t i = 0; i < assignments.size(); ++i)
    if (assignments[i].attribute.check) assignments[i].attribute.check(values[i]);
  for (size_t i = 0; i < assignments.size(); ++i) assignments[i].attribute.write(values[i]);
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->restored += static_cast<int64_t>(assignments.size());
    for (int s = 0; s < n; ++s)
      if (s != top && bound[static_cast<size_t>(s)]) state->nontrivial = true;
  }
  std::weak_ptr<LoadStatus::State> weak = state;
  for (size_t i = 0; i < deferrals.size(); ++i) {
    const int s = deferrals[i].node;
    const std::string &path = saved_path[static_cast<size_t>(s)];
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->pending[s] = value_name(path, kVariableValue);
    }
    auto landed = [weak, s] {
      if (std::shared_ptr<LoadStatus::State> st = weak.lock()) {
        std::lock_guard<std::mutex> lock(st->mu);
        if (st->pending.erase(s)) ++st->restored;
      }
    };
    bool taken = false;
    if (auto legacy = legacy_slots.find(s); legacy != legacy_slots.end()) {
      const LegacySlot &l = legacy->second;
      l.optimizer->defer_slot_restore_for_variable(l.variable->id(), l.slot, deferred_values[i], landed);
      taken = true;
    }
    for (const Edge &e : unresolved[static_cast<size_t>(s)]) {
      if (taken) break;
      const TrackablePtr &parent = bound[static_cast<size_t>(e.parent)];
      if (parent && parent->defer_child(e.name, deferred_values[i], landed)) {
        taken = true;
        break;
      }
    }
    std::lock_guard<std::mutex> lock(state->mu);
    if (taken) {
      state->nontrivial = true;
    } else {
      state->pending.erase(s);
      unmatched_values.push_back(value_name(path, kVariableValue));
    }
  }

  // Live objects with values that got none (those below an unbuilt layer are its pass's).
  std::vector<std::string> unmatched_objects;
  std::set<Trackable::Id> later;
  for (int s : unbuilt) later.insert(bound[static_cast<size_t>(s)]->id());
  const std::vector<LiveNode> live_nodes = live_graph(live_top);
  std::vector<char> skip(live_nodes.size(), 0);
  for (size_t i = 0; i < live_nodes.size(); ++i) {
    const TrackablePtr &object = live_nodes[i].object;
    if (skip[i]) continue;
    if (later.count(object->id())) {
      // Not below the layer when another path reaches it first: the live graph is breadth first.
      std::deque<size_t> queue{i};
      while (!queue.empty()) {
        const size_t j = queue.front();
        queue.pop_front();
        for (const auto &c : live_nodes[j].children)
          if (!skip[static_cast<size_t>(c.second)] && static_cast<size_t>(c.second) > i) {
            skip[static_cast<size_t>(c.second)] = 1;
            queue.push_back(static_cast<size_t>(c.second));
          }
      }
      continue;
    }
    if (object->attributes().empty()) continue;
    const Trackable::Id id = object->id();
    if (restored_objects.count(id) || not_required.count(id)) continue;
    unmatched_objects.push_back(object->description() + " at '" +
                                (live_nodes[i].path.empty() ? "(root)" : live_nodes[i].path) + "'");
  }
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->unmatched_values.insert(state->unmatched_values.end(), unmatched_values.begin(),
                                   unmatched_values.end());
    state->unmatched_objects.insert(state->unmatched_objects.end(), unmatched_objects.begin(),
                                    unmatched_objects.end());
  }

  // Last, what waits for unbuilt layers (a layer that built meanwhile restores it at once).
  for (size_t i = 0; i < unbuilt.size(); ++i)
    defer_until_built(saved, unbuilt[i], *bound[static_cast<size_t>(unbuilt[i])], std::move(waiting[i]),
                      std::move(waiting_optimizers[i]), state);
}

}  // namespace

LoadStatus restore_impl(const TrackablePtr &root, const std::string &prefix,
                        const std::set<Trackable::Id> &not_required) {
  if (!root) fail(Code::kInvalidArgument, "checkpoint restore: the root object is null");
  const std::shared_ptr<const SavedGraph> saved = open_saved_graph(prefix);
  auto state = std::make_shared<LoadStatus::State>();
  state->path = prefix;
  const int n = saved->size();
  std::vector<char> scope(static_cast<size_t>(n), 0);
  mark_below(*saved, 0, std::vector<char>(static_cast<size_t>(n), 1), &scope);
  restore_pass(saved, 0, root, scope, {}, state, not_required);
  return LoadStatus(state);
}

LoadStatus restore_object_graph(const TrackablePtr &root, const std::string &prefix) {
  return restore_impl(root, prefix, {});
}

}  // namespace kiln::train
