// Saving object graphs (checkpoint.h): the breadth-first walk that numbers the nodes and names
// the keys as TensorFlow does, and the load status. The restore is in checkpoint_restore.cc,
// tf.train.Checkpoint and Keras's save_weights / load_weights in checkpoint_api.cc.
#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "core/error.h"
#include "io/bundle.h"
#include "io/file_util.h"
#include "trackable_object_graph.pb.h"
#include "train/checkpoint_internal.h"

namespace kiln::train {

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

std::string value_name(const std::string &path, const std::string &attribute) {
  std::string s = path.empty() ? "(root)" : path;
  if (attribute != kVariableValue) s += " [" + attribute + "]";
  return s;
}

namespace {

constexpr size_t kListedInMessages = 20;

std::string attribute_key(const std::string &path, const std::string &attribute) {
  return (path.empty() ? std::string() : path + "/") + ".ATTRIBUTES/" + attribute;
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

}  // namespace

// ------------------------------------------------------------------ the live graph

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

// ------------------------------------------------------------------ load status

LoadStatus::State::~State() {
  if (expect_partial || (unmatched_values.empty() && pending.empty())) return;
  // Values waiting for variables not made yet (a model built later) are still restored when those
  // are made; the warning says so apart from the values nothing will take.
  std::vector<std::string> waiting;
  for (const auto &p : pending) waiting.push_back(p.second);
  std::string what;
  if (!unmatched_values.empty()) what = str_cat("values no object took: ", listed(unmatched_values));
  if (!waiting.empty())
    what += str_cat(what.empty() ? "" : "; ", "values still waiting for their variables to be created (",
                    "they are restored when those are made, e.g. when the model builds): ", listed(waiting));
  checkpoint_warning(
      str_cat("a restore of '", path, "' is being discarded with ", what,
              " (call expect_partial() on the load status when a partial restore is intended)"));
}

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
                        "first step or Optimizer::build, an unbuilt model its weights when it builds): ",
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

}  // namespace kiln::train
