// Writes the fuzz targets' seed corpora: valid inputs written by kiln (bundles of every dtype, an
// empty bundle, an object-based checkpoint of the fuzz model, state files), one index crafted the
// way kiln's writer never writes (big-endian data, Snappy blocks, a sliced entry, two shards), and
// the TensorFlow fixtures when they are present (they are never copied into the repository).
//   kiln_fuzz_seeds <out_dir> [<fixtures_dir>]
// makes <out_dir>/{bundle_reader,checkpoint_state,object_graph,saved_model}/.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_model.h"
#include "fuzz_table.h"
#include "fuzz_util.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/crc32c.h"
#include "io/file_util.h"
#include "io/saved_model_format.h"
#include "tensor_bundle.pb.h"
#include "train/checkpoint.h"

namespace {

namespace fs = std::filesystem;
namespace io = kiln::io;
using kiln::DType;
using kiln::Shape;

// Inputs of the bundle target are capped at this (libFuzzer works best on small inputs; a seed
// keeps its whole index and the start of its data).
constexpr size_t kMaxBundleSeed = 32 * 1024;

std::string slurp(const std::string &path) { return io::file_exists(path) ? io::read_file(path) : ""; }

void put(const fs::path &dir, const std::string &name, const std::string &bytes) {
  kiln::fuzz::write_file((dir / name).string(), bytes);
}

std::string encode_records(const std::vector<std::pair<std::string, std::string>> &records) {
  std::string out;
  for (const auto &r : records) kiln::fuzz::put_record(&out, r.first, r.second);
  return out;
}

// Three seeds per bundle: the index as it is; as records (fuzz_util.h); and as the index block
// of a table of the records in small blocks, over those blocks.
void put_bundle(const fs::path &dir, const std::string &name, const std::string &prefix) {
  namespace fz = kiln::fuzz;
  const std::string data = slurp(prefix + ".data-00000-of-00001");
  const std::string records = fz::table_records(prefix + ".index");
  const fz::TableParts parts = fz::table_parts(fz::parse_records(records), fz::kSmallBlocks);
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {name, fz::join_bundle_input(0, slurp(prefix + ".index"), data)},
      {name + "_records", fz::join_bundle_input(fz::kRecords, records, data)},
      {name + "_index_block", fz::join_bundle_input(fz::kRecords | fz::kOwnIndex | fz::kSmallBlocks,
                                                    encode_records(parts.index), parts.blocks)}};
  for (auto seed : seeds) {
    if (seed.second.size() > kMaxBundleSeed) seed.second.resize(kMaxBundleSeed);
    put(dir, seed.first, seed.second);
  }
}

// An index of what kiln's writer never writes: a big-endian header, two shards, a sliced entry,
// a dtype kiln has no DType for. As records, in Snappy-compressed 64-byte blocks. Returns the
// records; *data gets the data file (shard 0).
std::string crafted_records(std::string *data) {
  namespace tfp = kiln::tfproto;
  std::string records;
  tfp::BundleHeaderProto header;
  header.set_num_shards(2);
  header.set_endianness(tfp::BundleHeaderProto::BIG);
  header.mutable_version()->set_producer(1);
  kiln::fuzz::put_record(&records, "", header.SerializeAsString());
  auto add = [&](const std::string &key, tfp::DataType dtype, std::vector<int64_t> shape,
                 const std::string &bytes, int shard) {
    tfp::BundleEntryProto e;
    e.set_dtype(dtype);
    for (int64_t d : shape) e.mutable_shape()->add_dim()->set_size(d);
    e.set_shard_id(shard);
    e.set_offset(static_cast<int64_t>(data->size()));
    e.set_size(static_cast<int64_t>(bytes.size()));
    e.set_crc32c(io::crc32c::mask(io::crc32c::value(bytes.data(), bytes.size())));
    if (shard == 0) *data += bytes;
    kiln::fuzz::put_record(&records, key, e.SerializeAsString());
  };
  // float32 [2] = {1, -2}, big-endian
  add("a/float", tfp::DT_FLOAT, {2}, std::string("\x3f\x80\x00\x00\xc0\x00\x00\x00", 8), 0);
  add("b/int64", tfp::DT_INT64, {}, std::string("\x00\x00\x00\x00\x00\x00\x05\xdc", 8), 0);
  add("c/other_shard", tfp::DT_INT32, {1}, std::string("\x00\x00\x00\x07", 4), 1);
  tfp::BundleEntryProto sliced;
  sliced.set_dtype(tfp::DT_FLOAT);
  sliced.mutable_shape()->add_dim()->set_size(4);
  auto *extent = sliced.add_slices()->add_extent();
  extent->set_start(0);
  extent->set_length(4);
  kiln::fuzz::put_record(&records, "d/sliced", sliced.SerializeAsString());
  add("e/half", tfp::DT_HALF, {2}, std::string("\x3c\x00\x40\x00", 4), 0);
  return records;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s <out_dir> [<fixtures_dir>]\n", argv[0]);
    return 2;
  }
  try {
    const fs::path out = argv[1];
    const std::string fixtures = argc == 3 ? argv[2] : "";
    const fs::path bundles = out / "bundle_reader", states = out / "checkpoint_state",
                   graphs = out / "object_graph", manifests = out / "saved_model";
    for (const fs::path &d : {bundles, states, graphs, manifests}) fs::create_directories(d);
    const std::string work = kiln::fuzz::scratch_dir();

    // ---- bundles written by kiln
    {
      const std::string prefix = io::join_path(work, "dtypes");
      io::BundleWriter w(prefix);
      w.add("float32", kiln::fuzz::filled(DType::kFloat32, Shape{2, 3}, 1));
      w.add("float64", kiln::fuzz::filled(DType::kFloat64, Shape{2}, -1));
      w.add("bfloat16", kiln::fuzz::filled(DType::kBFloat16, Shape{3}, 2));
      w.add("int32", kiln::fuzz::filled(DType::kInt32, Shape{}, 3));
      w.add("int64", kiln::fuzz::filled(DType::kInt64, Shape{3}, 4));
      w.add("uint8", kiln::fuzz::filled(DType::kUInt8, Shape{4}, 0));
      w.add("bool", kiln::fuzz::filled(DType::kBool, Shape{5}, 0));
      w.add("empty", kiln::fuzz::filled(DType::kFloat32, Shape{0, 3}, 0));
      w.add_strings("strings", {2}, {"ab", ""});
      w.add_strings("string_scalar", {}, {"graph"});
      w.finish();
      put_bundle(bundles, "kiln_dtypes", prefix);
    }
    {
      const std::string prefix = io::join_path(work, "empty");
      io::BundleWriter w(prefix);
      w.finish();
      put_bundle(bundles, "kiln_empty", prefix);
    }
    {
      const std::string prefix = io::join_path(work, "model");
      kiln::train::write_object_graph(kiln::fuzz::make_model(10, /*with_slots=*/true), prefix);
      put_bundle(bundles, "kiln_model", prefix);
      const io::BundleReader r(prefix);
      put(graphs, "kiln_model_with_slots", r.read_strings("_CHECKPOINTABLE_OBJECT_GRAPH").at(0));
      const std::string plain = io::join_path(work, "plain");
      kiln::train::write_object_graph(kiln::fuzz::make_model(), plain);
      put(graphs, "kiln_model", io::BundleReader(plain).read_strings("_CHECKPOINTABLE_OBJECT_GRAPH").at(0));
    }
    {
      std::string data;
      const std::string records = crafted_records(&data);
      using kiln::fuzz::kRecords, kiln::fuzz::kSmallBlocks, kiln::fuzz::kSnappy;
      put(bundles, "crafted_big_endian_two_shards_sliced",
          kiln::fuzz::join_bundle_input(kRecords | kSnappy | kSmallBlocks, records, data));
    }

    // ---- state files
    {
      io::CheckpointState s;
      s.model_checkpoint_path = io::join_path(work, "ckpt-3");
      s.all_model_checkpoint_paths = {io::join_path(work, "ckpt-2"), "/elsewhere/ckpt-1"};
      s.all_model_checkpoint_timestamps = {1.7e9, 1.7e9 + 0.25, 1.7e9 + 60};
      s.last_preserved_timestamp = 1.6e9;
      io::update_checkpoint_state(work, s);
      put(states, "kiln_manager", slurp(io::join_path(work, io::kCheckpointStateFile)));
      io::CheckpointState quoted;
      quoted.model_checkpoint_path = "we\"ird\\ name\n\xc3\xa9";
      io::update_checkpoint_state(work, quoted);
      put(states, "kiln_escaped", slurp(io::join_path(work, io::kCheckpointStateFile)));
      put(states, "tf1_with_comment",
          "# written by hand\nmodel_checkpoint_path: 'model.ckpt-7' all_model_checkpoint_paths: "
          "\"model.ckpt-7\"\nunknown_field { a: 1 }\n");
    }

    // ---- SavedModel manifests (saved_model.pb, then 0xFF 0xFE and fingerprint.pb)
    {
      io::SavedModelManifest m;
      m.kiln_version = "0.1.0";
      m.model_config = kiln::Config::from_json(
          R"({"class_name": "Sequential", "config": {"name": "sequential", "layers": [{"class_name": "Dense",)"
          R"( "config": {"name": "dense", "units": 3, "activation": "relu"}}]}})");
      m.build_inputs = {io::TensorSpecInfo{"", kiln::DType::kFloat32, {-1, 4}}};
      io::SignatureInfo sig;
      sig.inputs = {io::TensorSpecInfo{"dense_input", kiln::DType::kFloat32, {-1, 4}}};
      sig.outputs = {io::TensorSpecInfo{"dense", kiln::DType::kFloat32, {-1, 3}}};
      m.signatures = {sig};
      const std::string plain = io::encode_saved_model(m);
      put(manifests, "kiln_uncompiled", plain);
      m.compile_config = kiln::Config::from_json(
          R"({"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}}, "loss": [],)"
          R"( "loss_weights": null, "metrics": ["accuracy"], "run_eagerly": false})");
      const std::string compiled = io::encode_saved_model(m);
      put(manifests, "kiln_compiled_with_fingerprint",
          compiled + std::string("\xff\xfe") + io::encode_fingerprint(compiled, "index bytes"));
      put(manifests, "kiln_stale_fingerprint",
          compiled + std::string("\xff\xfe") + io::encode_fingerprint(plain, "index bytes"));
    }

    // ---- the TensorFlow fixtures
    if (!fixtures.empty()) {
      const std::string bert = fixtures + "/tf1_bert_tiny/bert_model.ckpt";
      const std::string tf2 = fixtures + "/tf2_checkpoint/keras_embedding.ckpt-0";
      if (io::file_exists(bert + ".index")) {
        put_bundle(bundles, "tf1_bert_tiny", bert);
      }
      if (io::file_exists(tf2 + ".index")) {
        put_bundle(bundles, "tf2_keras_truncated_data", tf2);
        put(graphs, "tf2_keras", io::BundleReader(tf2).read_strings("_CHECKPOINTABLE_OBJECT_GRAPH").at(0));
      }
      const std::string state = fixtures + "/tf2_checkpoint/checkpoint";
      if (io::file_exists(state)) {
        put(states, "tf2_keras", slurp(state));
      }
    }
    for (const fs::path &d : {bundles, states, graphs, manifests}) {
      size_t n = 0;
      for (const auto &f : fs::directory_iterator(d)) n += f.is_regular_file() ? 1 : 0;
      std::printf("kiln_fuzz_seeds: %zu seeds in %s\n", n, d.string().c_str());
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "kiln_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
