// What kiln-inspect's subcommands share (kiln_inspect.cc, inspect_events.cc): exit statuses, the
// usage-error message and the names of C API status codes.
#pragma once

#include <cstdio>
#include <string>

#include "kiln/kiln.h"

namespace kiln_inspect {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // a missing or corrupt file, an unknown variable
constexpr int kExitUsage = 2;

// "kiln-inspect: <message>" and the --help hint on stderr; returns kExitUsage.
inline int usage_error(const std::string &message) {
  std::fprintf(stderr, "kiln-inspect: %s\n", message.c_str());
  std::fprintf(stderr, "run 'kiln-inspect --help' for usage\n");
  return kExitUsage;
}

inline const char *code_name(kiln_status_code code) {
  switch (code) {
    case KILN_STATUS_INVALID_ARGUMENT:
      return "invalid argument";
    case KILN_STATUS_NOT_FOUND:
      return "not found";
    case KILN_STATUS_OUT_OF_RANGE:
      return "out of range";
    case KILN_STATUS_FAILED_PRECONDITION:
      return "failed precondition";
    case KILN_STATUS_DATA_LOSS:
      return "data loss";
    case KILN_STATUS_UNIMPLEMENTED:
      return "unimplemented";
    case KILN_STATUS_RESOURCE_EXHAUSTED:
      return "resource exhausted";
    case KILN_STATUS_INTERNAL:
      return "internal";
    default:
      return "error";
  }
}

}  // namespace kiln_inspect
