// libFuzzer target: the `checkpoint` state file (src/io/checkpoint_state.cc), protobuf text
// format. The input is the file; get_checkpoint_state and latest_checkpoint read it. A state that
// parses is written back with update_checkpoint_state and read again: the newest path and the
// list must name the same files (update appends the newest path when the list does not end with
// it, and "dir//x" may come back as "dir/x"). Any failure must be a kiln::Error.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"

namespace {

std::vector<std::string> collapse_slashes(const std::vector<std::string> &paths) {
  std::vector<std::string> out;
  for (const std::string &p : paths) out.push_back(kiln::io::collapse_slashes(p));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  namespace io = kiln::io;
  const std::string &dir = kiln::fuzz::scratch_dir();
  kiln::fuzz::write_file(io::join_path(dir, io::kCheckpointStateFile), bytes, size);
  std::optional<io::CheckpointState> state;
  try {
    state = io::get_checkpoint_state(dir);
    if (!state) __builtin_trap();  // the file is there
    (void)io::latest_checkpoint(dir);
  } catch (const kiln::Error &) {
    return 0;
  }
  // Round trip through the writer, under another name in the same directory.
  const char *kCopy = "checkpoint_copy";
  try {
    io::update_checkpoint_state(dir, *state, kCopy);
  } catch (const kiln::Error &) {
    return 0;  // more timestamps than paths: refused, as documented
  }
  std::optional<io::CheckpointState> again;
  try {
    again = io::get_checkpoint_state(dir, kCopy);
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "a state kiln wrote does not read back: %s\n", e.what());
    __builtin_trap();
  }
  if (!again || io::collapse_slashes(again->model_checkpoint_path) !=
                    io::collapse_slashes(state->model_checkpoint_path))
    __builtin_trap();
  std::vector<std::string> want = collapse_slashes(state->all_model_checkpoint_paths);
  const std::string latest = io::collapse_slashes(state->model_checkpoint_path);
  if (want.empty() || want.back() != latest) want.push_back(latest);
  if (collapse_slashes(again->all_model_checkpoint_paths) != want) __builtin_trap();
  if (again->all_model_checkpoint_timestamps.size() != state->all_model_checkpoint_timestamps.size())
    __builtin_trap();
  return 0;
}
