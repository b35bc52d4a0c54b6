// What the checkpoint files share: the key and path spelling and the live graph (checkpoint.cc),
// the load status's record, the restore with objects exempt from the unmatched-object check
// (checkpoint_restore.cc, for checkpoint_api.cc), and TF's legacy optimizers
// (checkpoint_legacy_optimizer.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "train/checkpoint.h"

namespace kiln::train {

inline constexpr const char *kObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH";
inline constexpr const char *kVariableValue = "VARIABLE_VALUE";

// TF's escape of an edge name inside a key: "." -> "..", then "/" -> ".S".
std::string escape_local_name(const std::string &name);
// parent's path and the escaped edge name, '/'-joined.
std::string child_path(const std::string &parent, const std::string &name);
// For messages: "(root)" for the root, its path otherwise; attributes other than a variable's
// value get their name appended.
std::string value_name(const std::string &path, const std::string &attribute);

struct LiveNode {
  TrackablePtr object;
  std::string path;  // escaped edge names from the root, '/'-joined (the first path found)
  std::vector<std::pair<std::string, int>> children;
};
// Breadth first from the root, as TF's ObjectGraphView: an object reached along several edges
// is one node, numbered when first reached. InvalidArgument for two children of one name.
std::vector<LiveNode> live_graph(const TrackablePtr &root);

// The record LoadStatus copies share; restores deferred until objects exist report into it.
struct LoadStatus::State {
  std::mutex mu;
  std::string path;
  std::vector<std::string> unmatched_values;
  std::map<int, std::string> pending;  // saved node -> path, until its deferred value lands
  std::vector<std::string> unmatched_objects;
  int64_t restored = 0;
  bool nontrivial = false;
  bool expect_partial = false;

  // Warns about values no object took (unless expect_partial).
  ~State();
};

// Whether t is the root save_weights / load_weights use (make_weights_root).
bool is_weights_root(const Trackable &t);

// restore_object_graph, but the objects in not_required are never reported as unmatched (a
// Checkpoint's own save_counter, which a checkpoint written by write() or save_weights lacks).
LoadStatus restore_impl(const TrackablePtr &root, const std::string &prefix,
                        const std::set<Trackable::Id> &not_required);

// TF's legacy optimizers (Keras's optimizer_v2, which Keras < 2.11 and tf.keras.optimizers.legacy
// use, and tf.compat.v1.train's) save their state under other edges than Keras >= 2.11's, and
// their slots not as edges at all: the saved graph's optimizer node lists (variable node, slot
// name, slot node) triples, the slots' keys being
// `<variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>/.ATTRIBUTES/VARIABLE_VALUE`
// (checkpoint_legacy_optimizer.cc).
//
// The live child that a legacy optimizer's saved edge `name` stands for, when optimizer_node (an
// optimizer's node: Trackable::optimizer()) has no child of that name: "iter" is `_iterations`,
// "learning_rate" `_learning_rate`, Nadam's "momentum_cache" (the product of its momentum
// schedule) `_u_product`. A hyperparameter variable ("beta_1", "rho", "momentum", "decay" ...)
// is taken (and nothing changes) when saved_scalar(), its saved value, equals the live
// optimizer's setting as float32 ("decay", which kiln's optimizers lack, when it is 0); any
// other value is left unmatched, since kiln's optimizers hold them as settings. Null otherwise.
TrackablePtr legacy_optimizer_child(const Trackable &optimizer_node, const std::string &name,
                                    const std::function<std::optional<double>()> &saved_scalar);
// The optimizer's slot that a legacy slot name means for its class ("m" is Adam's and Nadam's
// "momentum", "rms" RMSprop's "velocity", "accum_grad" Adadelta's "accumulated_grad" ...), or ""
// when the class has none such.
std::string legacy_slot_name(const Optimizer &optimizer, const std::string &legacy_name);

}  // namespace kiln::train
