// The event reader on real files written by TensorFlow 2.13 (Keras TensorBoard callback,
// tf.summary, the hparams API), PyTorch's SummaryWriter (legacy simple_value/histo/image) and
// stable-baselines3: ../shared/fixtures/tf2_events and events_other_writers. The numbers checked
// are those of the fixtures' READMEs (what TensorBoard's own loader reports). Skipped when the
// fixtures are absent (a user's checkout).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bundle_test_util.h"
#include "event.pb.h"
#include "io/event_reader.h"
#include "tb_plugins.pb.h"

namespace kiln {
namespace {

namespace ev = io::events;
namespace tbp = tbproto;
using Kind = ev::Value::Kind;

std::string other_writers() { return testing::fixtures_dir() + "/events_other_writers"; }
std::string tf2_events() { return testing::fixtures_dir() + "/tf2_events"; }

#define KILN_SKIP_WITHOUT_DIR(dir)                                                                   \
  do {                                                                                               \
    if (!std::filesystem::is_directory(dir))                                                         \
      GTEST_SKIP() << "event fixtures " << (dir) << " not found (../shared/fixtures is only beside " \
                   << "the development checkout)";                                                   \
  } while (0)

// The single event file of a run directory.
std::string only_file(const std::string &dir) {
  std::vector<std::string> files;
  for (const auto &e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().find("tfevents") != std::string::npos)
      files.push_back(e.path().string());
  EXPECT_EQ(files.size(), 1u) << dir;
  return files.empty() ? "" : files[0];
}

// Per tag: the values in file order, with their steps.
struct Series {
  std::vector<int64_t> steps;
  std::vector<const ev::Value *> values;
};

std::map<std::string, Series> series(const ev::EventFile &f) {
  std::map<std::string, Series> out;
  for (const ev::Event &e : f.events)
    for (const ev::Value &v : e.values) {
      out[v.tag].steps.push_back(e.step);
      out[v.tag].values.push_back(&v);
    }
  return out;
}

std::vector<std::string> tags(const std::map<std::string, Series> &s) {
  std::vector<std::string> t;
  for (const auto &kv : s) t.push_back(kv.first);
  return t;
}

std::vector<int64_t> range(int64_t from, int64_t to, int64_t by = 1) {
  std::vector<int64_t> r;
  for (int64_t i = from; i <= to; i += by) r.push_back(i);
  return r;
}

bool is_png(const std::string &s) { return s.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0; }

void expect_tf2_header(const ev::EventFile &f) {
  ASSERT_FALSE(f.events.empty());
  EXPECT_EQ(f.events[0].file_version, "brain.Event:2");
  EXPECT_EQ(f.events[0].source_writer, "tensorflow.core.util.events_writer");
  EXPECT_FALSE(f.truncated) << f.truncation_message;
}

// ---------------------------------------------------------------- tf2_events (Keras IMDB run)

TEST(EventFixtures, Tf2KerasTrainAndValidation) {
  KILN_SKIP_WITHOUT_DIR(tf2_events());
  const auto runs = ev::find_runs(tf2_events());
  ASSERT_EQ(runs.size(), 1u);  // both files in one folder: one run "."
  const std::vector<std::string> &files = runs.at(".");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_NE(files[0].find("1690485354"), std::string::npos);  // sorted: train first

  const ev::EventFile train = ev::read_event_file(files[0]);
  expect_tf2_header(train);
  EXPECT_EQ(train.events.size(), 163u);
  const auto s = series(train);
  ASSERT_TRUE(s.count("keras"));
  EXPECT_EQ(s.at("keras").values[0]->plugin_name, "graph_keras_model");
  EXPECT_EQ(s.at("keras").values[0]->strings.at(0).compare(0, 1, "{"), 0);
  for (const char *tag : {"epoch_loss", "epoch_accuracy"}) {
    const Series &sc = s.at(tag);
    EXPECT_EQ(sc.steps, range(0, 19)) << tag;
    for (const ev::Value *v : sc.values) {
      EXPECT_EQ(v->kind, Kind::kScalar);
      EXPECT_EQ(v->dtype, 1);  // DT_FLOAT rank 0
      EXPECT_TRUE(v->shape.empty());
      EXPECT_TRUE(std::isfinite(v->scalar));
    }
  }
  size_t histograms = 0;
  for (const auto &kv : s) {
    if (kv.second.values[0]->plugin_name != "histograms") continue;
    ++histograms;
    for (const ev::Value *v : kv.second.values) {
      EXPECT_EQ(v->kind, Kind::kHistogram) << kv.first;
      EXPECT_EQ(v->dtype, 2) << kv.first;  // DT_DOUBLE [30, 3]
      EXPECT_EQ(v->histogram.size(), 30u) << kv.first;
      EXPECT_EQ(v->shape, (std::vector<int64_t>{30, 3}));
    }
  }
  EXPECT_GT(histograms, 0u);
  size_t records = 1 + s.at("keras").values.size();
  for (const auto &kv : s) records += kv.first == "keras" ? 0 : kv.second.values.size();
  EXPECT_EQ(records, train.events.size());  // one value per event after the file_version

  const ev::EventFile validation = ev::read_event_file(files[1]);
  expect_tf2_header(validation);
  const auto vs = series(validation);
  for (const auto &kv : vs)
    for (const ev::Value *v : kv.second.values)
      EXPECT_EQ(v->kind, Kind::kScalar) << kv.first;  // scalars only
  EXPECT_EQ(vs.at("epoch_loss").steps, range(0, 19));
  EXPECT_EQ(vs.at("epoch_accuracy").steps, range(0, 19));
}

// ---------------------------------------------------------------- TheCodeheadMT (TF 2.x)

TEST(EventFixtures, KerasMnistTrainWithImagesAndGraph) {
  const std::string root =
      other_writers() + "/TheCodeheadMT-TensorBoard-Tutorial/MNIST-extra-metrics1690486849";
  KILN_SKIP_WITHOUT_DIR(root);
  const ev::EventFile f = ev::read_event_file(only_file(root + "/train"));
  expect_tf2_header(f);
  EXPECT_EQ(f.events.size(), 103u);
  const auto s = series(f);
  EXPECT_EQ(tags(s), (std::vector<std::string>{
                         "__run_graph__", "dense/bias_0/histogram", "dense/bias_0/image",
                         "dense/kernel_0/histogram", "dense/kernel_0/image", "dense_1/bias_0/histogram",
                         "dense_1/bias_0/image", "dense_1/kernel_0/histogram", "dense_1/kernel_0/image",
                         "epoch_accuracy", "epoch_loss", "keras"}));
  EXPECT_EQ(s.at("__run_graph__").values[0]->plugin_name, "graphs");
  EXPECT_EQ(s.at("keras").values[0]->plugin_name, "graph_keras_model");
  EXPECT_EQ(s.at("epoch_loss").steps, range(0, 9));
  EXPECT_EQ(s.at("epoch_accuracy").steps, range(0, 9));
  for (const char *layer : {"dense/kernel_0", "dense/bias_0", "dense_1/kernel_0", "dense_1/bias_0"}) {
    const Series &h = s.at(std::string(layer) + "/histogram");
    EXPECT_EQ(h.steps, range(0, 9)) << layer;
    for (const ev::Value *v : h.values) {
      EXPECT_EQ(v->kind, Kind::kHistogram);
      EXPECT_EQ(v->histogram.size(), 30u);
    }
  }
  const std::map<std::string, std::pair<int64_t, int64_t>> sizes = {{"dense/kernel_0/image", {784, 512}},
                                                                    {"dense/bias_0/image", {1, 512}},
                                                                    {"dense_1/kernel_0/image", {512, 10}},
                                                                    {"dense_1/bias_0/image", {1, 10}}};
  for (const auto &[tag, wh] : sizes) {
    const Series &im = s.at(tag);
    EXPECT_EQ(im.steps, range(0, 9)) << tag;
    for (const ev::Value *v : im.values) {
      EXPECT_EQ(v->kind, Kind::kImage) << tag;
      EXPECT_EQ(v->data_class, tbp::DATA_CLASS_BLOB_SEQUENCE);
      int64_t w = 0, h = 0;
      ASSERT_TRUE(ev::image_size(*v, &w, &h)) << tag;
      EXPECT_EQ(w, wh.first) << tag;
      EXPECT_EQ(h, wh.second) << tag;
      ASSERT_EQ(v->strings.size(), 3u) << tag;  // one grayscale PNG per step
      EXPECT_TRUE(is_png(v->strings[2])) << tag;
    }
  }
  // The Config view carries the same.
  const Config c = ev::to_config(f);
  EXPECT_EQ(c.get_config_list("events").size(), 103u);
}

TEST(EventFixtures, KerasMnistValidation) {
  const std::string root =
      other_writers() + "/TheCodeheadMT-TensorBoard-Tutorial/MNIST-extra-metrics1690486849";
  KILN_SKIP_WITHOUT_DIR(root);
  const ev::EventFile f = ev::read_event_file(only_file(root + "/validation"));
  expect_tf2_header(f);
  EXPECT_EQ(f.events.size(), 41u);
  const auto s = series(f);
  EXPECT_EQ(tags(s),
            (std::vector<std::string>{"epoch_accuracy", "epoch_loss", "evaluation_accuracy_vs_iterations",
                                      "evaluation_loss_vs_iterations"}));
  EXPECT_EQ(s.at("epoch_loss").steps, range(0, 9));
  EXPECT_EQ(s.at("evaluation_loss_vs_iterations").steps, range(1500, 15000, 1500));
  EXPECT_EQ(s.at("evaluation_accuracy_vs_iterations").steps, range(1500, 15000, 1500));
  for (const auto &kv : s)
    for (const ev::Value *v : kv.second.values) EXPECT_EQ(v->kind, Kind::kScalar);
}

TEST(EventFixtures, HParamsExperiment) {
  const std::string dir = other_writers() + "/TheCodeheadMT-TensorBoard-Tutorial/hparam_tuning";
  KILN_SKIP_WITHOUT_DIR(dir);
  const ev::EventFile f = ev::read_event_file(only_file(dir));
  expect_tf2_header(f);
  ASSERT_EQ(f.events.size(), 2u);
  const ev::Value &v = f.events[1].values.at(0);
  EXPECT_EQ(v.tag, "_hparams_/experiment");
  EXPECT_EQ(v.kind, Kind::kHParams);
  EXPECT_EQ(v.data_class, tbp::DATA_CLASS_TENSOR);
  tbp::HParamsPluginData data;
  ASSERT_TRUE(data.ParseFromString(v.plugin_content));
  EXPECT_EQ(data.version(), 0);
  ASSERT_TRUE(data.has_experiment());
  std::map<std::string, const tbp::HParamInfo *> infos;
  for (const auto &h : data.experiment().hparam_infos()) infos[h.name()] = &h;
  ASSERT_EQ(infos.size(), 3u);
  const tbp::HParamInfo &units = *infos.at("units");
  EXPECT_EQ(units.type(), tbp::DATA_TYPE_FLOAT64);
  ASSERT_EQ(units.domain_discrete().values_size(), 3);
  EXPECT_EQ(units.domain_discrete().values(0).number_value(), 200);
  EXPECT_EQ(units.domain_discrete().values(1).number_value(), 300);
  EXPECT_EQ(units.domain_discrete().values(2).number_value(), 512);
  const tbp::HParamInfo &dropout = *infos.at("dropout");
  EXPECT_EQ(dropout.domain_interval().min_value(), 0.2);
  EXPECT_EQ(dropout.domain_interval().max_value(), 0.5);
  const tbp::HParamInfo &opt = *infos.at("optimizer");
  EXPECT_EQ(opt.type(), tbp::DATA_TYPE_STRING);
  ASSERT_EQ(opt.domain_discrete().values_size(), 3);
  EXPECT_EQ(opt.domain_discrete().values(0).string_value(), "adam");
  EXPECT_EQ(opt.domain_discrete().values(2).string_value(), "sgd");
  ASSERT_EQ(data.experiment().metric_infos_size(), 1);
  EXPECT_EQ(data.experiment().metric_infos(0).name().tag(), "accuracy");
  EXPECT_EQ(data.experiment().metric_infos(0).display_name(), "Accuracy");
  // The Config view decodes the plugin data.
  const Config c = ev::to_config(f).get_config_list("events").at(1).get_config_list("values").at(0);
  EXPECT_EQ(c.get_config("hparams").get_config("experiment").get_config_list("hparam_infos").size(), 3u);
}

// 30,003 records: a reader keeps every point (TensorBoard's UI samples 1,000 per tag).
TEST(EventFixtures, HParamsSessionWith30kScalars) {
  const std::string dir =
      other_writers() + "/TheCodeheadMT-TensorBoard-Tutorial/hparam_tuning/Experiment 0_adam_200_0.2";
  KILN_SKIP_WITHOUT_DIR(dir);
  const ev::EventFile f = ev::read_event_file(only_file(dir));
  expect_tf2_header(f);
  EXPECT_EQ(f.events.size(), 30003u);
  const auto s = series(f);
  EXPECT_EQ(tags(s), (std::vector<std::string>{"_hparams_/session_start_info", "accuracy", "batch_accuracy",
                                               "batch_loss"}));
  const ev::Value &start = *s.at("_hparams_/session_start_info").values.at(0);
  EXPECT_EQ(start.kind, Kind::kHParams);
  tbp::HParamsPluginData data;
  ASSERT_TRUE(data.ParseFromString(start.plugin_content));
  const auto &hp = data.session_start_info().hparams();
  EXPECT_EQ(hp.at("dropout").number_value(), 0.2);
  EXPECT_EQ(hp.at("optimizer").string_value(), "adam");
  EXPECT_EQ(hp.at("units").number_value(), 200.0);
  EXPECT_EQ(data.session_start_info().group_name().compare(0, 8, "f4aa0c7c"), 0);
  EXPECT_NEAR(data.session_start_info().start_time_secs(), 1690483601.478, 1e-3);
  EXPECT_EQ(s.at("batch_loss").steps, range(1, 15000));
  EXPECT_EQ(s.at("batch_accuracy").steps, range(1, 15000));
  ASSERT_EQ(s.at("accuracy").values.size(), 1u);
  EXPECT_EQ(s.at("accuracy").steps[0], 1);
  EXPECT_EQ(s.at("accuracy").values[0]->scalar, 0.9783999919891357);
}

// ---------------------------------------------------------------- PyTorch SummaryWriter (legacy fields)

TEST(EventFixtures, PyTorchLegacyScalarsHistogramsImageGraph) {
  const std::string dir = other_writers() + "/magicaltrap-tensorboard_example/runs";
  KILN_SKIP_WITHOUT_DIR(dir);
  const std::string path =
      only_file(dir + "/Dec22_17-29-30_DESKTOP-9A1G2LM-Run(lr=0.005, batch_size=100, num_workers=0)");
  const ev::EventFile f = ev::read_event_file(path);
  EXPECT_FALSE(f.truncated);
  EXPECT_EQ(f.events.size(), 70u);
  EXPECT_EQ(f.events.at(0).file_version, "brain.Event:2");
  for (const ev::Event &e : f.events) EXPECT_EQ(e.source_writer, "");  // no source_metadata
  const auto s = series(f);

  const Series &images = s.at("images");
  ASSERT_EQ(images.values.size(), 1u);
  const ev::Value &img = *images.values[0];
  EXPECT_EQ(img.kind, Kind::kImage);
  EXPECT_TRUE(img.legacy);
  int64_t w = 0, h = 0;
  ASSERT_TRUE(ev::image_size(img, &w, &h));
  EXPECT_EQ(w, 242);
  EXPECT_EQ(h, 392);
  ASSERT_EQ(img.strings.size(), 3u);
  EXPECT_TRUE(is_png(img.strings[2]));
  EXPECT_EQ(img.strings[2].size(), 83308u);

  ASSERT_EQ(s.at("__run_graph__").values.size(), 1u);
  EXPECT_EQ(s.at("__run_graph__").values[0]->strings.at(0).size(), 8570u);
  ASSERT_EQ(s.at("step1").values.size(), 1u);
  EXPECT_EQ(s.at("step1").values[0]->plugin_name, "graph_tagged_run_metadata");
  EXPECT_EQ(s.at("step1").values[0]->strings.at(0).size(), 19u);

  for (const char *tag : {"Loss", "Accuracy"}) {
    EXPECT_EQ(s.at(tag).steps, range(1, 3)) << tag;
    for (const ev::Value *v : s.at(tag).values) {
      EXPECT_EQ(v->kind, Kind::kScalar);
      EXPECT_TRUE(v->legacy);
    }
  }
  std::set<std::string> hist_tags;
  for (const auto &kv : s)
    if (kv.second.values[0]->kind == Kind::kHistogram) hist_tags.insert(kv.first);
  std::set<std::string> expected;
  for (const char *layer : {"conv1", "conv2", "fc1", "fc2", "out"})
    for (const char *p : {".weight", ".bias"})
      for (const char *g : {"", ".grad"}) expected.insert(std::string(layer) + p + g);
  EXPECT_EQ(hist_tags, expected);

  // Against the raw records: the scalars are the legacy simple_values, and each histogram's
  // count sum is the legacy num (after data_compat drops the empty end buckets).
  io::events::RecordReader raw(path);
  std::string payload;
  size_t checked = 0;
  size_t min_buckets = SIZE_MAX, max_buckets = 0;
  while (raw.next(&payload)) {
    tbp::Event e;
    ASSERT_TRUE(e.ParseFromString(payload));
    const ev::Event &got = f.events.at(static_cast<size_t>(raw.index()));
    for (int i = 0; i < e.summary().value_size(); ++i) {
      const tbp::Summary::Value &v = e.summary().value(i);
      const ev::Value &d = got.values.at(static_cast<size_t>(i));
      if (v.has_histo()) {
        double sum = 0;
        for (const auto &row : d.histogram) sum += row[2];
        EXPECT_EQ(sum, v.histo().num()) << v.tag() << " step " << e.step();
        EXPECT_EQ(d.histogram.front()[0], static_cast<float>(v.histo().min()));
        EXPECT_EQ(d.histogram.back()[1], static_cast<float>(v.histo().max()));
        min_buckets = std::min(min_buckets, d.histogram.size());
        max_buckets = std::max(max_buckets, d.histogram.size());
        if (v.tag() == "conv1.weight") {
          EXPECT_EQ(sum, 150);
        }
        if (v.tag() == "fc1.weight") {
          EXPECT_EQ(sum, 23040);
        }
        ++checked;
      } else if (v.value_case() == tbp::Summary::Value::kSimpleValue) {
        EXPECT_EQ(d.scalar, static_cast<double>(v.simple_value()));
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 3u * (20 + 2));
  EXPECT_EQ(min_buckets, 43u);
  EXPECT_EQ(max_buckets, 585u);
}

TEST(EventFixtures, PyTorchDuplicateAndDecreasingStepsAreKept) {
  const std::string dir = other_writers() + "/janosh-tensorboard-reducer";
  KILN_SKIP_WITHOUT_DIR(dir);
  const ev::EventFile f = ev::read_event_file(only_file(dir + "/duplicate_steps/run_1"));
  EXPECT_EQ(f.events.size(), 421u);
  const auto s = series(f);
  EXPECT_EQ(tags(s), (std::vector<std::string>{"dup_steps/bar", "dup_steps/foo"}));
  std::vector<int64_t> steps = range(0, 99);
  const std::vector<int64_t> again = range(90, 199);
  steps.insert(steps.end(), again.begin(), again.end());
  EXPECT_EQ(s.at("dup_steps/foo").steps, steps);
  EXPECT_EQ(s.at("dup_steps/bar").steps, steps);

  const ev::EventFile strict = ev::read_event_file(only_file(dir + "/strict/run_1"));
  EXPECT_EQ(strict.events.size(), 101u);
  const auto ss = series(strict);
  EXPECT_EQ(tags(ss), std::vector<std::string>{"strict/foo"});
  EXPECT_EQ(ss.at("strict/foo").steps, range(0, 495, 5));
}

TEST(EventFixtures, StableBaselinesScalarsWithSpaceInTag) {
  const std::string dir = other_writers() + "/CursedSeraphim-process-tensorboard-logs/DQN_1";
  KILN_SKIP_WITHOUT_DIR(dir);
  const ev::EventFile f = ev::read_event_file(only_file(dir));
  EXPECT_EQ(f.events.size(), 299u);
  const auto s = series(f);
  EXPECT_EQ(tags(s), (std::vector<std::string>{"rollout/ep_len_mean", "rollout/ep_rew_mean",
                                               "rollout/exploration rate", "time/fps", "train/learning_rate",
                                               "train/loss"}));
  for (const char *tag :
       {"rollout/ep_len_mean", "rollout/ep_rew_mean", "rollout/exploration rate", "time/fps"})
    EXPECT_EQ(s.at(tag).steps, range(40000, 2000000, 40000)) << tag;
  for (const char *tag : {"train/learning_rate", "train/loss"})
    EXPECT_EQ(s.at(tag).steps, range(80000, 2000000, 40000)) << tag;
  for (const auto &kv : s)
    for (const ev::Value *v : kv.second.values) {
      EXPECT_EQ(v->kind, Kind::kScalar);
      EXPECT_TRUE(v->legacy);
    }
}

// TensorBoard's run names for the whole folder (spaces, parentheses and commas kept), and every
// file reads without loss.
TEST(EventFixtures, RunsOfTheOtherWritersFolder) {
  KILN_SKIP_WITHOUT_DIR(other_writers());
  const auto runs = ev::find_runs(other_writers());
  std::vector<std::string> names;
  for (const auto &kv : runs) names.push_back(kv.first);
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "CursedSeraphim-process-tensorboard-logs/DQN_1",
                "TheCodeheadMT-TensorBoard-Tutorial/MNIST-extra-metrics1690486849/train",
                "TheCodeheadMT-TensorBoard-Tutorial/MNIST-extra-metrics1690486849/validation",
                "TheCodeheadMT-TensorBoard-Tutorial/hparam_tuning",
                "TheCodeheadMT-TensorBoard-Tutorial/hparam_tuning/Experiment 0_adam_200_0.2",
                "janosh-tensorboard-reducer/duplicate_steps/run_1", "janosh-tensorboard-reducer/strict/run_1",
                "magicaltrap-tensorboard_example/runs/"
                "Dec22_17-29-30_DESKTOP-9A1G2LM-Run(lr=0.005, batch_size=100, num_workers=0)"}));
  const std::map<std::string, size_t> records = {{"CursedSeraphim-process-tensorboard-logs/DQN_1", 299},
                                                 {"janosh-tensorboard-reducer/strict/run_1", 101},
                                                 {"TheCodeheadMT-TensorBoard-Tutorial/hparam_tuning", 2}};
  for (const auto &kv : runs) {
    ASSERT_EQ(kv.second.size(), 1u) << kv.first;
    const ev::EventFile f = ev::read_event_file(kv.second[0]);
    EXPECT_FALSE(f.truncated) << kv.first;
    if (records.count(kv.first)) {
      EXPECT_EQ(f.events.size(), records.at(kv.first)) << kv.first;
    }
  }
}

}  // namespace
}  // namespace kiln
