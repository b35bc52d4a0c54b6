// libFuzzer target: the object-graph restore (restore_object_graph, src/train/checkpoint.cc) fed
// a bundle whose _CHECKPOINTABLE_OBJECT_GRAPH is the input (a serialized TrackableObjectGraph, or
// any bytes). The bundle also holds the values a save of the fuzz model (fuzz_model.h, with
// optimizer slots) writes, plus a few of other dtypes and shapes for the graph to point at.
// The restore goes into a fresh fuzz model, then every check of the load status runs. Any
// failure must be a kiln::Error; a restored value must have its variable's dtype and shape.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/error.h"
#include "fuzz_model.h"
#include "fuzz_util.h"
#include "io/bundle.h"
#include "io/file_util.h"
#include "train/checkpoint.h"

namespace {

struct Value {
  std::string key;
  kiln::Tensor tensor;
};

// The values of a save of the fuzz model (read back from a bundle written by kiln), in the
// save's order, then the extras.
const std::vector<Value> &saved_values() {
  static const std::vector<Value> values = [] {
    const std::string prefix = kiln::io::join_path(kiln::fuzz::scratch_dir(), "model");
    kiln::train::write_object_graph(kiln::fuzz::make_model(10, /*with_slots=*/true), prefix);
    const kiln::io::BundleReader reader(prefix);
    std::vector<Value> out;
    for (const kiln::io::BundleEntry &e : reader.entries())
      if (e.dtype != kiln::io::TfDType::kString) out.push_back(Value{e.key, reader.read(e.key)});
    using kiln::DType;
    using kiln::Shape;
    out.push_back(Value{"extra/float64", kiln::fuzz::filled(DType::kFloat64, Shape{3, 4}, -2)});
    out.push_back(Value{"extra/bfloat16", kiln::fuzz::filled(DType::kBFloat16, Shape{}, 7)});
    out.push_back(Value{"extra/empty", kiln::fuzz::filled(DType::kFloat32, Shape{0, 4}, 0)});
    out.push_back(Value{"extra/int64", kiln::fuzz::filled(DType::kInt64, Shape{3, 4}, 1)});
    return out;
  }();
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::train::set_checkpoint_warning_sink([](const std::string &) {});  // unmatched values are expected
  kiln::fuzz::quiet_protobuf();
  (void)saved_values();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  const std::string prefix = kiln::io::join_path(kiln::fuzz::scratch_dir(), "g");
  {
    kiln::io::BundleWriter writer(prefix);
    for (const Value &v : saved_values()) writer.add(v.key, v.tensor);
    writer.add_strings("extra/strings", {2}, {"layer_with_weights-0", ""});
    writer.add_strings("_CHECKPOINTABLE_OBJECT_GRAPH", {},
                       {std::string(reinterpret_cast<const char *>(bytes), size)});
    writer.finish();
  }
  const kiln::train::TrackablePtr root = kiln::fuzz::make_model();
  try {
    const kiln::train::LoadStatus status = kiln::train::restore_object_graph(root, prefix);
    status.expect_partial();
    (void)status.unmatched_values();
    (void)status.pending_values();
    (void)status.unmatched_objects();
    if (status.restored_count() < 0) __builtin_trap();
    for (auto check : {&kiln::train::LoadStatus::assert_consumed,
                       &kiln::train::LoadStatus::assert_existing_objects_matched,
                       &kiln::train::LoadStatus::assert_nontrivial_match}) {
      try {
        (status.*check)();
      } catch (const kiln::Error &) {
      }
    }
  } catch (const kiln::Error &) {
  }
  return 0;
}
