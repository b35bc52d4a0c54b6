// libFuzzer target: the TensorBoard event-file reader (src/io/event_reader.cc). The input is an
// event file, as it is or as payloads the target frames (fuzz_events.h). It is read from memory
// (parse_event_bytes) and from a file (read_event_file), which must agree exactly: the same error,
// or the same events (compared through to_config's JSON, which must never fail). Failures must be
// DataLoss; a file framed here with its CRCs right reads every whole record unless one is not an
// Event, and is truncated exactly when the target's cut falls inside a record.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "fuzz_events.h"
#include "fuzz_util.h"
#include "io/event_reader.h"
#include "io/file_util.h"

namespace {

struct Outcome {
  bool failed = false;
  kiln::Code code = kiln::Code::kOk;
  std::string text;  // the message, or the file as JSON
  size_t events = 0;
  bool truncated = false;
};

template <typename F>
Outcome run(F read) {
  Outcome o;
  try {
    const kiln::io::events::EventFile f = read();
    o.events = f.events.size();
    o.truncated = f.truncated;
    o.text = kiln::io::events::to_config(f).to_json();
  } catch (const kiln::Error &e) {
    o.failed = true;
    o.code = e.code();
    o.text = e.what();
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  namespace ev = kiln::io::events;
  const kiln::fuzz::EventsInput in = kiln::fuzz::make_events_input(bytes, size);
  const std::string path = kiln::io::join_path(kiln::fuzz::scratch_dir(), "events.out.tfevents.0.fuzz");
  kiln::fuzz::write_file(path, in.file);
  const Outcome memory = run([&] { return ev::parse_event_bytes(in.file, path); });
  const Outcome file = run([&] { return ev::read_event_file(path); });
  if (memory.failed != file.failed || memory.code != file.code || memory.text != file.text) __builtin_trap();
  if (memory.failed && memory.code != kiln::Code::kDataLoss) __builtin_trap();
  if (in.mode & kiln::fuzz::kEventsFramed) {
    if (memory.failed) {
      // Only the decoding may fail: every CRC is right.
      if (memory.text.find("not an Event") == std::string::npos) __builtin_trap();
    } else {
      if (memory.truncated != kiln::fuzz::ends_inside_record(in)) __builtin_trap();
      if (memory.events != kiln::fuzz::whole_records(in)) __builtin_trap();
    }
  }
  return 0;
}
