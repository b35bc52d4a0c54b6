// The summary writer and summary ops (summary/writer.h, summary/summary.h): file naming and the
// first record, byte-for-byte agreement with what TensorFlow 2.13 wrote, the per-thread default
// writer and step, the background queue, concurrency, crash safety, and every summary kind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "autodiff/variable.h"
#include "bundle_test_util.h"
#include "core/error.h"
#include "event.pb.h"
#include "io/event_reader.h"
#include "io/png.h"
#include "ops/ops.h"
#include "summary/summary.h"
#include "summary/writer.h"
#include "tb_plugins.pb.h"
#include "test_util.h"

namespace kiln {
namespace {

namespace ev = io::events;
using summary::SummaryWriter;
using testing::expect_error;
using testing::fixtures_dir;
using testing::TempDir;

std::string only_file(const std::string &dir) {
  std::vector<std::string> files;
  for (const auto &e : std::filesystem::directory_iterator(dir)) files.push_back(e.path().string());
  EXPECT_EQ(files.size(), 1u) << dir;
  return files.empty() ? "" : files[0];
}

// The raw payloads of a file's records.
std::vector<std::string> payloads(const std::string &path) {
  ev::RecordReader r(path);
  std::vector<std::string> out;
  std::string p;
  while (r.next(&p)) out.push_back(p);
  EXPECT_FALSE(r.truncated()) << r.truncation_message();
  return out;
}

TEST(SummaryWriterTest, FileNameAndFirstRecordAreTensorFlows) {
  TempDir dir;
  auto w = SummaryWriter::create(dir.path() + "/logs/train");
  const std::string name = std::filesystem::path(w->path()).filename().string();
  // events.out.tfevents.<10 digits>.<host>.<pid>.<n>.v2
  ASSERT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  const std::string rest = name.substr(strlen("events.out.tfevents."));
  ASSERT_GE(rest.size(), 11u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(rest[i]))) << name;
  EXPECT_EQ(rest[10], '.');
  EXPECT_NE(rest.find("." + std::to_string(getpid()) + "."), std::string::npos) << name;
  EXPECT_EQ(name.substr(name.size() - 3), ".v2");
  // The first record is on disk as soon as the writer exists.
  ev::EventFile f = ev::read_event_file(w->path());
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].file_version, "brain.Event:2");
  EXPECT_EQ(f.events[0].wall_time, std::floor(f.events[0].wall_time));  // whole seconds, as TF
  EXPECT_EQ(f.events[0].source_writer, "kiln.summary.writer");
  // Two writers in one directory and one second get different names.
  auto w2 = SummaryWriter::create(dir.path() + "/logs/train");
  EXPECT_NE(w->path(), w2->path());
  // A suffix as TF's filename_suffix.
  summary::WriterOptions o;
  o.filename_suffix = ".profile-empty";
  auto w3 = SummaryWriter::create(dir.path() + "/other", o);
  EXPECT_EQ(w3->path().substr(w3->path().size() - 14), ".profile-empty");
}

TEST(SummaryWriterTest, BadArgumentsAreClearErrors) {
  TempDir dir;
  summary::WriterOptions o;
  o.max_queue = 0;
  expect_error([&] { SummaryWriter::create(dir.path(), o); }, Code::kInvalidArgument,
               {"max_queue", "expected 1 to 2147483647"});
  o.max_queue = int64_t{1} << 60;  // its queue bound (max_queue * 16) wrapped to 0: the first write hung
  expect_error([&] { SummaryWriter::create(dir.path(), o); }, Code::kInvalidArgument,
               {"max_queue is 1152921504606846976"});
  o = {};
  o.flush_millis = -5;
  expect_error([&] { SummaryWriter::create(dir.path(), o); }, Code::kInvalidArgument, {"flush_millis"});
  o = {};
  o.filename_suffix = "/x";
  expect_error([&] { SummaryWriter::create(dir.path(), o); }, Code::kInvalidArgument, {"filename_suffix"});
  expect_error([&] { SummaryWriter::create(""); }, Code::kInvalidArgument, {"logdir is empty"});
  // A log directory under a regular file cannot be made.
  std::ofstream(dir.path() + "/file") << "x";
  expect_error([&] { SummaryWriter::create(dir.path() + "/file/logs"); }, Code::kFailedPrecondition,
               {"cannot create log directory"});
}

// Threads closing one writer at once: one closes, the others wait for it (the second joined the
// writer thread the first had joined already, and hung).
TEST(SummaryWriterTest, ConcurrentClosesReturn) {
  TempDir dir;
  for (int round = 0; round < 20; ++round) {
    auto w = SummaryWriter::create(dir.path() + "/r" + std::to_string(round));
    std::vector<std::thread> closers;
    for (int t = 0; t < 4; ++t) closers.emplace_back([&] { w->close(); });
    for (std::thread &t : closers) t.join();
    EXPECT_TRUE(w->closed());
  }
}

// The scalar events of TF 2.13's validation run, rewritten by kiln with the same tag, value and
// step, are the same bytes after the wall time.
TEST(SummaryWriterTest, ScalarBytesMatchTensorFlow) {
  const std::string tf_dir = fixtures_dir() + "/tf2_events";
  if (!std::filesystem::exists(tf_dir)) GTEST_SKIP() << "fixture " << tf_dir << " not found";
  std::string tf_file;
  for (const auto &e : std::filesystem::directory_iterator(tf_dir))
    if (e.path().string().find(".1.v2") != std::string::npos) tf_file = e.path().string();
  ASSERT_FALSE(tf_file.empty());
  TempDir dir;
  auto w = SummaryWriter::create(dir.path());
  std::vector<std::string> expected;
  for (const std::string &p : payloads(tf_file)) {
    tbproto::Event e;
    ASSERT_TRUE(e.ParseFromString(p));
    if (!e.has_summary()) continue;
    const auto &v = e.summary().value(0);
    ASSERT_EQ(v.tensor().dtype(), tfproto::DT_FLOAT);
    float value;
    std::memcpy(&value, v.tensor().tensor_content().data(), 4);
    summary::DefaultScope scope(w);
    ASSERT_TRUE(summary::scalar(v.tag(), value, e.step()));
    expected.push_back(p.substr(9));  // after field 1 (wall_time): tag byte + 8 bytes
  }
  ASSERT_EQ(expected.size(), 80u);  // epoch_{loss,accuracy} and evaluation_*_vs_iterations, 20 each
  w->close();
  std::vector<std::string> got = payloads(w->path());
  ASSERT_EQ(got.size(), expected.size() + 1);
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(got[i + 1][0], '\x09');
    EXPECT_EQ(got[i + 1].substr(9), expected[i]) << "record " << i + 1;
  }
}

// The metadata and tensor layout of each TF2 summary kind, against TF 2.13's histogram records.
TEST(SummaryWriterTest, HistogramLayoutMatchesTensorFlow) {
  const std::string tf_dir = fixtures_dir() + "/tf2_events";
  if (!std::filesystem::exists(tf_dir)) GTEST_SKIP() << "fixture " << tf_dir << " not found";
  std::string tf_file;
  for (const auto &e : std::filesystem::directory_iterator(tf_dir))
    if (e.path().string().find(".0.v2") != std::string::npos) tf_file = e.path().string();
  tbproto::Summary::Value tf_value;
  for (const std::string &p : payloads(tf_file)) {
    tbproto::Event e;
    ASSERT_TRUE(e.ParseFromString(p));
    if (e.has_summary() && e.summary().value(0).metadata().plugin_data().plugin_name() == "histograms") {
      tf_value = e.summary().value(0);
      break;
    }
  }
  ASSERT_FALSE(tf_value.tag().empty());
  TempDir dir;
  auto w = SummaryWriter::create(dir.path());
  {
    summary::DefaultScope scope(w, 7);
    std::vector<float> data(100);
    for (int i = 0; i < 100; ++i) data[i] = static_cast<float>(i) * 0.25f - 3.0f;
    ASSERT_TRUE(
        summary::histogram(tf_value.tag(), Tensor::from_data(DType::kFloat32, Shape{100}, data.data(), 400)));
  }
  w->flush();
  std::vector<std::string> got = payloads(w->path());
  ASSERT_EQ(got.size(), 2u);
  tbproto::Event e;
  ASSERT_TRUE(e.ParseFromString(got[1]));
  EXPECT_EQ(e.step(), 7);
  const auto &v = e.summary().value(0);
  EXPECT_EQ(v.metadata().SerializeAsString(), tf_value.metadata().SerializeAsString());
  EXPECT_EQ(v.tensor().dtype(), tf_value.tensor().dtype());
  EXPECT_EQ(v.tensor().tensor_shape().SerializeAsString(),
            tf_value.tensor().tensor_shape().SerializeAsString());
  EXPECT_EQ(v.tensor().tensor_content().size(), tf_value.tensor().tensor_content().size());
  // The reader sees 30 rows whose counts add up to the element count.
  ev::EventFile f = ev::read_event_file(w->path());
  const ev::Value &hv = f.events[1].values[0];
  EXPECT_EQ(hv.kind, ev::Value::Kind::kHistogram);
  ASSERT_EQ(hv.histogram.size(), 30u);
  double total = 0;
  for (const auto &row : hv.histogram) total += row[2];
  EXPECT_EQ(total, 100.0);
  EXPECT_EQ(hv.histogram.front()[0], -3.0);
  EXPECT_EQ(hv.histogram.back()[1], 99 * 0.25 - 3.0);
}

TEST(SummaryWriterTest, DefaultWriterAndStepPerThread) {
  TempDir dir;
  auto w = SummaryWriter::create(dir.path());
  // No default writer: nothing written, no error (TF returns False).
  EXPECT_FALSE(summary::scalar("x", 1.0, 0));
  {
    summary::DefaultScope scope(w);
    // A default writer but no step anywhere: InvalidArgument.
    expect_error([] { summary::scalar("x", 1.0); }, Code::kInvalidArgument, {"no step", "set_step"});
    summary::set_step(3);
    EXPECT_TRUE(summary::scalar("x", 1.0));
    {
      summary::DefaultScope inner(w, 10);  // as_default(step=10) replaces the step inside
      EXPECT_EQ(summary::get_step(), 10);
      EXPECT_TRUE(summary::scalar("x", 2.0));
      summary::DefaultScope off(nullptr);  // a no-op writer on top
      EXPECT_FALSE(summary::scalar("x", 9.0));
    }
    EXPECT_EQ(summary::get_step(), 3);  // restored
    // Another thread has its own (empty) stack and step.
    std::thread([&] {
      EXPECT_EQ(summary::default_writer(), nullptr);
      EXPECT_FALSE(summary::get_step().has_value());
      EXPECT_FALSE(summary::scalar("x", 5.0, 1));
    }).join();
    // A step bound to a variable is read at each call.
    auto it = std::make_shared<autodiff::Variable>("iterations", Tensor::scalar<int64_t>(41), false);
    summary::set_step(it);
    EXPECT_TRUE(summary::scalar("y", 1.0));
    it->assign(Tensor::scalar<int64_t>(42));
    EXPECT_TRUE(summary::scalar("y", 2.0));
    auto bad = std::make_shared<autodiff::Variable>("f", Tensor::scalar<float>(1.0f), false);
    expect_error([&] { summary::set_step(bad); }, Code::kInvalidArgument, {"int64 or int32 scalar"});
    summary::set_recording(false);
    EXPECT_FALSE(summary::scalar("y", 3.0));
    summary::set_recording(true);
    summary::set_step(std::nullopt);
  }
  expect_error([] { summary::pop_default(); }, Code::kFailedPrecondition, {"no default writer"});
  w->close();
  ev::EventFile f = ev::read_event_file(w->path());
  std::vector<std::pair<std::string, int64_t>> seen;
  for (size_t i = 1; i < f.events.size(); ++i) seen.emplace_back(f.events[i].values[0].tag, f.events[i].step);
  const std::vector<std::pair<std::string, int64_t>> want{{"x", 3}, {"x", 10}, {"y", 41}, {"y", 42}};
  EXPECT_EQ(seen, want);
}

TEST(SummaryWriterTest, QueueFlushCloseAndErrors) {
  TempDir dir;
  summary::WriterOptions o;
  o.max_queue = 1000;
  o.flush_millis = 3600 * 1000;
  auto w = SummaryWriter::create(dir.path(), o);
  summary::DefaultScope scope(w, 0);
  for (int i = 0; i < 10; ++i) summary::scalar("q", i);
  // Below max_queue and before flush_millis nothing but the first record is in the file yet.
  EXPECT_EQ(payloads(w->path()).size(), 1u);
  w->flush();
  EXPECT_EQ(payloads(w->path()).size(), 11u);
  EXPECT_EQ(w->records_written(), 11);
  // flush_millis bounds how long a record waits.
  o.max_queue = 1000;
  o.flush_millis = 20;
  auto fast = SummaryWriter::create(dir.path() + "/fast", o);
  // Also for a record queued while the writer is idle with nothing pending (its file_version
  // record already written): it starts its own flush_millis wait.
  fast->flush();
  ASSERT_EQ(fast->records_written(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    summary::DefaultScope s2(fast, 0);
    summary::scalar("q", 1.0);
  }
  for (int i = 0; i < 1000 && fast->records_written() < 2; ++i)  // up to 10 s on a loaded machine
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(fast->records_written(), 2);
  {
    summary::DefaultScope s2(fast, 0);
    summary::scalar("q", 2.0);
  }
  for (int i = 0; i < 1000 && fast->records_written() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(fast->records_written(), 3);
  // close flushes; writing after close is an error naming the file.
  summary::scalar("q", 99.0);
  w->close();
  EXPECT_TRUE(w->closed());
  EXPECT_EQ(payloads(w->path()).size(), 12u);
  expect_error([] { summary::scalar("q", 1.0); }, Code::kFailedPrecondition, {"is closed"});
  w->close();  // idempotent
}

TEST(SummaryWriterTest, DestructionFlushes) {
  TempDir dir;
  std::string path;
  {
    summary::WriterOptions o;
    o.max_queue = 100000;
    auto w = SummaryWriter::create(dir.path(), o);
    path = w->path();
    summary::DefaultScope scope(w, 5);
    for (int i = 0; i < 500; ++i) summary::scalar("d", i);
  }
  ev::EventFile f = ev::read_event_file(path);
  ASSERT_EQ(f.events.size(), 501u);
  EXPECT_EQ(f.events[500].values[0].scalar, 499.0);
}

TEST(SummaryWriterTest, ManyThreadsOneWriter) {
  TempDir dir;
  summary::WriterOptions o;
  o.max_queue = 3;  // small, so producers hit the bound and wait for the writer thread
  auto w = SummaryWriter::create(dir.path(), o);
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      summary::DefaultScope scope(w);
      for (int i = 0; i < kEach; ++i) summary::scalar("t" + std::to_string(t), i, i);
    });
  for (auto &t : ts) t.join();
  w->close();
  ev::EventFile f = ev::read_event_file(w->path());
  ASSERT_EQ(f.events.size(), 1u + kThreads * kEach);
  std::map<std::string, int64_t> next;
  for (size_t i = 1; i < f.events.size(); ++i) {
    const auto &v = f.events[i].values[0];
    // Each thread's records stay in its own order, with its values intact.
    EXPECT_EQ(f.events[i].step, next[v.tag]);
    EXPECT_EQ(v.scalar, static_cast<double>(next[v.tag]));
    ++next[v.tag];
  }
}

// A process killed while it logs leaves a file whose records all verify, except at most a
// truncated last one.
TEST(SummaryWriterTest, KilledWriterLeavesValidRecords) {
  TempDir dir;
  for (int round = 0; round < 4; ++round) {
    const std::string logdir = dir.path() + "/run" + std::to_string(round);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      summary::WriterOptions o;
      o.max_queue = 1 + round * 7;
      auto w = SummaryWriter::create(logdir, o);
      summary::DefaultScope scope(w, 0);
      char c = 1;
      if (write(fds[1], &c, 1) != 1) _exit(2);
      std::vector<float> big(4096, 0.5f);
      Tensor t = Tensor::from_data(DType::kFloat32, Shape{4096}, big.data(), big.size() * 4);
      for (int64_t i = 0;; ++i) {
        summary::scalar("loss", static_cast<double>(i), i);
        if (i % 16 == 0) summary::text("note", std::string(3000 + i % 100, 'x'), i);
      }
    }
    close(fds[1]);
    char c = 0;
    ASSERT_EQ(read(fds[0], &c, 1), 1);
    close(fds[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + 20 * round));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ev::EventFile f = ev::read_event_file(only_file(logdir));  // throws on any bad CRC
    ASSERT_GE(f.events.size(), 1u);
    EXPECT_EQ(f.events[0].file_version, "brain.Event:2");
    int64_t expect = 0;
    for (size_t i = 1; i < f.events.size(); ++i)
      if (f.events[i].values[0].tag == "loss") {
        EXPECT_EQ(f.events[i].step, expect++);
      }
  }
}

TEST(SummaryWriterTest, TextImageAndKerasModel) {
  TempDir dir;
  auto w = SummaryWriter::create(dir.path());
  std::vector<uint8_t> px(2 * 3 * 5 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  {
    summary::DefaultScope scope(w, 2);
    const std::string table = "| a | b |\n|---|---|\n| 1 | 2 |\n";
    ASSERT_TRUE(summary::text("notes", table));
    ASSERT_TRUE(summary::text("grid", std::vector<std::string>{"a", "b", "c", "d", "e", "f"},
                              std::vector<int64_t>{2, 3}));
    expect_error([] { summary::text("grid", std::vector<std::string>{"a"}, std::vector<int64_t>{2}); },
                 Code::kInvalidArgument, {"as many strings"});
    ASSERT_TRUE(summary::image(
        "img", Tensor::from_data(DType::kUInt8, Shape{2, 3, 5, 3}, px.data(), px.size()), std::nullopt, 3));
    ASSERT_TRUE(summary::keras_model("keras", "{\"class_name\": \"Sequential\"}"));
  }
  w->close();
  ev::EventFile f = ev::read_event_file(w->path());
  ASSERT_EQ(f.events.size(), 5u);
  const ev::Value &t = f.events[1].values[0];
  EXPECT_EQ(t.kind, ev::Value::Kind::kText);
  EXPECT_EQ(t.plugin_name, "text");
  ASSERT_EQ(t.strings.size(), 1u);
  EXPECT_EQ(t.strings[0], "| a | b |\n|---|---|\n| 1 | 2 |\n");
  EXPECT_TRUE(t.shape.empty());
  EXPECT_EQ(f.events[2].values[0].shape, (std::vector<int64_t>{2, 3}));
  const ev::Value &im = f.events[3].values[0];
  EXPECT_EQ(im.kind, ev::Value::Kind::kImage);
  ASSERT_EQ(im.strings.size(), 4u);  // width, height, 2 PNGs
  EXPECT_EQ(im.strings[0], "5");
  EXPECT_EQ(im.strings[1], "3");
  for (int k = 0; k < 2; ++k) {
    io::png::Image decoded = io::png::decode(im.strings[2 + k]);
    EXPECT_EQ(decoded.width, 5);
    EXPECT_EQ(decoded.height, 3);
    ASSERT_EQ(decoded.channels, 3);
    EXPECT_EQ(decoded.pixels, std::vector<uint8_t>(px.begin() + k * 45, px.begin() + (k + 1) * 45));
  }
  const ev::Value &km = f.events[4].values[0];
  EXPECT_EQ(km.plugin_name, "graph_keras_model");
  EXPECT_EQ(km.plugin_content, "1");
  EXPECT_EQ(f.events[4].step, 0);
}

TEST(SummaryWriterTest, HParamsSummaries) {
  TempDir dir;
  auto w = SummaryWriter::create(dir.path());
  {
    summary::DefaultScope scope(w);
    Config hp;
    hp.set("learning_rate", 0.001).set("units", int64_t{128}).set("optimizer", "adam").set("bn", true);
    ASSERT_TRUE(summary::hparams(hp, "", 1690483601.5));
    Config cfg = Config::from_json(
        R"({"hparams": [{"name": "units", "values": [128, 64.5, 32]}, {"name": "dropout", "min_value": 0.1, "max_value": 0.5},
                        {"name": "optimizer", "values": ["sgd", "adam"]}],
            "metrics": [{"tag": "epoch_accuracy", "group": "validation", "display_name": "Accuracy"}]})");
    ASSERT_TRUE(summary::hparams_config(cfg, cfg, 1690483600.0));
    ASSERT_TRUE(summary::hparams_end("success", 1690483700.0));
    expect_error([] { summary::hparams_end("done"); }, Code::kInvalidArgument, {"status 'done'"});
    Config bad;
    bad.set("x", std::vector<int64_t>{1, 2});
    expect_error([&] { summary::hparams(bad); }, Code::kInvalidArgument,
                 {"hparam 'x'", "number, bool or string"});
  }
  w->close();
  ev::EventFile f = ev::read_event_file(w->path());
  ASSERT_EQ(f.events.size(), 4u);
  const ev::Value &start = f.events[1].values[0];
  EXPECT_EQ(start.tag, "_hparams_/session_start_info");
  EXPECT_EQ(start.kind, ev::Value::Kind::kHParams);
  EXPECT_EQ(f.events[1].step, 0);
  EXPECT_EQ(start.dtype, tfproto::DT_FLOAT);
  EXPECT_EQ(start.shape, (std::vector<int64_t>{0}));
  tbproto::HParamsPluginData d;
  ASSERT_TRUE(d.ParseFromString(start.plugin_content));
  EXPECT_EQ(d.version(), 0);
  const auto &si = d.session_start_info();
  EXPECT_EQ(si.hparams().at("learning_rate").number_value(), 0.001);
  EXPECT_EQ(si.hparams().at("units").number_value(), 128.0);
  EXPECT_EQ(si.hparams().at("optimizer").string_value(), "adam");
  EXPECT_TRUE(si.hparams().at("bn").bool_value());
  EXPECT_EQ(si.start_time_secs(), 1690483601.5);
  EXPECT_EQ(si.group_name().size(), 32u);
  tbproto::HParamsPluginData e;
  ASSERT_TRUE(e.ParseFromString(f.events[2].values[0].plugin_content));
  ASSERT_EQ(e.experiment().hparam_infos_size(), 3);
  EXPECT_EQ(e.experiment().hparam_infos(0).type(), tbproto::DATA_TYPE_FLOAT64);
  // Sorted, as TensorBoard's hp.Discrete sorts them.
  const auto &units = e.experiment().hparam_infos(0).domain_discrete();
  ASSERT_EQ(units.values_size(), 3);
  EXPECT_EQ(units.values(0).number_value(), 32.0);
  EXPECT_EQ(units.values(1).number_value(), 64.5);
  EXPECT_EQ(units.values(2).number_value(), 128.0);
  EXPECT_EQ(e.experiment().hparam_infos(2).domain_discrete().values(0).string_value(), "adam");
  EXPECT_EQ(e.experiment().hparam_infos(1).domain_interval().max_value(), 0.5);
  EXPECT_EQ(e.experiment().hparam_infos(2).type(), tbproto::DATA_TYPE_STRING);
  EXPECT_EQ(e.experiment().metric_infos(0).name().tag(), "epoch_accuracy");
  EXPECT_EQ(e.experiment().metric_infos(0).name().group(), "validation");
  tbproto::HParamsPluginData end;
  ASSERT_TRUE(end.ParseFromString(f.events[3].values[0].plugin_content));
  EXPECT_EQ(end.session_end_info().status(), tbproto::STATUS_SUCCESS);
  // The same values give the same group name (sessions group in TensorBoard), others differ.
  Config a, b;
  a.set("u", 1.0);
  b.set("u", 2.0);
  // (One session per run: TensorBoard reads a run's session_start_info from the tag's metadata.)
  TempDir d2;
  std::vector<std::string> groups;
  for (const Config *c : {&a, &a, &b}) {
    auto w2 = SummaryWriter::create(d2.path() + "/run" + std::to_string(groups.size()));
    {
      summary::DefaultScope scope(w2);
      summary::hparams(*c);
    }
    w2->close();
    ev::EventFile g = ev::read_event_file(w2->path());
    tbproto::HParamsPluginData x;
    ASSERT_TRUE(x.ParseFromString(g.events[1].values[0].plugin_content));
    groups.push_back(x.session_start_info().group_name());
  }
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0], groups[1]);
  EXPECT_NE(groups[0], groups[2]);
}

TEST(SummaryWriterTest, TraceTimesEachOp) {
  TempDir dir;
  auto w = SummaryWriter::create(dir.path());
  std::vector<float> av(64 * 64, 0.5f);
  Tensor a = Tensor::from_data(DType::kFloat32, Shape{64, 64}, av.data(), av.size() * 4);
  summary::trace_on();
  Tensor m = ops::matmul(a, a);
  Tensor s = ops::add(m, a);
  s = ops::relu(s);
  std::vector<summary::TraceRow> rows = summary::trace_rows();
  std::set<std::string> names;
  int64_t calls = 0;
  for (const auto &r : rows) {
    names.insert(r.op);
    calls += r.calls;
    EXPECT_GE(r.micros, 0.0);
    EXPECT_EQ(r.shape, "[64, 64]");
  }
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(names.size(), 3u);
  {
    summary::DefaultScope scope(w, 1);
    ASSERT_TRUE(summary::trace_export("step_trace"));
  }
  EXPECT_TRUE(summary::trace_rows().empty());  // export stops the trace
  expect_error([] { summary::trace_export("again"); }, Code::kFailedPrecondition, {"trace_on"});
  w->close();
  ev::EventFile f = ev::read_event_file(w->path());
  ASSERT_GE(f.events.size(), 2u + 3u + 1u);
  const ev::Value &table = f.events[1].values[0];
  EXPECT_EQ(table.tag, "step_trace");
  EXPECT_EQ(table.kind, ev::Value::Kind::kText);
  EXPECT_NE(table.strings[0].find("| op | output shape | calls |"), std::string::npos);
  EXPECT_NE(table.strings[0].find("[64, 64]"), std::string::npos);
  EXPECT_EQ(f.events.back().values[0].tag, "step_trace/total");
}

}  // namespace
}  // namespace kiln
