// Writes the fuzz targets' seed corpora: valid inputs written by kiln (bundles of every dtype, an
// empty bundle, an object-based checkpoint of the fuzz model, state files), one index crafted the
// way kiln's writer never writes (big-endian data, Snappy blocks, a sliced entry, two shards), and
// the TensorFlow fixtures when they are present (they are never copied into the repository).
//   kiln_fuzz_seeds <out_dir> [<fixtures_dir>]
// makes <out_dir>/{bundle_reader,checkpoint_state,object_graph,saved_model,event_reader}/.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "event.pb.h"
#include "fuzz_events.h"
#include "fuzz_model.h"
#include "fuzz_table.h"
#include "fuzz_util.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/crc32c.h"
#include "io/event_reader.h"
#include "io/file_util.h"
#include "io/record.h"
#include "io/saved_model_format.h"
#include "tb_plugins.pb.h"
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

// ---- event files

// Events of every kind the reader decodes, as TF2, PyTorch (legacy fields) and TF1 write them.
std::vector<std::string> crafted_event_payloads() {
  namespace tbp = kiln::tbproto;
  namespace tfp = kiln::tfproto;
  std::vector<tbp::Event> events;
  tbp::Event version;
  version.set_wall_time(1.7e9);
  version.set_file_version("brain.Event:2");
  version.mutable_source_metadata()->set_writer("tensorflow.core.util.events_writer");
  events.push_back(version);
  auto value = [&](int64_t step, const std::string &tag, const char *plugin) {
    tbp::Event e;
    e.set_wall_time(1.7e9 + static_cast<double>(step));
    e.set_step(step);
    tbp::Summary::Value *v = e.mutable_summary()->add_value();
    v->set_tag(tag);
    if (plugin) v->mutable_metadata()->mutable_plugin_data()->set_plugin_name(plugin);
    events.push_back(e);
    return events.back().mutable_summary()->mutable_value(0);
  };
  const float loss = 0.5f;
  tbp::TensorProto *t = value(1, "loss", "scalars")->mutable_tensor();
  t->set_dtype(tfp::DT_FLOAT);
  t->mutable_tensor_shape();
  t->set_tensor_content(std::string(reinterpret_cast<const char *>(&loss), 4));
  t = value(2, "loss", nullptr)->mutable_tensor();  // metadata on the first event only
  t->set_dtype(tfp::DT_DOUBLE);
  t->add_double_val(0.25);
  t = value(1, "half", "scalars")->mutable_tensor();
  t->set_dtype(tfp::DT_HALF);
  t->add_half_val(0x3c00);
  t = value(1, "w", "histograms")->mutable_tensor();
  t->set_dtype(tfp::DT_DOUBLE);
  t->mutable_tensor_shape()->add_dim()->set_size(2);
  t->mutable_tensor_shape()->add_dim()->set_size(3);
  const double rows[6] = {-1, 0, 2, 0, 1, 3};
  t->set_tensor_content(std::string(reinterpret_cast<const char *>(rows), sizeof rows));
  t = value(1, "img", "images")->mutable_tensor();
  t->set_dtype(tfp::DT_STRING);
  t->mutable_tensor_shape()->add_dim()->set_size(3);
  for (const char *s : {"2", "1", "\x89PNG\r\n\x1a\n..."}) t->add_string_val(s);
  t = value(1, "note", "text")->mutable_tensor();
  t->set_dtype(tfp::DT_STRING);
  t->add_string_val("some *markdown*");
  tbp::Summary::Value *hp = value(0, "_hparams_/session_start_info", "hparams");
  tbp::HParamsPluginData data;
  (*data.mutable_session_start_info()->mutable_hparams())["units"].set_number_value(200);
  (*data.mutable_session_start_info()->mutable_hparams())["optimizer"].set_string_value("adam");
  hp->mutable_metadata()->mutable_plugin_data()->set_content(data.SerializeAsString());
  hp->mutable_tensor()->set_dtype(tfp::DT_FLOAT);
  hp->mutable_tensor()->mutable_tensor_shape()->add_dim()->set_size(0);
  value(3, "Loss", nullptr)->set_simple_value(0.125f);
  tbp::HistogramProto *h = value(3, "fc.weight", nullptr)->mutable_histo();
  h->set_min(-0.5);
  h->set_max(0.5);
  h->set_num(3);
  for (double limit : {-1.0, 0.0, 1.0, 1.7976931348623157e308}) h->add_bucket_limit(limit);
  for (double count : {0.0, 1.0, 2.0, 0.0}) h->add_bucket(count);
  tbp::Summary::Image *image = value(3, "images", nullptr)->mutable_image();
  image->set_width(2);
  image->set_height(1);
  image->set_encoded_image_string("\x89PNG\r\n\x1a\n...");
  value(3, "clip", nullptr)->mutable_audio()->set_encoded_audio_string("RIFF");
  tbp::Event graph;
  graph.set_graph_def("graph");
  events.push_back(graph);
  tbp::Event trm;
  trm.mutable_tagged_run_metadata()->set_tag("step1");
  trm.mutable_tagged_run_metadata()->set_run_metadata("rm");
  events.push_back(trm);
  tbp::Event log;
  log.set_step(4);
  log.mutable_session_log()->set_status(tbp::SessionLog::START);
  events.push_back(log);
  std::vector<std::string> payloads;
  for (const tbp::Event &e : events) payloads.push_back(e.SerializeAsString());
  return payloads;
}

std::string framed(const std::vector<std::string> &payloads) {
  std::string out(1, '\0');  // raw mode
  for (const std::string &p : payloads) io::record::append(out, p);
  return out;
}

// Each input up to this (libFuzzer works best on small inputs): a fixture gives its first records.
constexpr size_t kMaxEventSeed = 32 * 1024;

void put_event_seeds(const fs::path &dir, const std::string &fixtures) {
  namespace fz = kiln::fuzz;
  const std::vector<std::string> crafted = crafted_event_payloads();
  put(dir, "kiln_crafted_raw", framed(crafted));
  put(dir, "kiln_crafted_framed", fz::join_events_input(crafted));
  put(dir, "kiln_crafted_cut", fz::join_events_input(crafted, fz::kEventsCut | (5 << 2)));
  put(dir, "empty", "");
  if (fixtures.empty()) return;
  for (const std::string &root : {fixtures + "/tf2_events", fixtures + "/events_other_writers"}) {
    if (!io::is_directory(root)) continue;
    for (const auto &run : io::events::find_runs(root)) {
      for (size_t i = 0; i < run.second.size(); ++i) {
        io::events::RecordReader reader(run.second[i]);
        std::vector<std::string> payloads;
        std::string payload;
        size_t total = 1;
        while (reader.next(&payload)) {
          if (payload.size() + 16 > kMaxEventSeed / 2) continue;  // a large image: left out
          if (total + payload.size() + 16 > kMaxEventSeed) break;
          total += payload.size() + 16;
          payloads.push_back(payload);
        }
        std::string name = io::base_name(root) + "_" + run.first + "_" + std::to_string(i);
        for (char &c : name)
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
        put(dir, name + "_raw", framed(payloads));
        put(dir, name + "_framed", fz::join_events_input(payloads));
      }
    }
  }
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
                   graphs = out / "object_graph", manifests = out / "saved_model",
                   events = out / "event_reader";
    for (const fs::path &d : {bundles, states, graphs, manifests, events}) fs::create_directories(d);
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
    // ---- event files (kiln-crafted, and the fixtures' first records)
    put_event_seeds(events, fixtures);

    for (const fs::path &d : {bundles, states, graphs, manifests, events}) {
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
