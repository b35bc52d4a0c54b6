// Object-based checkpoints, as TF2's tf.train.Checkpoint writes them (FORMATS.md §2.4): the
// objects form a graph of named edges from a root (a model's layers and their weights, an
// optimizer's iterations, learning rate and slots, any object with named children); a save
// walks it breadth first, stores each variable under `<escaped path>/.ATTRIBUTES/VARIABLE_VALUE`
// in a tensor bundle (io/bundle.h) and the graph itself as `_CHECKPOINTABLE_OBJECT_GRAPH`; a
// restore walks the saved graph from the root by local names and matches it to the live objects
// (keys are never parsed), so TensorFlow and Keras 2.13 read what kiln writes and kiln reads
// theirs. The layout of each object kind is Keras 2.13's: `layer_with_weights-<i>` and
// `layer-<i>` edges of models, weights by their own names, the optimizer's `_iterations`,
// `_learning_rate`, `_variables/<n>` and per-slot lists. A restore also reads the optimizer state
// TF's legacy optimizers save (Keras < 2.11's optimizer_v2, tf.compat.v1): `iter`,
// `learning_rate`, hyperparameters, and slots keyed `<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>`
// (Adam's m, v, vhat; SGD's momentum; RMSprop's rms, momentum, mg; Adagrad's accumulator ...),
// into the same optimizer objects (checkpoint_internal.h). checkpoint_trackables.cc holds the
// object kinds, checkpoint.cc the save and the load status, checkpoint_restore.cc the restore
// (with Keras's deferred restoration into layers not built yet), checkpoint_legacy_optimizer.cc
// the legacy names, checkpoint_api.cc Checkpoint and save_weights / load_weights,
// checkpoint_manager.cc CheckpointManager.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "layers/layer.h"
#include "train/optimizer.h"

namespace kiln::train {

// A value an object saves under an attribute name: "VARIABLE_VALUE" for a variable.
struct TrackableAttribute {
  std::string name = "VARIABLE_VALUE";
  std::string full_name;  // the variable's name (informational, as TF's SerializedTensor.full_name)
  DType dtype = DType::kFloat32;
  Shape shape;
  std::function<Tensor()> read;  // the value to save
  // Takes a restored value (its dtype and shape already checked against dtype and shape).
  std::function<void(const Tensor &)> write;
  // Optional: throws for a value write would refuse. A restore checks every value before it
  // writes any.
  std::function<void(const Tensor &)> check;
  // A saved value of another floating dtype (same shape) is converted rather than refused (a
  // Nadam `_u_product` saved in float64 for a float32 model's, or the other way round).
  bool convert_float = false;
};

class Trackable;
using TrackablePtr = std::shared_ptr<Trackable>;

// A node of the object graph: a view of a live object (a layer, an optimizer, a variable) or an
// object of its own (TrackableGroup). Views are made afresh for each save or restore; id() tells
// when two views show one object, which then is one node reached along several edges.
class Trackable {
 public:
  struct Id {
    const void *object = nullptr;
    std::string facet;  // a part of the object with a node of its own ("_momentums" of an optimizer)
    bool operator<(const Id &o) const { return object != o.object ? object < o.object : facet < o.facet; }
    bool operator==(const Id &o) const { return object == o.object && facet == o.facet; }
  };
  struct Child {
    std::string name;  // the edge's local name
    TrackablePtr object;
  };

  virtual ~Trackable() = default;
  virtual Id id() const = 0;
  // For messages: "variable 'dense/kernel'", "layer 'dense' (Dense)".
  virtual std::string description() const = 0;
  // The object's edges, in order (node numbers follow it, breadth first).
  virtual std::vector<Child> children() const { return {}; }
  virtual std::vector<TrackableAttribute> attributes() const { return {}; }
  // The child `name`, or null: restore follows each saved edge with it (TF's _lookup_dependency).
  // Default: the first of children() with that name.
  virtual TrackablePtr child(const std::string &name) const;
  // Restore found a saved child `name` holding a single value, and this object has no such child
  // yet: keep the value for the object when it is made (TF's deferred restoration; an optimizer
  // defers its slots until they exist). on_restored runs once the value is in place. Returns
  // false when this object cannot.
  virtual bool defer_child(const std::string &name, const Tensor &value, std::function<void()> on_restored) {
    (void)name;
    (void)value;
    (void)on_restored;
    return false;
  }
  // The variable or optimizer this node shows, or null: a restore matches the slots of TF's
  // legacy optimizers (Keras's optimizer_v2, tf.compat.v1), which the saved graph names by
  // (variable, optimizer, slot name) rather than by edges, through them.
  virtual VariablePtr variable() const { return nullptr; }
  virtual OptimizerPtr optimizer() const { return nullptr; }
  // The layer this node shows, or null: a restore keeps the saved values below an unbuilt layer
  // until it builds (Keras's deferred restoration).
  virtual layers::LayerPtr layer() const { return nullptr; }
};

// The object kinds (checkpoint_trackables.cc). A layer: its own weights by name (creation
// order), then its sub-layers. A model (Sequential and other is_model() layers) names its layers
// `layer_with_weights-<k>` (the k-th layer that has weights) and `layer-<i>` (every layer), as
// Keras's functional models; a compiled model adds its optimizer as `optimizer`. Sub-layers
// tracked under an attribute (subclassed layers and models) go by it, as Keras's AutoTrackable:
// `dense1`, `blocks/0` through a node of its own for the list; built-in layers with sub-layers
// use Keras's attribute names where kiln knows them (MultiHeadAttention's `_query_dense` ...)
// and the models' names otherwise. A restore also finds attribute-tracked sub-layers by the
// models' names (kiln's own checkpoints of subclassed models before 2026-12-06).
TrackablePtr make_trackable(const layers::LayerPtr &layer);
// An optimizer in Keras >= 2.11's layout: `_variables` (a list: "0" the iterations, then the
// slots), `_iterations`, `_learning_rate` (a float32 variable; absent with a schedule),
// `_index_dict`, then the class's slot lists (Adam's `_momentums`, `_velocities` ...) with one
// entry per variable, and the class's own state (Nadam's `_u_product`). Slots that do not exist
// yet when a checkpoint is restored take their values when the optimizer makes them.
TrackablePtr make_trackable(const OptimizerPtr &optimizer);
TrackablePtr make_trackable(const VariablePtr &variable);
// The global random state (core/rng.h: the global seed, the draws made of the global op-seed
// sequence and the calls made with each op seed), kiln's tf.random.get_global_generator():
// tracked under a name, it saves one int64 [1 + k, 2] value under
// `<name>/_state-<k>/.ATTRIBUTES/VARIABLE_VALUE`, row 0 (global seed, draws of the global
// sequence) then (op seed, calls) for the k op seeds used, ascending; the edge carries k because a
// restore checks each value's shape against its object's. Restoring replaces the whole state at
// once, so the next random ops, Dropout masks and shuffles draw what they would have drawn after
// the save. Seeds and counts are stored as their 64 bits. Never part of a model's or optimizer's
// own keys: track it explicitly (Checkpoint(model=..., rng=...)).
TrackablePtr make_global_rng_trackable();

// An object with named children of any kind (TF's AutoTrackable / tf.Module), for nesting.
class TrackableGroup final : public Trackable {
 public:
  TrackableGroup() = default;
  // Adds the child under name, or replaces the one under it. InvalidArgument for an empty name
  // or a null child.
  void track(const std::string &name, TrackablePtr object);
  Id id() const override { return Id{this, ""}; }
  std::string description() const override { return "group"; }
  std::vector<Child> children() const override;

 private:
  mutable std::mutex mu_;
  std::vector<Child> children_;
};

// What a restore matched (TF's CheckpointLoadStatus). Copies share one record; a deferred value
// (an optimizer slot made later) marks itself restored in it when it lands. Paths are the saved
// graph's, as keys are: "optimizer/_variables/1".
class LoadStatus {
 public:
  struct State;  // checkpoint.cc
  explicit LoadStatus(std::shared_ptr<State> state);
  // TF's assert_consumed: FailedPrecondition naming the checkpoint values no object took (and
  // those still waiting for objects not made yet, such as slots before the optimizer's first
  // step or Optimizer::build) and the live objects with values that the checkpoint has none for.
  const LoadStatus &assert_consumed() const;
  // TF's assert_existing_objects_matched: FailedPrecondition naming the live objects with values
  // that got none (values in the checkpoint without objects are allowed).
  const LoadStatus &assert_existing_objects_matched() const;
  // Keras's load_weights check: FailedPrecondition when no object but the root matched.
  const LoadStatus &assert_nontrivial_match() const;
  // Unmatched values are expected: no warning when this status goes away.
  const LoadStatus &expect_partial() const;

  const std::string &path() const;
  std::vector<std::string> unmatched_values() const;   // saved values no object took
  std::vector<std::string> pending_values() const;     // deferred values not yet landed
  std::vector<std::string> unmatched_objects() const;  // live objects with values that got none
  // Number of saved values restored so far (deferred ones count once they land).
  int64_t restored_count() const;

 private:
  std::shared_ptr<State> state_;
};

// Where warnings go (TF's "Value in checkpoint could not be found in the restored object",
// given when a LoadStatus with unmatched values goes away without expect_partial): stderr as
// "WARNING: kiln: <text>", or the sink set here (empty: back to stderr).
void set_checkpoint_warning_sink(std::function<void(const std::string &text)> sink);

// Writes root's object graph and values to the bundle `prefix` (prefix.index and
// prefix.data-00000-of-00001, written atomically).
void write_object_graph(const TrackablePtr &root, const std::string &prefix);
// Restores from the bundle `prefix` into root's objects through the saved object graph. Every
// match is checked (dtype, then shape: InvalidArgument naming the variable, its path and both
// shapes) and every value read (corruption is the reader's DataLoss) before any object changes.
// The values below a layer that is not built wait for its build (Layer::call_when_built), which
// then restores them the same way (its error, if any, comes out of the build). A name-based
// (TF1) checkpoint, with no object graph, is InvalidArgument.
LoadStatus restore_object_graph(const TrackablePtr &root, const std::string &prefix);

// tf.train.Checkpoint. Calls on one checkpoint are serialised.
class Checkpoint {
 public:
  // Checkpoint(model=..., optimizer=...): the root's children by name (edges in name order, as TF
  // sorts its keyword arguments). InvalidArgument for an empty or repeated name, a null object,
  // or "save_counter" (the checkpoint's own child).
  explicit Checkpoint(std::vector<std::pair<std::string, TrackablePtr>> children);
  ~Checkpoint();
  Checkpoint(const Checkpoint &) = delete;
  Checkpoint &operator=(const Checkpoint &) = delete;

  // Adds a child after construction, after the others (TF's attribute assignment on a
  // Checkpoint: `ckpt.step = v`), or replaces the object under an existing name. InvalidArgument
  // for an empty name, "save_counter" or a null object, as the constructor.
  void track(const std::string &name, TrackablePtr object);

  // save_counter += 1, writes `<prefix>-<save_counter>` (with save_counter, an int64 variable
  // and the root's child "save_counter"), records it in the directory's `checkpoint` state file,
  // and returns that path.
  std::string save(const std::string &prefix);
  // Writes exactly `prefix`; neither the counter nor the state file changes.
  std::string write(const std::string &prefix);
  // save() without the state file, for CheckpointManager (which records its own list):
  // save_counter += 1, then writes `<prefix>-<number>`, number being the new save_counter when
  // negative, then runs record(path) (the state file's update) under the save's lock. Returns
  // the path. If the write or record throws, save_counter is as before.
  std::string save_numbered(const std::string &prefix, int64_t number = -1,
                            const std::function<void(const std::string &path)> &record = {});
  // Restores from a checkpoint prefix, or from a directory's latest checkpoint (NotFound when it
  // has none). save_counter is restored too, so later saves continue its numbering.
  LoadStatus restore(const std::string &path);
  // Restores from exactly the prefix `path` (as write's counterpart).
  LoadStatus read(const std::string &path);

  // 0 before the first save or restore (TF makes the counter then).
  int64_t save_counter() const;
  // The root object (its children, then "save_counter" once it exists).
  TrackablePtr root() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// tf.train.CheckpointManager's settings.
struct CheckpointManagerOptions {
  // Keep the newest max_to_keep checkpoints (>= 1); none: keep every one.
  std::optional<int64_t> max_to_keep;
  // Of the checkpoints max_to_keep drops, keep one per this many hours (> 0) on disk; they leave
  // the state file's list, as TF does.
  std::optional<double> keep_checkpoint_every_n_hours;
  std::string checkpoint_name = "ckpt";
  // Seconds since the epoch (the checkpoints' timestamps); empty: the system clock.
  std::function<double()> clock;
};

// tf.train.CheckpointManager: numbered saves of one Checkpoint into a directory, the newest
// max_to_keep kept, the rest deleted, and the directory's `checkpoint` state file listing them
// (paths and timestamps), so a manager made later on that directory, or TensorFlow, carries on.
// Calls on one manager are serialised.
class CheckpointManager {
 public:
  // Reads the directory's state file if there is one (its checkpoints are then managed too).
  // InvalidArgument for a null checkpoint, an empty directory or name, max_to_keep < 1 or
  // keep_checkpoint_every_n_hours <= 0.
  CheckpointManager(std::shared_ptr<Checkpoint> checkpoint, std::string directory,
                    CheckpointManagerOptions options = {});
  ~CheckpointManager();
  CheckpointManager(const CheckpointManager &) = delete;
  CheckpointManager &operator=(const CheckpointManager &) = delete;

  // Saves `<directory>/<checkpoint_name>-<n>` (n: checkpoint_number, else the checkpoint's
  // save_counter after it goes up by one, as TF), records it in the state file, deletes the
  // checkpoints past max_to_keep (files of those kept by keep_checkpoint_every_n_hours stay),
  // then records the state file again without them. Returns the path.
  std::string save(std::optional<int64_t> checkpoint_number = std::nullopt);
  // The newest checkpoint's prefix, or "" before any.
  std::string latest_checkpoint() const;
  // The checkpoints managed, oldest first.
  std::vector<std::string> checkpoints() const;
  const std::string &directory() const;
  // Restores the latest checkpoint and returns its path, or returns "" when there is none (the
  // objects keep their initial values). The restore's unmatched values are expected.
  std::string restore_or_initialize();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Keras's model.save_weights(path) in TF format: a checkpoint rooted at the model itself (keys
// "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", a compiled model's optimizer under
// "optimizer/"), plus the self edge "root" Keras adds, written to exactly `path`; the
// directory's `checkpoint` state file then names it (as Keras does).
void save_weights(const layers::LayerPtr &model, const std::string &path);
// Keras's model.load_weights(path) for TF-format checkpoints: path is a prefix, or a directory
// whose latest checkpoint is read. A compiled model's optimizer is restored too (its slots when
// it makes them). A model that is not built yet keeps the values (and the checkpoint's files
// open) and takes them when it builds, as Keras's deferred restoration: the status lists them as
// pending until then, and a mismatch shows then, as the build's error. Fails unless something
// besides the root matched or waits (assert_nontrivial_match); returns the status.
LoadStatus load_weights(const layers::LayerPtr &model, const std::string &path);

// The root save_weights and load_weights use (Keras's tf.train.Checkpoint(root=model)): the
// model's own object with the self edge "root". The SavedModel's variables/ checkpoint uses it too.
TrackablePtr make_weights_root(const layers::LayerPtr &model);

}  // namespace kiln::train
