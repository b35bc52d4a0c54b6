// libFuzzer target: the tensor-bundle reader (src/io/bundle_reader.cc) on arbitrary index and
// data files. The input becomes `<prefix>.index` (as raw bytes, or records written as a valid
// table: fuzz_util.h) and the data file, under the names of shard 0 of 1 and of both shards of
// 2. The reader opens them and reads every entry both ways (as a tensor and as strings). Any
// failure must be a kiln::Error: another exception, a crash, a sanitizer report, a hang, or an
// allocation past libFuzzer's malloc limit (a size field believed before it was checked against
// the file) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_table.h"
#include "fuzz_util.h"
#include "io/bundle.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  using kiln::io::BundleReader;
  namespace fz = kiln::fuzz;
  const fz::BundleInput in = fz::split_bundle_input(bytes, size);
  const std::string prefix = fz::scratch_dir() + "/b";
  if ((in.mode & fz::kRecords) && (in.mode & fz::kOwnIndex))
    fz::write_file(prefix + ".index", fz::finish_table(in.data, fz::parse_records(in.index)));
  else if (in.mode & fz::kRecords)
    fz::write_table(prefix + ".index", fz::parse_records(in.index), in.mode);
  else
    fz::write_file(prefix + ".index", in.index);
  for (const char *shard : {".data-00000-of-00001", ".data-00000-of-00002", ".data-00001-of-00002"})
    fz::write_file(prefix + shard, in.data);
  try {
    const BundleReader reader(prefix);
    if (reader.num_shards() < 1) __builtin_trap();
    for (const kiln::io::BundleEntry &e : reader.entries()) {
      if (reader.entry(e.key).key != e.key) __builtin_trap();
      try {
        const kiln::Tensor t = reader.read(e.key);
        if (static_cast<int64_t>(t.byte_size()) != e.size) __builtin_trap();
      } catch (const kiln::Error &) {
      }
      try {
        (void)reader.read_strings(e.key);
      } catch (const kiln::Error &) {
      }
    }
    (void)reader.contains("");
  } catch (const kiln::Error &) {
  }
  return 0;
}
