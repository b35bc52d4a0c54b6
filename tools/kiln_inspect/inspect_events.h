// kiln-inspect's `events` subcommand (inspect_events.cc): TensorBoard event files and logdirs.
#pragma once

#include <string>
#include <vector>

namespace kiln_inspect {

// kiln-inspect events PATH [--values]: the arguments after "events"; returns the exit status
// (0 ok, 1 a missing or corrupt file, 2 bad usage).
int run_events(const std::vector<std::string> &args);

}  // namespace kiln_inspect
