// What checkpoint.cc shares with checkpoint_api.cc: the restore with objects exempt from the
// unmatched-object check, and the path resolution of restore / load_weights.
#pragma once

#include <set>
#include <string>

#include "train/checkpoint.h"

namespace kiln::train {

// restore_object_graph, but the objects in not_required are never reported as unmatched (a
// Checkpoint's own save_counter, which a checkpoint written by write() or save_weights lacks).
LoadStatus restore_impl(const TrackablePtr &root, const std::string &prefix,
                        const std::set<Trackable::Id> &not_required);

// A directory's latest checkpoint (NotFound naming the directory and `who` when it has none), or
// path itself.
std::string resolve_checkpoint_path(const std::string &path, const char *who);

}  // namespace kiln::train
