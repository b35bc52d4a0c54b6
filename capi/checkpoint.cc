// Writing and restoring checkpoints across the ABI: kiln_checkpoint (tf.train.Checkpoint),
// kiln_checkpoint_load_status, kiln_checkpoint_manager, tf.train.latest_checkpoint and Keras's
// save_weights / load_weights, over train/checkpoint.h.
#include "train/checkpoint.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "capi/handles.h"
#include "capi/optimizer_handle.h"
#include "io/checkpoint_state.h"

using kiln::Code;
using kiln::fail;
using kiln::capi::require_not_null;
namespace train = kiln::train;

struct kiln_checkpoint {
  std::shared_ptr<train::Checkpoint> checkpoint;
};

struct kiln_checkpoint_load_status {
  train::LoadStatus status;
};

struct kiln_checkpoint_manager {
  std::unique_ptr<train::CheckpointManager> manager;
};

namespace {

train::Checkpoint &checkpoint_of(const kiln_checkpoint *c, const char *fn) {
  require_not_null(c, fn, "checkpoint");
  return *c->checkpoint;
}

const train::LoadStatus &status_of(const kiln_checkpoint_load_status *s, const char *fn) {
  require_not_null(s, fn, "status");
  return s->status;
}

train::CheckpointManager &manager_of(const kiln_checkpoint_manager *m, const char *fn) {
  require_not_null(m, fn, "manager");
  return *m->manager;
}

// A path for the caller, freed with kiln_string_free (std::free); NULL for "" (TF's None) when
// empty_is_null.
char *new_string(const std::string &s, bool empty_is_null = false) {
  if (empty_is_null && s.empty()) return nullptr;
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

void track(kiln_checkpoint *checkpoint, const char *name, const void *object, const char *arg, const char *fn,
           const std::function<train::TrackablePtr()> &make) {
  train::Checkpoint &c = checkpoint_of(checkpoint, fn);
  require_not_null(name, fn, "name");
  require_not_null(object, fn, arg);
  c.track(name, make());
}

// Runs a restore and hands its status out (or drops it when the caller does not want it).
template <typename F>
void give_status(kiln_checkpoint_load_status **out, F &&restore) {
  auto s = std::make_unique<kiln_checkpoint_load_status>(kiln_checkpoint_load_status{restore()});
  if (out) *out = s.release();
}

}  // namespace

extern "C" {

// ------------------------------------------------------------------ kiln_checkpoint

kiln_status *kiln_checkpoint_create(kiln_checkpoint **out) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  auto c = std::make_unique<kiln_checkpoint>();
  c->checkpoint =
      std::make_shared<train::Checkpoint>(std::vector<std::pair<std::string, train::TrackablePtr>>{});
  *out = c.release();
  KILN_CAPI_END
}

void kiln_checkpoint_free(kiln_checkpoint *checkpoint) { delete checkpoint; }

kiln_status *kiln_checkpoint_track_layer(kiln_checkpoint *checkpoint, const char *name, kiln_layer *layer) {
  KILN_CAPI_BEGIN
  const char *fn = __func__;
  track(checkpoint, name, layer, "layer", fn,
        [&] { return train::make_trackable(kiln::capi::layer_of(layer, fn)); });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_track_optimizer(kiln_checkpoint *checkpoint, const char *name,
                                             kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  track(checkpoint, name, optimizer, "optimizer", __func__,
        [&] { return train::make_trackable(optimizer->optimizer); });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_track_variable(kiln_checkpoint *checkpoint, const char *name,
                                            kiln_variable *variable) {
  KILN_CAPI_BEGIN
  track(checkpoint, name, variable, "variable", __func__,
        [&] { return train::make_trackable(variable->variable); });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_track_global_rng(kiln_checkpoint *checkpoint, const char *name) {
  KILN_CAPI_BEGIN
  // No object handle: the global random state is one for the library (the "object" checked for
  // NULL is the name, given already).
  track(checkpoint, name, name, "name", __func__, [] { return train::make_global_rng_trackable(); });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_track_checkpoint(kiln_checkpoint *checkpoint, const char *name,
                                              kiln_checkpoint *child) {
  KILN_CAPI_BEGIN
  const char *fn = __func__;
  track(checkpoint, name, child, "child", fn, [&] {
    // A checkpoint holding itself would never be freed (and its graph is only itself).
    if (child->checkpoint == checkpoint->checkpoint)
      fail(Code::kInvalidArgument, fn, ": a checkpoint cannot track itself (child is checkpoint)");
    return child->checkpoint->root();
  });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_save(char **out_path, kiln_checkpoint *checkpoint, const char *file_prefix) {
  KILN_CAPI_BEGIN
  train::Checkpoint &c = checkpoint_of(checkpoint, __func__);
  require_not_null(file_prefix, __func__, "file_prefix");
  const std::string path = c.save(file_prefix);
  if (out_path) *out_path = new_string(path);
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_write(char **out_path, kiln_checkpoint *checkpoint, const char *file_prefix) {
  KILN_CAPI_BEGIN
  train::Checkpoint &c = checkpoint_of(checkpoint, __func__);
  require_not_null(file_prefix, __func__, "file_prefix");
  const std::string path = c.write(file_prefix);
  if (out_path) *out_path = new_string(path);
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_restore(kiln_checkpoint_load_status **out_status, kiln_checkpoint *checkpoint,
                                     const char *save_path) {
  KILN_CAPI_BEGIN
  train::Checkpoint &c = checkpoint_of(checkpoint, __func__);
  require_not_null(save_path, __func__, "save_path");
  give_status(out_status, [&] { return c.restore(save_path); });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_read(kiln_checkpoint_load_status **out_status, kiln_checkpoint *checkpoint,
                                  const char *save_path) {
  KILN_CAPI_BEGIN
  train::Checkpoint &c = checkpoint_of(checkpoint, __func__);
  require_not_null(save_path, __func__, "save_path");
  give_status(out_status, [&] { return c.read(save_path); });
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_get_save_counter(int64_t *out, const kiln_checkpoint *checkpoint) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = checkpoint_of(checkpoint, __func__).save_counter();
  KILN_CAPI_END
}

// ------------------------------------------------------------------ load status

void kiln_checkpoint_load_status_free(kiln_checkpoint_load_status *status) { delete status; }

kiln_status *kiln_checkpoint_load_status_expect_partial(kiln_checkpoint_load_status *status) {
  KILN_CAPI_BEGIN
  status_of(status, __func__).expect_partial();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_load_status_assert_consumed(const kiln_checkpoint_load_status *status) {
  KILN_CAPI_BEGIN
  status_of(status, __func__).assert_consumed();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_load_status_assert_existing_objects_matched(
    const kiln_checkpoint_load_status *status) {
  KILN_CAPI_BEGIN
  status_of(status, __func__).assert_existing_objects_matched();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_load_status_assert_nontrivial_match(const kiln_checkpoint_load_status *status) {
  KILN_CAPI_BEGIN
  status_of(status, __func__).assert_nontrivial_match();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_load_status_get_info(kiln_config **out,
                                                  const kiln_checkpoint_load_status *status) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const train::LoadStatus &s = status_of(status, __func__);
  kiln::Config c;
  c.set("path", s.path());
  c.set("restored_count", s.restored_count());
  c.set("unmatched_values", s.unmatched_values());
  c.set("pending_values", s.pending_values());
  c.set("unmatched_objects", s.unmatched_objects());
  *out = new kiln_config{std::move(c)};
  KILN_CAPI_END
}

// ------------------------------------------------------------------ manager

kiln_status *kiln_checkpoint_manager_create(kiln_checkpoint_manager **out, kiln_checkpoint *checkpoint,
                                            const char *directory, const kiln_config *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  checkpoint_of(checkpoint, __func__);
  require_not_null(directory, __func__, "directory");
  kiln::ConfigReader r(kiln::capi::config_or_empty(options), "CheckpointManager");
  train::CheckpointManagerOptions o;
  if (r.has("max_to_keep")) o.max_to_keep = r.get_int("max_to_keep");
  if (r.has("keep_checkpoint_every_n_hours"))
    o.keep_checkpoint_every_n_hours = r.get_float("keep_checkpoint_every_n_hours", 0.0);
  o.checkpoint_name = r.get_string("checkpoint_name", o.checkpoint_name);
  r.finish();
  auto m = std::make_unique<kiln_checkpoint_manager>();
  m->manager = std::make_unique<train::CheckpointManager>(checkpoint->checkpoint, directory, std::move(o));
  *out = m.release();
  KILN_CAPI_END
}

void kiln_checkpoint_manager_free(kiln_checkpoint_manager *manager) { delete manager; }

kiln_status *kiln_checkpoint_manager_save(char **out_path, kiln_checkpoint_manager *manager,
                                          int64_t checkpoint_number) {
  KILN_CAPI_BEGIN
  train::CheckpointManager &m = manager_of(manager, __func__);
  if (checkpoint_number < -1)
    fail(Code::kInvalidArgument, __func__, ": checkpoint_number must be >= 0, or -1 for none; got ",
         checkpoint_number);
  const std::string path =
      m.save(checkpoint_number < 0 ? std::nullopt : std::optional<int64_t>(checkpoint_number));
  if (out_path) *out_path = new_string(path);
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_manager_get_latest_checkpoint(char **out,
                                                           const kiln_checkpoint_manager *manager) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new_string(manager_of(manager, __func__).latest_checkpoint(), true);
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_manager_get_checkpoints(kiln_config **out,
                                                     const kiln_checkpoint_manager *manager) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  kiln::Config c;
  c.set("checkpoints", manager_of(manager, __func__).checkpoints());
  *out = new kiln_config{std::move(c)};
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_manager_get_directory(const char **out, const kiln_checkpoint_manager *manager) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = manager_of(manager, __func__).directory().c_str();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_manager_restore_or_initialize(char **out_path,
                                                           kiln_checkpoint_manager *manager) {
  KILN_CAPI_BEGIN
  const std::string path = manager_of(manager, __func__).restore_or_initialize();
  if (out_path) *out_path = new_string(path, true);
  KILN_CAPI_END
}

// ------------------------------------------------------------------ free functions, models

kiln_status *kiln_latest_checkpoint(char **out, const char *checkpoint_dir) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(checkpoint_dir, __func__, "checkpoint_dir");
  *out = new_string(kiln::io::latest_checkpoint(checkpoint_dir), true);
  KILN_CAPI_END
}

kiln_status *kiln_model_save_weights(const kiln_layer *model, const char *filepath) {
  KILN_CAPI_BEGIN
  const kiln::layers::LayerPtr m = kiln::capi::layer_of(model, __func__, "model");
  require_not_null(filepath, __func__, "filepath");
  train::save_weights(m, filepath);
  KILN_CAPI_END
}

kiln_status *kiln_model_load_weights(kiln_checkpoint_load_status **out_status, kiln_layer *model,
                                     const char *filepath) {
  KILN_CAPI_BEGIN
  const kiln::layers::LayerPtr m = kiln::capi::layer_of(model, __func__, "model");
  require_not_null(filepath, __func__, "filepath");
  give_status(out_status, [&] { return train::load_weights(m, filepath); });
  KILN_CAPI_END
}

}  // extern "C"
