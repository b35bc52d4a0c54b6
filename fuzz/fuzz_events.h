// The input of the event-reader fuzz target (event_reader_fuzzer.cc), shared with its seed
// writer (make_seeds.cc):
//   byte 0     the mode: bit 0 clear, the rest is the event file as it is (so nearly every
//              mutation breaks a CRC, which tests the framing); bit 0 set, the rest is a list of
//              payloads (varint32 length, bytes; a payload cut short ends the list) that the
//              target frames with correct CRCs, so mutations reach the Event decoding; bit 1 also
//              set, the framed file then loses its last (mode >> 2) bytes (a cut-short record).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/record.h"

namespace kiln::fuzz {

inline constexpr uint8_t kEventsFramed = 1, kEventsCut = 2;

struct EventsInput {
  uint8_t mode = 0;
  std::string file;                 // the event file's bytes
  std::vector<size_t> record_ends;  // framed mode: where each framed record ends (before any cut)
};

// Framed mode: the records a reader must return (those whole after the cut) and whether the file
// then ends inside a record.
inline size_t whole_records(const EventsInput &in) {
  size_t n = 0;
  while (n < in.record_ends.size() && in.record_ends[n] <= in.file.size()) ++n;
  return n;
}
inline bool ends_inside_record(const EventsInput &in) {
  const size_t n = whole_records(in);
  return in.file.size() > (n == 0 ? 0 : in.record_ends[n - 1]);
}

inline EventsInput make_events_input(const uint8_t *bytes, size_t size) {
  EventsInput in;
  if (size == 0) return in;
  in.mode = bytes[0];
  const char *p = reinterpret_cast<const char *>(bytes) + 1,
             *end = reinterpret_cast<const char *>(bytes) + size;
  if (!(in.mode & kEventsFramed)) {
    in.file.assign(p, end);
    return in;
  }
  for (;;) {
    uint32_t n = 0;
    if (!get_varint32(&p, end, &n) || n > static_cast<size_t>(end - p)) break;
    io::record::append(in.file, std::string_view(p, n));
    p += n;
    in.record_ends.push_back(in.file.size());
  }
  if (in.mode & kEventsCut) {
    const size_t cut = in.mode >> 2;
    in.file.resize(in.file.size() > cut ? in.file.size() - cut : 0);
  }
  return in;
}

// A framed-mode input of these payloads.
inline std::string join_events_input(const std::vector<std::string> &payloads, uint8_t mode = kEventsFramed) {
  std::string out(1, static_cast<char>(mode | kEventsFramed));
  for (const std::string &p : payloads) {
    put_varint32(&out, static_cast<uint32_t>(p.size()));
    out += p;
  }
  return out;
}

}  // namespace kiln::fuzz
