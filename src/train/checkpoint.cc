// Saving and restoring object graphs (checkpoint.h): the breadth-first walk that numbers the
// nodes and names the keys as TensorFlow does, the restore that follows the saved graph from the
// root by local names, and the load status. tf.train.Checkpoint and Keras's save_weights /
// load_weights are in checkpoint_api.cc.
#include "train/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <set>

#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"
#include "ops/ops.h"
#include "trackable_object_graph.pb.h"
#include "train/checkpoint_internal.h"

namespace kiln::train {

namespace {

constexpr const char *kObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH";
constexpr const char *kVariableValue = "VARIABLE_VALUE";
constexpr size_t kListedInMessages = 20;

// TF's escape of an edge name inside a key: "." -> "..", then "/" -> ".S".
std::string escape_local_name(const std::string &name) {
  std::string out;
  for (char c : name) {
    if (c == '.')
      out += "..";
    else if (c == '/')
      out += ".S";
    else
      out += c;
  }
  return out;
}

std::string child_path(const std::string &parent, const std::string &name) {
  return parent.empty() ? escape_local_name(name) : parent + "/" + escape_local_name(name);
}

std::string attribute_key(const std::string &path, const std::string &attribute) {
  return (path.empty() ? std::string() : path + "/") + ".ATTRIBUTES/" + attribute;
}

// "(root)" for the root, its path otherwise; attributes other than a variable's value get their
// name appended.
std::string value_name(const std::string &path, const std::string &attribute) {
  std::string s = path.empty() ? "(root)" : path;
  if (attribute != kVariableValue) s += " [" + attribute + "]";
  return s;
}

std::string listed(const std::vector<std::string> &items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < kListedInMessages; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > kListedInMessages) s += str_cat(", ... and ", items.size() - kListedInMessages, " more");
  return s;
}

std::mutex &warning_mu() {
  static std::mutex mu;
  return mu;
}
std::function<void(const std::string &)> &warning_sink() {
  static std::function<void(const std::string &)> sink;
  return sink;
}

void checkpoint_warning(const std::string &text) {
  std::function<void(const std::string &)> sink;
  {
    std::lock_guard<std::mutex> lock(warning_mu());
    sink = warning_sink();
  }
  if (sink)
    sink(text);
  else
    std::fprintf(stderr, "WARNING: kiln: %s\n", text.c_str());
}

// ------------------------------------------------------------------ the live graph

struct LiveNode {
  TrackablePtr object;
  std::string path;  // escaped edge names from the root, '/'-joined (the first path found)
  std::vector<std::pair<std::string, int>> children;
};

// Breadth first from the root, as TF's ObjectGraphView: an object reached along several edges
// is one node, numbered when first reached.
std::vector<LiveNode> live_graph(const TrackablePtr &root) {
  std::vector<LiveNode> nodes{LiveNode{root, "", {}}};
  std::map<Trackable::Id, int> index{{root->id(), 0}};
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::vector<Trackable::Child> kids = nodes[i].object->children();
    std::set<std::string> names;
    for (const Trackable::Child &c : kids) {
      if (!c.object) continue;
      if (!names.insert(c.name).second)
        fail(Code::kInvalidArgument, "checkpoint: ", nodes[i].object->description(), " at '",
             nodes[i].path.empty() ? "(root)" : nodes[i].path, "' has two children named '", c.name, "'");
      auto ins = index.emplace(c.object->id(), static_cast<int>(nodes.size()));
      if (ins.second) {
        std::string path = child_path(nodes[i].path, c.name);
        nodes.push_back(LiveNode{c.object, std::move(path), {}});
      }
      nodes[i].children.emplace_back(c.name, ins.first->second);
    }
  }
  return nodes;
}

}  // namespace

// ------------------------------------------------------------------ load status

struct LoadStatus::State {
  std::mutex mu;
  std::string path;
  std::vector<std::string> unmatched_values;
  std::map<int, std::string> pending;  // saved node -> path, until its deferred value lands
  std::vector<std::string> unmatched_objects;
  int64_t restored = 0;
  bool nontrivial = false;
  bool expect_partial = false;

  ~State() {
    if (expect_partial || (unmatched_values.empty() && pending.empty())) return;
    std::vector<std::string> values = unmatched_values;
    for (const auto &p : pending) values.push_back(p.second);
    checkpoint_warning(
        str_cat("a restore of '", path, "' is being discarded with values no object took: ", listed(values),
                " (call expect_partial() on the load status when a partial restore is intended)"));
  }
};

LoadStatus::LoadStatus(std::shared_ptr<State> state) : state_(std::move(state)) {}

const std::string &LoadStatus::path() const { return state_->path; }

std::vector<std::string> LoadStatus::unmatched_values() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->unmatched_values;
}

std::vector<std::string> LoadStatus::pending_values() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<std::string> out;
  for (const auto &p : state_->pending) out.push_back(p.second);
  return out;
}

std::vector<std::string> LoadStatus::unmatched_objects() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->unmatched_objects;
}

int64_t LoadStatus::restored_count() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->restored;
}

const LoadStatus &LoadStatus::expect_partial() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->expect_partial = true;
  return *this;
}

const LoadStatus &LoadStatus::assert_consumed() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::string problems;
  if (!state_->unmatched_values.empty())
    problems += str_cat("; ", state_->unmatched_values.size(),
                        " checkpoint value(s) no object took: ", listed(state_->unmatched_values));
  if (!state_->pending.empty()) {
    std::vector<std::string> pending;
    for (const auto &p : state_->pending) pending.push_back(p.second);
    problems += str_cat("; ", pending.size(),
                        " value(s) still wait for objects not made yet (an optimizer makes its slots at its "
                        "first step or Optimizer::build): ",
                        listed(pending));
  }
  if (!state_->unmatched_objects.empty())
    problems += str_cat("; ", state_->unmatched_objects.size(),
                        " object(s) got no value from the checkpoint: ", listed(state_->unmatched_objects));
  if (!problems.empty())
    fail(Code::kFailedPrecondition, "assert_consumed: the restore of '", state_->path,
         "' did not match everything", problems);
  return *this;
}

const LoadStatus &LoadStatus::assert_existing_objects_matched() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->unmatched_objects.empty())
    fail(Code::kFailedPrecondition, "assert_existing_objects_matched: the restore of '", state_->path,
         "' left ", state_->unmatched_objects.size(),
         " object(s) without a value: ", listed(state_->unmatched_objects));
  return *this;
}

const LoadStatus &LoadStatus::assert_nontrivial_match() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->nontrivial)
    fail(Code::kFailedPrecondition, "assert_nontrivial_match: nothing in '", state_->path,
         "' matched an object below the root: the checkpoint was written for other objects");
  return *this;
}

void set_checkpoint_warning_sink(std::function<void(const std::string &text)> sink) {
  std::lock_guard<std::mutex> lock(warning_mu());
  warning_sink() = std::move(sink);
}

// ------------------------------------------------------------------ save

void write_object_graph(const TrackablePtr &root, const std::string &prefix) {
  if (!root) fail(Code::kInvalidArgument, "checkpoint write: the root object is null");
  if (prefix.empty()) fail(Code::kInvalidArgument, "checkpoint write: the prefix is empty");
  const std::vector<LiveNode> nodes = live_graph(root);

  tfproto::TrackableObjectGraph graph;
  std::vector<char> has_values(nodes.size(), 0);
  io::create_dirs(io::dir_name(prefix));
  io::BundleWriter writer(prefix);
  for (size_t i = 0; i < nodes.size(); ++i) {
    tfproto::TrackableObjectGraph::TrackableObject *node = graph.add_nodes();
    for (const auto &c : nodes[i].children) {
      auto *ref = node->add_children();
      ref->set_node_id(c.second);
      ref->set_local_name(c.first);
    }
    for (const TrackableAttribute &a : nodes[i].object->attributes()) {
      const std::string key = attribute_key(nodes[i].path, a.name);
      const Tensor value = a.read();
      if (!value.defined() || value.dtype() != a.dtype || value.shape() != a.shape)
        fail(Code::kInternal, "checkpoint write: ", nodes[i].object->description(), " gave ",
             value.defined() ? value.description() : std::string("no value"), " for '", key, "'; expected ",
             dtype_name(a.dtype), a.shape.to_string());
      writer.add(key, value);
      auto *t = node->add_attributes();
      t->set_name(a.name);
      t->set_full_name(a.full_name);
      t->set_checkpoint_key(key);
      has_values[i] = 1;
    }
  }
  // An object has values when it or anything below it saved one (a fixpoint: the graph may
  // have cycles, such as Keras's "root" edge back to the root).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (has_values[i]) continue;
      for (const auto &c : nodes[i].children)
        if (has_values[static_cast<size_t>(c.second)]) {
          has_values[i] = 1;
          changed = true;
          break;
        }
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    graph.mutable_nodes(static_cast<int>(i))->mutable_has_checkpoint_values()->set_value(has_values[i] != 0);

  std::string bytes;
  if (!graph.SerializeToString(&bytes))
    fail(Code::kInternal, "checkpoint write: the object graph of '", prefix, "' did not serialize");
  writer.add_strings(kObjectGraphKey, {}, {bytes});
  writer.finish();
}

// ------------------------------------------------------------------ restore

namespace {

bool is_directory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string resolve_checkpoint_path(const std::string &path, const char *who) {
  if (!is_directory(path)) return path;
  const std::string latest = io::latest_checkpoint(path);
  if (latest.empty())
    fail(Code::kNotFound, who, ": the directory '", path, "' holds no checkpoint (no '",
         io::kCheckpointStateFile, "' state file naming an existing checkpoint)");
  return latest;
}

LoadStatus restore_impl(const TrackablePtr &root, const std::string &prefix,
                        const std::set<Trackable::Id> &not_required) {
  if (!root) fail(Code::kInvalidArgument, "checkpoint restore: the root object is null");
  io::BundleReader reader(prefix);
  if (!reader.contains(kObjectGraphKey))
    fail(Code::kInvalidArgument, "checkpoint restore: '", prefix, "' has no object graph (", kObjectGraphKey,
         "): it is a name-based (TF1) checkpoint; read its tensors by name with the checkpoint reader");
  const std::vector<std::string> strings = reader.read_strings(kObjectGraphKey);
  tfproto::TrackableObjectGraph graph;
  if (strings.size() != 1 || !graph.ParseFromString(strings[0]) || graph.nodes_size() == 0)
    fail(Code::kDataLoss, "checkpoint restore: the object graph in '", prefix,
         "' is not a valid TrackableObjectGraph");
  const int n = graph.nodes_size();
  for (int i = 0; i < n; ++i)
    for (const auto &c : graph.nodes(i).children())
      if (c.node_id() < 0 || c.node_id() >= n)
        fail(Code::kDataLoss, "checkpoint restore: the object graph in '", prefix, "' has an edge '",
             c.local_name(), "' to node ", c.node_id(), " of ", n);

  // The saved paths, breadth first (as the keys were made).
  std::vector<std::string> saved_path(static_cast<size_t>(n));
  {
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
  }

  // 1. Match: follow the saved edges from the root, asking each live object for its child of
  // that name. Edges with no live child are kept: their values may be deferred.
  struct Edge {
    int parent;
    std::string name;
  };
  std::vector<TrackablePtr> bound(static_cast<size_t>(n));
  std::vector<std::vector<Edge>> unresolved(static_cast<size_t>(n));
  bound[0] = root;
  {
    std::deque<int> queue{0};
    while (!queue.empty()) {
      const int s = queue.front();
      queue.pop_front();
      for (const auto &c : graph.nodes(s).children()) {
        const size_t k = static_cast<size_t>(c.node_id());
        if (bound[k]) continue;
        TrackablePtr live = bound[static_cast<size_t>(s)]->child(c.local_name());
        if (!live) {
          unresolved[k].push_back(Edge{s, c.local_name()});
          continue;
        }
        bound[k] = std::move(live);
        queue.push_back(c.node_id());
      }
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
    if (node.attributes().empty()) continue;
    const TrackablePtr &live = bound[static_cast<size_t>(s)];
    if (!live) {
      // A lone value whose object does not exist yet may wait for it (an optimizer's slot).
      const bool deferrable = node.attributes_size() == 1 && node.attributes(0).name() == kVariableValue &&
                              node.children().empty() && !unresolved[static_cast<size_t>(s)].empty();
      if (deferrable) {
        const io::BundleEntry &e = entry_of(node.attributes(0).checkpoint_key());
        if (!e.sliced && (e.dtype == io::TfDType::kFloat || e.dtype == io::TfDType::kDouble)) {
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

  // 4. Assign, then hand the deferred values to the objects that will make their owners.
  auto state = std::make_shared<LoadStatus::State>();
  state->path = prefix;
  for (size_t i = 0; i < assignments.size(); ++i) assignments[i].attribute.write(values[i]);
  state->restored = static_cast<int64_t>(assignments.size());
  for (int s = 1; s < n; ++s)
    if (bound[static_cast<size_t>(s)]) state->nontrivial = true;
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
    for (const Edge &e : unresolved[static_cast<size_t>(s)]) {
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

  // Live objects with values that got none.
  std::vector<std::string> unmatched_objects;
  for (const LiveNode &l : live_graph(root)) {
    if (l.object->attributes().empty()) continue;
    const Trackable::Id id = l.object->id();
    if (restored_objects.count(id) || not_required.count(id)) continue;
    unmatched_objects.push_back(l.object->description() + " at '" + (l.path.empty() ? "(root)" : l.path) +
                                "'");
  }
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->unmatched_values = std::move(unmatched_values);
    state->unmatched_objects = std::move(unmatched_objects);
  }
  return LoadStatus(state);
}

LoadStatus restore_object_graph(const TrackablePtr &root, const std::string &prefix) {
  return restore_impl(root, prefix, {});
}

}  // namespace kiln::train
