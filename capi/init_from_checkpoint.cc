// tf.compat.v1.train.init_from_checkpoint across the ABI (kiln/init_from_checkpoint.h): the pairs
// of names (or variables) become the core's assignment map, the report a kiln_config.
#include "kiln/init_from_checkpoint.h"

#include <memory>
#include <string>
#include <vector>

#include "capi/handles.h"
#include "capi/options.h"
#include "train/init_from_checkpoint.h"

using kiln::Code;
using kiln::Config;
using kiln::fail;
using kiln::capi::require_not_null;
namespace train = kiln::train;

namespace {

kiln_init_from_checkpoint_options defaults() {
  kiln_init_from_checkpoint_options d{};
  d.struct_size = sizeof d;
  d.skip_optimizer_state = true;
  return d;
}
constexpr size_t kOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_init_from_checkpoint_options, allow_reshape);

Config report_config(const train::InitFromCheckpointReport &r) {
  Config c;
  c.set("checkpoint", r.checkpoint);
  std::vector<Config> matched;
  for (const auto &m : r.matched) {
    Config e;
    e.set("checkpoint_name", m.checkpoint_name).set("checkpoint_key", m.checkpoint_key);
    e.set("variable", m.variable_name).set("checkpoint_shape", m.checkpoint_shape);
    e.set("reshaped", m.reshaped);
    matched.push_back(std::move(e));
  }
  c.set("matched", matched);
  c.set("unmatched_checkpoint_names", r.unmatched_checkpoint_names);
  c.set("skipped_checkpoint_names", r.skipped_checkpoint_names);
  c.set("unmatched_variables", r.unmatched_variables);
  std::vector<Config> missing;
  for (const auto &m : r.missing) {
    Config e;
    e.set("checkpoint_name", m.checkpoint_name).set("variable", m.variable_name);
    missing.push_back(std::move(e));
  }
  c.set("missing", missing);
  std::vector<Config> mismatched;
  for (const auto &m : r.mismatched) {
    Config e;
    e.set("checkpoint_name", m.checkpoint_name).set("variable", m.variable_name);
    e.set("checkpoint_dtype", m.checkpoint_dtype).set("checkpoint_shape", m.checkpoint_shape);
    e.set("variable_dtype", m.variable_dtype).set("variable_shape", m.variable_shape);
    mismatched.push_back(std::move(e));
  }
  c.set("mismatched", mismatched);
  c.set("summary", r.to_string());
  return c;
}

}  // namespace

extern "C" {

kiln_status *kiln_init_from_checkpoint_options_init(kiln_init_from_checkpoint_options *options,
                                                    size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, defaults(), kOptionsV1, __func__,
                           "kiln_init_from_checkpoint_options");
  KILN_CAPI_END
}

kiln_status *kiln_init_from_checkpoint(kiln_config **out_report, const kiln_layer *model,
                                       kiln_variable *const *variables, size_t num_variables,
                                       const char *ckpt_dir_or_file, const char *const *checkpoint_names,
                                       const char *const *variable_names,
                                       kiln_variable *const *variables_to_assign, size_t num_pairs,
                                       const kiln_init_from_checkpoint_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_init_from_checkpoint";
  const kiln_init_from_checkpoint_options o =
      kiln::capi::read_options(options, defaults(), kOptionsV1, fn, "kiln_init_from_checkpoint_options");
  require_not_null(ckpt_dir_or_file, fn, "ckpt_dir_or_file");
  kiln::capi::require_array_fits(num_pairs, sizeof(const char *), fn, "num_pairs");
  kiln::capi::require_array_fits(num_variables, sizeof(kiln_variable *), fn, "num_variables");
  if (num_pairs) require_not_null(checkpoint_names, fn, "checkpoint_names");
  if (num_variables) require_not_null(variables, fn, "variables");

  std::vector<std::shared_ptr<kiln::autodiff::Variable>> store;
  if (model) store = kiln::capi::layer_of(model, fn, "model")->variables();
  for (size_t i = 0; i < num_variables; ++i) {
    if (!variables[i]) fail(Code::kInvalidArgument, fn, ": variables[", i, "] is NULL");
    store.push_back(variables[i]->variable);
  }
  if (model && store.empty() && !kiln::capi::layer_of(model, fn, "model")->built())
    fail(Code::kFailedPrecondition, fn, ": model '", kiln::capi::layer_of(model, fn, "model")->name(),
         "' is not built and has no variables yet; build it (or call it once) first");

  std::vector<train::CheckpointAssignment> map;
  map.reserve(num_pairs);
  for (size_t i = 0; i < num_pairs; ++i) {
    train::CheckpointAssignment a;
    if (!checkpoint_names[i]) fail(Code::kInvalidArgument, fn, ": checkpoint_names[", i, "] is NULL");
    a.checkpoint_name = checkpoint_names[i];
    if (variables_to_assign && variables_to_assign[i]) {
      a.variable = variables_to_assign[i]->variable;
    } else {
      if (!variable_names || !variable_names[i])
        fail(Code::kInvalidArgument, fn, ": pair ", i, " ('", a.checkpoint_name,
             "') has neither a variable (variables_to_assign) nor a variable name (variable_names)");
      a.variable_name = variable_names[i];
    }
    map.push_back(std::move(a));
  }

  train::InitFromCheckpointOptions core;
  core.skip_optimizer_state = o.skip_optimizer_state;
  core.allow_missing = o.allow_missing;
  core.skip_mismatched = o.skip_mismatched;
  core.allow_reshape = o.allow_reshape;
  const train::InitFromCheckpointReport report =
      train::init_from_checkpoint(ckpt_dir_or_file, map, store, core);
  if (out_report) {
    auto c = std::make_unique<kiln_config>(kiln_config{report_config(report)});
    *out_report = c.release();
  }
  KILN_CAPI_END
}

}  // extern "C"
