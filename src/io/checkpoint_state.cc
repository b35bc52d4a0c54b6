#include "io/checkpoint_state.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "checkpoint_state.pb.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/file_util.h"

namespace kiln::io {

namespace {

// Keeps the text parser's first error for the message (instead of protobuf logging to stderr).
class FirstError final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string &message) override {
    if (text.empty()) text = str_cat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  std::string text;
};

std::string strip_trailing_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.empty() ? "." : dir;
}

// TF stores the paths of checkpoints in the directory relative to it, so the directory can be
// moved; a path in dir is stripped to the rest, any other is kept. Runs of slashes count as one
// (written as one), so "dir//ckpt" and "//dir/ckpt" are "ckpt", and the writer's "is the newest
// path already last in the list" sees one file however its slashes were spelt.
std::string relative_to(const std::string &dir, const std::string &raw_path) {
  const std::string path = collapse_slashes(raw_path);
  const std::string d = strip_trailing_slashes(collapse_slashes(dir));
  const std::string with_slash = d == "/" ? d : d + "/";
  if (path.size() > with_slash.size() && path.compare(0, with_slash.size(), with_slash) == 0)
    return path.substr(with_slash.size());
  return path;
}

std::string resolve(const std::string &dir, const std::string &path) {
  return is_absolute_path(path) ? path : join_path(dir, path);
}

bool ends_with(const std::string &s, const std::string &tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The length of a `.data-NNNNN-of-NNNNN` tail of path (TF's shard file names), or 0.
size_t data_suffix_length(const std::string &path) {
  static const char kPattern[] = ".data-#####-of-#####";
  const size_t n = sizeof kPattern - 1;
  if (path.size() < n) return 0;
  const size_t at = path.size() - n;
  for (size_t i = 0; i < n; ++i) {
    const char c = path[at + i];
    if (kPattern[i] == '#' ? !(c >= '0' && c <= '9') : c != kPattern[i]) return 0;
  }
  return n;
}

}  // namespace

std::optional<CheckpointState> get_checkpoint_state(const std::string &dir, const std::string &state_file) {
  const std::string path = join_path(dir, state_file);
  if (!file_exists(path)) return std::nullopt;
  const std::string text = read_file(path);

  tfproto::CheckpointState proto;
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  // A newer TensorFlow may add fields; what kiln needs is still there.
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(text, &proto))
    fail(Code::kDataLoss, "checkpoint state file '", path, "' does not parse: ", errors.text);
  if (proto.model_checkpoint_path().empty())
    fail(Code::kDataLoss, "checkpoint state file '", path,
         "' names no checkpoint (model_checkpoint_path is empty)");

  CheckpointState state;
  state.model_checkpoint_path = resolve(dir, proto.model_checkpoint_path());
  for (const std::string &p : proto.all_model_checkpoint_paths())
    state.all_model_checkpoint_paths.push_back(resolve(dir, p));
  state.all_model_checkpoint_timestamps.assign(proto.all_model_checkpoint_timestamps().begin(),
                                               proto.all_model_checkpoint_timestamps().end());
  state.last_preserved_timestamp = proto.last_preserved_timestamp();
  return state;
}

void update_checkpoint_state(const std::string &dir, const CheckpointState &state,
                             const std::string &state_file) {
  KILN_REQUIRE(!state.model_checkpoint_path.empty(),
               "update_checkpoint_state: empty model_checkpoint_path for '", dir, "'");
  tfproto::CheckpointState proto;
  const std::string latest = relative_to(dir, state.model_checkpoint_path);
  proto.set_model_checkpoint_path(latest);
  for (const std::string &p : state.all_model_checkpoint_paths)
    proto.add_all_model_checkpoint_paths(relative_to(dir, p));
  const int n = proto.all_model_checkpoint_paths_size();
  if (n == 0 || proto.all_model_checkpoint_paths(n - 1) != latest)
    proto.add_all_model_checkpoint_paths(latest);
  KILN_REQUIRE(state.all_model_checkpoint_timestamps.size() <=
                   static_cast<size_t>(proto.all_model_checkpoint_paths_size()),
               "update_checkpoint_state: ", state.all_model_checkpoint_timestamps.size(), " timestamps for ",
               proto.all_model_checkpoint_paths_size(), " checkpoint paths");
  for (double t : state.all_model_checkpoint_timestamps) proto.add_all_model_checkpoint_timestamps(t);
  proto.set_last_preserved_timestamp(state.last_preserved_timestamp);

  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(proto, &text))
    fail(Code::kInternal, "update_checkpoint_state: cannot print the state for '", dir, "'");
  create_dirs(dir.empty() ? std::string(".") : dir);
  write_file_atomic(join_path(dir, state_file), text);
}

std::string latest_checkpoint(const std::string &dir, const std::string &state_file) {
  const std::optional<CheckpointState> state = get_checkpoint_state(dir, state_file);
  if (!state) return "";
  // Like TF, a state file naming a checkpoint that is gone means no usable checkpoint.
  if (!bundle_exists(state->model_checkpoint_path)) return "";
  return state->model_checkpoint_path;
}

std::string resolve_checkpoint_prefix(const std::string &path, const std::string &who) {
  if (path.empty()) fail(Code::kInvalidArgument, who, ": the checkpoint path is empty");
  if (is_directory(path)) {
    // A directory is not a checkpoint by itself: its state file says which one is the latest.
    const std::optional<CheckpointState> state = get_checkpoint_state(path);
    if (!state)
      fail(Code::kNotFound, who, ": the directory '", path, "' holds no checkpoint: it has no '",
           kCheckpointStateFile, "' state file naming its latest checkpoint");
    if (!bundle_exists(state->model_checkpoint_path))
      fail(Code::kNotFound, who, ": the directory '", path, "' holds no checkpoint: its '",
           kCheckpointStateFile, "' state file names '", state->model_checkpoint_path,
           "', which does not exist (no .index file)");
    return state->model_checkpoint_path;
  }
  if (is_file(path + ".index")) return path;
  if (ends_with(path, ".index") && is_file(path)) return path.substr(0, path.size() - 6);
  if (const size_t n = data_suffix_length(path); n && is_file(path)) return path.substr(0, path.size() - n);
  return path;
}

}  // namespace kiln::io
