// tf.compat.v1.train.init_from_checkpoint for kiln: values of a TensorFlow checkpoint (TF1
// name-based, such as google-research/bert's, or TF2 object-based, or kiln's own) copied into kiln
// variables through an assignment map from checkpoint names to variable names, with the scope
// forms of TF's map ("scope/": "other_scope/", "/" for everything). It is how a model built in
// kiln takes pretrained weights written by another program, whose names kiln's object-graph
// restore (checkpoint.h) cannot follow.
//
// Checkpoint names: a TF1 key is the variable's name ("bert/pooler/dense/kernel"); a TF2 key
// `<path>/.ATTRIBUTES/VARIABLE_VALUE` is read as its path, unescaped
// ("model/layer_with_weights-0/kernel"; the full key is accepted in a map too). Optimizer slots
// and counters (TF1 `<var>/adam_m`, `<var>/Adam_1`, `<var>/Momentum`, `global_step`, also as a TF2
// path; TF2 `.OPTIMIZER_SLOT` keys, the `optimizer/...` objects and `save_counter`) are skipped unless
// asked for by name, and `_CHECKPOINTABLE_OBJECT_GRAPH` and other non-variable attributes always.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "core/dtype.h"
#include "layers/layer.h"

namespace kiln::train {

// ------------------------------------------------------------------ checkpoint names

// What a checkpoint key stands for.
enum class CheckpointKeyKind {
  kVariable,        // a model's variable
  kOptimizerState,  // an optimizer's slot or counter, or a step counter
  kNotAVariable,    // the object graph, a slice of a partitioned variable, a non-variable attribute
};
struct CheckpointKeyName {
  std::string name;  // the name a map uses: the TF1 key itself, or a TF2 key's unescaped path
  CheckpointKeyKind kind = CheckpointKeyKind::kVariable;
  bool object_based = false;  // the key had TF2's `/.ATTRIBUTES/` form
};
// Reads one key as above.
CheckpointKeyName checkpoint_key_name(const std::string &key);
// A TF2 key's path with TF's escaping undone ("a..b/c.Sd" -> "a.b/c/d"): what the key
// `<path>/.ATTRIBUTES/VARIABLE_VALUE` names. "" when key is not of that form.
std::string object_based_variable_name(const std::string &key);
// Whether a TF1 variable name is an optimizer's slot or a counter: a last component adam_m,
// adam_v (google-research/bert's AdamWeightDecayOptimizer), Adam, Adam_1, Momentum, RMSProp,
// RMSProp_1, Adagrad, Adadelta, Adadelta_1, Ftrl, Ftrl_1 (tf.compat.v1.train's optimizers), or the
// whole name global_step, beta1_power, beta2_power.
bool is_tf1_optimizer_state_name(const std::string &name);

// ------------------------------------------------------------------ init_from_checkpoint

// One entry of an assignment map: checkpoint_name is a checkpoint variable's name, or a scope
// ending in '/' ("/" for every name); the target is a variable (variable), a variable's name, or
// a scope ending in '/' ("/" for every variable) of the variables init_from_checkpoint is given.
// Names map to names, scopes to scopes. A scope entry maps each given variable under the
// variable scope to the checkpoint name made of checkpoint_name and the rest of its name:
// {"bert/", "encoder/"} sends "bert/layer_0/kernel" to variable "encoder/layer_0/kernel".
struct CheckpointAssignment {
  std::string checkpoint_name;
  std::string variable_name;  // empty when variable is given
  std::shared_ptr<autodiff::Variable> variable;
};

struct InitFromCheckpointOptions {
  // Leave out optimizer slots and counters (CheckpointKeyKind::kOptimizerState) unless an entry
  // names them: a scope never takes them, and the report lists them as skipped.
  bool skip_optimizer_state = true;
  // A checkpoint name an entry asks for that the checkpoint lacks: false (TensorFlow's rule):
  // NotFound, nothing assigned; true: the variable keeps its value, listed in report.missing.
  bool allow_missing = false;
  // A value whose dtype or shape does not fit its variable: false: InvalidArgument naming both
  // names, dtypes and shapes, nothing assigned; true: skipped, listed in report.mismatched.
  bool skip_mismatched = false;
  // Accept a value whose shape differs from its variable's only in how runs of consecutive dims
  // are split or merged, the row-major order kept: [H, H] into [H, heads, H / heads] (a TF1 BERT
  // attention kernel into a MultiHeadAttention projection), [H] into [heads, H / heads]. A
  // transposition such as [4, 16] into [16, 4] is still a mismatch.
  bool allow_reshape = false;
};

struct InitFromCheckpointReport {
  struct Match {
    std::string checkpoint_name;
    std::string checkpoint_key;  // the key read (the name, or a TF2 key)
    std::string variable_name;
    std::shared_ptr<autodiff::Variable> variable;
    std::vector<int64_t> checkpoint_shape;
    bool reshaped = false;  // the value took the variable's shape (allow_reshape)
  };
  struct Mismatch {
    std::string checkpoint_name, variable_name;
    std::string checkpoint_dtype, variable_dtype;  // TensorFlow's dtype name for the checkpoint's
    std::vector<int64_t> checkpoint_shape, variable_shape;
  };
  struct Missing {
    std::string checkpoint_name, variable_name;
  };
  std::string checkpoint;  // the prefix read
  // In map order (a scope's variables in the order given); a variable appears once (the last
  // entry naming it wins, as in TF), a checkpoint name as often as it is used (ALBERT's shared
  // weights reach every layer).
  std::vector<Match> matched;
  std::vector<Mismatch> mismatched;  // skip_mismatched
  std::vector<Missing> missing;      // allow_missing
  // Checkpoint names (kVariable ones, and optimizer state unless skipped) that no entry took, and
  // the skipped names, in key order.
  std::vector<std::string> unmatched_checkpoint_names;
  std::vector<std::string> skipped_checkpoint_names;
  // The variables given that got no value, in the order given.
  std::vector<std::string> unmatched_variables;

  // A readable account, one line per match (with both shapes when reshaped), then the other lists.
  std::string to_string() const;
};

// Copies values of the checkpoint ckpt_dir_or_file (a prefix, one of its files, or a directory
// with a `checkpoint` state file naming its latest checkpoint) into variables as assignment_map
// says. Variable names and scopes are looked up among `variables` (a model's: layer->variables());
// a name two of them share is InvalidArgument. Every entry is resolved and checked and every value
// read (corruption is the reader's DataLoss) before any variable changes.
// Errors: InvalidArgument for an empty name, a scope mapped to a name or back, an entry with both
// or neither of variable and variable_name, a dtype or shape that does not fit (unless
// skip_mismatched); NotFound naming the checkpoint for a missing checkpoint, a checkpoint name it
// lacks (unless allow_missing), a variable name none of `variables` has, or a variable scope with
// none under it.
InitFromCheckpointReport init_from_checkpoint(
    const std::string &ckpt_dir_or_file, const std::vector<CheckpointAssignment> &assignment_map,
    const std::vector<std::shared_ptr<autodiff::Variable>> &variables,
    const InitFromCheckpointOptions &options = {});
// The same with a model's variables.
InitFromCheckpointReport init_from_checkpoint(const std::string &ckpt_dir_or_file,
                                              const std::vector<CheckpointAssignment> &assignment_map,
                                              const layers::LayerPtr &model,
                                              const InitFromCheckpointOptions &options = {});

// Whether a value of shape `from` can take the shape `to` under allow_reshape: the same element
// count, and the prefix products of one shape (where its dims end) all among the other's.
bool reshape_compatible(const std::vector<int64_t> &from, const std::vector<int64_t> &to);

}  // namespace kiln::train
