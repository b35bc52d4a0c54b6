// The TensorBoard event-file reader (src/io/event_reader.h) on files made here: the TFRecord
// framing (round trips, every single-byte flip detected, every cut of the last record reported as
// truncation), and the decoding of each kind of value TensorFlow, PyTorch and kiln write,
// legacy fields included, as TensorBoard's data_compat and dataclass_compat convert them.
// test_event_reader_fixtures.cc reads the real files of ../shared/fixtures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bundle_test_util.h"
#include "core/error.h"
#include "event.pb.h"
#include "io/crc32c.h"
#include "io/event_reader.h"
#include "io/record.h"
#include "tb_plugins.pb.h"
#include "test_util.h"

namespace kiln {
namespace {

namespace ev = io::events;
namespace tbp = tbproto;
using testing::expect_error;
using testing::TempDir;
using Kind = ev::Value::Kind;

// ---- helpers that build events the way each writer does

tbp::Event file_version_event() {
  tbp::Event e;
  e.set_wall_time(1690485354.0);
  e.set_file_version("brain.Event:2");
  e.mutable_source_metadata()->set_writer("tensorflow.core.util.events_writer");
  return e;
}

tbp::Summary::Value *add_value(tbp::Event *e, const std::string &tag, const char *plugin = nullptr) {
  tbp::Summary::Value *v = e->mutable_summary()->add_value();
  v->set_tag(tag);
  if (plugin != nullptr) v->mutable_metadata()->mutable_plugin_data()->set_plugin_name(plugin);
  return v;
}

tbp::Event step_event(int64_t step) {
  tbp::Event e;
  e.set_wall_time(1690485400.5 + static_cast<double>(step));
  e.set_step(step);
  return e;
}

// A TF2 scalar: DT_FLOAT rank 0, 4 bytes of tensor_content.
tbp::Event tf2_scalar(const std::string &tag, int64_t step, float value, bool with_metadata = true) {
  tbp::Event e = step_event(step);
  tbp::Summary::Value *v = add_value(&e, tag, with_metadata ? "scalars" : nullptr);
  v->mutable_tensor()->set_dtype(tfproto::DT_FLOAT);
  v->mutable_tensor()->mutable_tensor_shape();
  v->mutable_tensor()->set_tensor_content(std::string(reinterpret_cast<const char *>(&value), 4));
  return e;
}

std::string frame(const std::vector<tbp::Event> &events) {
  std::string out;
  for (const tbp::Event &e : events) io::record::append(out, e.SerializeAsString());
  return out;
}

// The byte offset of each record in a framed file.
std::vector<size_t> record_offsets(const std::string &bytes) {
  std::vector<size_t> offsets;
  size_t pos = 0;
  while (pos + 12 <= bytes.size()) {
    offsets.push_back(pos);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[pos + i]);
    pos += 16 + n;
  }
  return offsets;
}

Code error_code(const std::function<void()> &f, std::string *message = nullptr) {
  try {
    f();
  } catch (const Error &e) {
    if (message) *message = e.what();
    return e.code();
  }
  return Code::kOk;
}

// ---------------------------------------------------------------- framing

TEST(EventRecordReader, RoundTripsPayloadsOfEverySize) {
  std::mt19937 rng(7);
  std::vector<std::string> payloads = {"", "x", std::string(11, 'a'), std::string(12, '\0'), "hello events"};
  std::string big(1 << 20, '\0');
  for (char &c : big) c = static_cast<char>(rng());
  payloads.push_back(big);
  payloads.push_back("");
  std::string bytes;
  for (const std::string &p : payloads) io::record::append(bytes, p);
  TempDir dir;
  testing::spit(dir / "records", bytes);
  for (int from_file = 0; from_file < 2; ++from_file) {
    SCOPED_TRACE(from_file ? "file" : "memory");
    std::unique_ptr<ev::RecordReader> r = from_file ? std::make_unique<ev::RecordReader>(dir / "records")
                                                    : std::make_unique<ev::RecordReader>(bytes, "mem");
    std::string payload;
    size_t offset = 0;
    for (size_t i = 0; i < payloads.size(); ++i) {
      ASSERT_TRUE(r->next(&payload)) << i;
      EXPECT_EQ(payload, payloads[i]) << i;
      EXPECT_EQ(r->index(), static_cast<int64_t>(i));
      EXPECT_EQ(r->offset(), offset);
      offset += 16 + payloads[i].size();
    }
    EXPECT_FALSE(r->next(&payload));
    EXPECT_FALSE(r->next(&payload));  // stays at the end
    EXPECT_FALSE(r->truncated());
    EXPECT_EQ(r->count(), static_cast<int64_t>(payloads.size()));
  }
}

TEST(EventRecordReader, EmptyFileHasNoRecords) {
  TempDir dir;
  testing::spit(dir / "events.out.tfevents.0.empty", "");
  const ev::EventFile f = ev::read_event_file(dir / "events.out.tfevents.0.empty");
  EXPECT_TRUE(f.events.empty());
  EXPECT_FALSE(f.truncated);
}

TEST(EventRecordReader, MissingFileAndDirectory) {
  TempDir dir;
  expect_error([&] { ev::read_event_file(dir / "nope"); }, Code::kNotFound, {"nope", "does not exist"});
  expect_error([&] { ev::read_event_file(dir.path()); }, Code::kInvalidArgument, {"directory"});
}

// Every single-byte change anywhere in a file of several records is DataLoss (the length CRC
// covers the length, the payload CRC the payload, and each CRC field is checked against them),
// read from memory and from a file; nothing ever decodes to different data.
TEST(EventRecordReader, EveryByteFlipIsDetected) {
  std::vector<tbp::Event> events = {file_version_event(), tf2_scalar("loss", 0, 0.5f),
                                    tf2_scalar("loss", 1, 0.25f)};
  tbp::Event text = step_event(2);
  tbp::Summary::Value *v = add_value(&text, "note", "text");
  v->mutable_tensor()->set_dtype(tfproto::DT_STRING);
  v->mutable_tensor()->add_string_val("hi");
  events.push_back(text);
  const std::string good = frame(events);
  const std::vector<size_t> offsets = record_offsets(good);
  ASSERT_EQ(offsets.size(), 4u);
  TempDir dir;
  const std::string path = dir / "events.out.tfevents.1.flip";
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      size_t record = 0;
      while (record + 1 < offsets.size() && offsets[record + 1] <= i) ++record;
      for (int from_file = 0; from_file < 2; ++from_file) {
        if (from_file && mask != 0x01) continue;  // the file path once per byte is enough
        if (from_file) testing::spit(path, bad);
        std::string msg;
        ev::EventFile f;
        const Code code = error_code(
            [&] { f = from_file ? ev::read_event_file(path) : ev::parse_event_bytes(bad, "f"); }, &msg);
        if (code == Code::kOk) {
          // Only a longer length in the last record's length field could read as a cut-short
          // record; its CRC makes even that DataLoss here.
          ADD_FAILURE() << "byte " << i << " ^ " << int(mask) << " undetected (truncated=" << f.truncated
                        << ")";
          continue;
        }
        EXPECT_EQ(code, Code::kDataLoss) << "byte " << i << ": " << msg;
        EXPECT_NE(msg.find("record " + std::to_string(record) + " at byte offset " +
                           std::to_string(offsets[record])),
                  std::string::npos)
            << msg;
        const size_t in_record = i - offsets[record];
        const char *which = in_record < 12 ? "length CRC" : "payload CRC";
        EXPECT_NE(msg.find(which), std::string::npos) << "byte " << i << ": " << msg;
      }
    }
  }
}

// A file cut anywhere inside its last record reads as the records before it plus a truncation
// report naming the record's offset and the bytes missing; a cut between records is a clean end.
TEST(EventRecordReader, EveryCutOfTheLastRecordIsTruncation) {
  const std::vector<tbp::Event> events = {file_version_event(), tf2_scalar("loss", 0, 0.5f),
                                          tf2_scalar("accuracy", 0, 0.75f)};
  const std::string good = frame(events);
  const std::vector<size_t> offsets = record_offsets(good);
  const size_t last = offsets.back();
  const ev::EventFile whole = ev::parse_event_bytes(good, "whole");
  ASSERT_EQ(whole.events.size(), 3u);
  TempDir dir;
  const std::string path = dir / "events.out.tfevents.2.cut";
  for (size_t cut = last; cut < good.size(); ++cut) {
    const std::string part = good.substr(0, cut);
    testing::spit(path, part);
    for (const ev::EventFile &f : {ev::parse_event_bytes(part, "part"), ev::read_event_file(path)}) {
      ASSERT_EQ(f.events.size(), 2u) << cut;
      for (size_t k = 0; k < 2; ++k) {
        EXPECT_EQ(f.events[k].offset, whole.events[k].offset);
        EXPECT_EQ(f.events[k].step, whole.events[k].step);
        EXPECT_EQ(f.events[k].file_version, whole.events[k].file_version);
        EXPECT_EQ(f.events[k].values.size(), whole.events[k].values.size());
      }
      EXPECT_EQ(f.events[1].values.at(0).scalar, 0.5);
      if (cut == last) {
        EXPECT_FALSE(f.truncated) << "a cut between records is a clean end";
        continue;
      }
      EXPECT_TRUE(f.truncated) << cut;
      const size_t missing = good.size() - cut;
      EXPECT_NE(f.truncation_message.find("record 2 at byte offset " + std::to_string(last)),
                std::string::npos)
          << f.truncation_message;
      if (cut - last >= 12)  // past the header the exact count is known
        EXPECT_NE(f.truncation_message.find(std::to_string(missing) + " more byte"), std::string::npos)
            << f.truncation_message;
      else
        EXPECT_NE(f.truncation_message.find("header"), std::string::npos) << f.truncation_message;
    }
  }
  // The RecordReader reports the count missing exactly.
  ev::RecordReader r(std::string_view(good).substr(0, good.size() - 3), "r");
  std::string payload;
  while (r.next(&payload)) {
  }
  EXPECT_TRUE(r.truncated());
  EXPECT_EQ(r.missing_bytes(), 3u);
  EXPECT_EQ(r.count(), 2);
}

TEST(EventRecordReader, AbsurdLengthWithValidCrcIsDataLoss) {
  std::string bytes = frame({file_version_event()});
  char length[8];
  const uint64_t n = uint64_t{1} << 40;
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  const uint32_t crc = io::crc32c::mask(io::crc32c::value(length, 8));
  bytes.append(length, 8);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  bytes += "some bytes";
  expect_error([&] { ev::parse_event_bytes(bytes, "huge"); }, Code::kDataLoss,
               {"huge", "record 1", "length"});
}

TEST(EventRecordReader, PayloadThatIsNotAnEventIsDataLoss) {
  std::string bytes = frame({file_version_event()});
  io::record::append(bytes, std::string("\xff\xff\xff", 3));
  expect_error([&] { ev::parse_event_bytes(bytes, "junk"); }, Code::kDataLoss,
               {"junk", "record 1", "not an Event"});
}

// ---------------------------------------------------------------- decoding

TEST(EventDecode, FileVersionAndTf2Scalars) {
  const ev::EventFile f = ev::parse_event_bytes(
      frame({file_version_event(), tf2_scalar("epoch_loss", 0, 0.25f), tf2_scalar("epoch_loss", 1, -1.5f)}),
      "s");
  ASSERT_EQ(f.events.size(), 3u);
  EXPECT_EQ(f.events[0].file_version, "brain.Event:2");
  EXPECT_EQ(f.events[0].source_writer, "tensorflow.core.util.events_writer");
  EXPECT_FALSE(f.events[0].has_summary);
  EXPECT_EQ(f.events[0].wall_time, 1690485354.0);
  const ev::Value &v = f.events[2].values.at(0);
  EXPECT_EQ(v.tag, "epoch_loss");
  EXPECT_EQ(v.kind, Kind::kScalar);
  EXPECT_EQ(v.scalar, -1.5);
  EXPECT_EQ(v.plugin_name, "scalars");
  EXPECT_EQ(v.data_class, tbp::DATA_CLASS_SCALAR);
  EXPECT_EQ(v.dtype, tfproto::DT_FLOAT);
  EXPECT_TRUE(v.shape.empty());
  EXPECT_FALSE(v.legacy);
  EXPECT_EQ(f.events[2].step, 1);
  EXPECT_EQ(f.events[2].index, 2);
}

// make_ndarray's rules: any numeric dtype, tensor_content or the typed field, one value repeated.
TEST(EventDecode, ScalarsOfEveryNumericEncoding) {
  std::vector<tbp::Event> events;
  auto scalar = [&](const std::string &tag, tfproto::DataType dtype) {
    tbp::Event e = step_event(static_cast<int64_t>(events.size()));
    tbp::TensorProto *t = add_value(&e, tag, "scalars")->mutable_tensor();
    t->set_dtype(dtype);
    t->mutable_tensor_shape();
    events.push_back(e);
    return events.back().mutable_summary()->mutable_value(0)->mutable_tensor();
  };
  scalar("float_val", tfproto::DT_FLOAT)->add_float_val(1.5f);
  scalar("double_val", tfproto::DT_DOUBLE)->add_double_val(0.1);
  const double d = -2.75;
  scalar("double_content", tfproto::DT_DOUBLE)
      ->set_tensor_content(std::string(reinterpret_cast<const char *>(&d), 8));
  scalar("int_val", tfproto::DT_INT32)->add_int_val(-7);
  scalar("uint8_wraps", tfproto::DT_UINT8)->add_int_val(300);
  scalar("int64_val", tfproto::DT_INT64)->add_int64_val(int64_t{1} << 40);
  const int64_t i64 = -5;
  scalar("int64_content", tfproto::DT_INT64)
      ->set_tensor_content(std::string(reinterpret_cast<const char *>(&i64), 8));
  scalar("bool_val", tfproto::DT_BOOL)->add_bool_val(true);
  scalar("half_val", tfproto::DT_HALF)->add_half_val(0x3e00);                                // 1.5
  scalar("half_content", tfproto::DT_HALF)->set_tensor_content(std::string("\x00\xc0", 2));  // -2
  scalar("bf16_val", tfproto::DT_BFLOAT16)->add_half_val(0x4049);                            // 3.140625
  scalar("half_subnormal", tfproto::DT_HALF)->add_half_val(0x0001);
  tbp::TensorProto *one = scalar("shape_1x1", tfproto::DT_FLOAT);
  one->mutable_tensor_shape()->add_dim()->set_size(1);
  one->mutable_tensor_shape()->add_dim()->set_size(1);
  one->add_float_val(4.0f);
  // Not readable as a scalar: two elements, a content of the wrong size, no value at all.
  tbp::TensorProto *two = scalar("two_elements", tfproto::DT_FLOAT);
  two->mutable_tensor_shape()->add_dim()->set_size(2);
  two->add_float_val(1);
  two->add_float_val(2);
  scalar("short_content", tfproto::DT_FLOAT)->set_tensor_content("abc");
  scalar("no_value", tfproto::DT_FLOAT);
  scalar("complex", tfproto::DT_COMPLEX64)->add_scomplex_val(1);

  const ev::EventFile f = ev::parse_event_bytes(frame(events), "scalars");
  std::map<std::string, const ev::Value *> by_tag;
  for (const ev::Event &e : f.events) by_tag[e.values.at(0).tag] = &e.values.at(0);
  const std::vector<std::pair<std::string, double>> expected = {
      {"float_val", 1.5},    {"double_val", 0.1},    {"double_content", -2.75},
      {"int_val", -7},       {"uint8_wraps", 44},    {"int64_val", 1099511627776.0},
      {"int64_content", -5}, {"bool_val", 1},        {"half_val", 1.5},
      {"half_content", -2},  {"bf16_val", 3.140625}, {"half_subnormal", std::ldexp(1.0, -24)},
      {"shape_1x1", 4}};
  for (const auto &[tag, value] : expected) {
    ASSERT_TRUE(by_tag.count(tag)) << tag;
    EXPECT_EQ(by_tag[tag]->kind, Kind::kScalar) << tag;
    EXPECT_EQ(by_tag[tag]->scalar, value) << tag;
  }
  for (const char *tag : {"two_elements", "short_content", "no_value", "complex"}) {
    EXPECT_EQ(by_tag.at(tag)->kind, Kind::kTensor) << tag;
    EXPECT_EQ(by_tag.at(tag)->plugin_name, "scalars") << tag;
  }
  EXPECT_EQ(by_tag.at("two_elements")->numbers, (std::vector<double>{1, 2}));
}

TEST(EventDecode, Tf2HistogramIsPassedThrough) {
  tbp::Event e = step_event(3);
  tbp::TensorProto *t = add_value(&e, "dense/kernel_0", "histograms")->mutable_tensor();
  t->set_dtype(tfproto::DT_DOUBLE);
  t->mutable_tensor_shape()->add_dim()->set_size(2);
  t->mutable_tensor_shape()->add_dim()->set_size(3);
  const double rows[6] = {-1, 0, 3, 0, 1, 5};
  t->set_tensor_content(std::string(reinterpret_cast<const char *>(rows), sizeof rows));
  tbp::Event empty = step_event(4);  // tf.summary.histogram of no data: zeros [k, 3]
  tbp::TensorProto *z = add_value(&empty, "dense/kernel_0", "histograms")->mutable_tensor();
  z->set_dtype(tfproto::DT_DOUBLE);
  z->mutable_tensor_shape()->add_dim()->set_size(0);
  z->mutable_tensor_shape()->add_dim()->set_size(3);
  const ev::EventFile f = ev::parse_event_bytes(frame({e, empty}), "h");
  const ev::Value &v = f.events[0].values.at(0);
  EXPECT_EQ(v.kind, Kind::kHistogram);
  EXPECT_EQ(v.data_class, tbp::DATA_CLASS_TENSOR);
  ASSERT_EQ(v.histogram.size(), 2u);
  EXPECT_EQ(v.histogram[0], (std::array<double, 3>{-1, 0, 3}));
  EXPECT_EQ(v.histogram[1], (std::array<double, 3>{0, 1, 5}));
  EXPECT_EQ(f.events[1].values.at(0).kind, Kind::kHistogram);
  EXPECT_TRUE(f.events[1].values.at(0).histogram.empty());
}

// data_compat's legacy conversions: simple_value, histo (empty end buckets dropped, min and max as
// the outer edges, float32 rows), image, audio.
TEST(EventDecode, LegacyValuesAsDataCompat) {
  tbp::Event e = step_event(1);
  add_value(&e, "Loss")->set_simple_value(0.125f);
  tbp::HistogramProto *h = add_value(&e, "fc1.weight")->mutable_histo();
  h->set_min(-0.9);
  h->set_max(0.7);
  h->set_num(6);
  for (double limit : {-1.0, -0.5, 0.0, 0.5, 1.0, 1.7976931348623157e308}) h->add_bucket_limit(limit);
  for (double count : {0.0, 2.0, 0.0, 3.0, 1.0, 0.0}) h->add_bucket(count);
  tbp::HistogramProto *all_empty = add_value(&e, "empty")->mutable_histo();
  all_empty->add_bucket_limit(1.0);
  all_empty->add_bucket(0.0);
  tbp::HistogramProto *one = add_value(&e, "one_bucket")->mutable_histo();
  one->set_min(0.1);
  one->set_max(0.1);
  one->add_bucket_limit(0.5);
  one->add_bucket_limit(1.0);
  one->add_bucket(4.0);
  one->add_bucket(0.0);
  tbp::Summary::Value *img = add_value(&e, "images");
  img->mutable_image()->set_width(242);
  img->mutable_image()->set_height(392);
  img->mutable_image()->set_colorspace(3);
  img->mutable_image()->set_encoded_image_string("\x89PNG\r\n\x1a\nrest");
  tbp::Summary::Value *audio = add_value(&e, "clip");
  audio->mutable_audio()->set_encoded_audio_string("RIFF....WAVE");
  audio->mutable_metadata()->set_display_name("my clip");

  const ev::EventFile f = ev::parse_event_bytes(frame({e}), "legacy");
  const std::vector<ev::Value> &vs = f.events.at(0).values;
  ASSERT_EQ(vs.size(), 6u);
  EXPECT_EQ(vs[0].kind, Kind::kScalar);
  EXPECT_EQ(vs[0].scalar, 0.125);
  EXPECT_EQ(vs[0].plugin_name, "scalars");
  EXPECT_EQ(vs[0].display_name, "Loss");  // the tag, as data_compat sets it
  EXPECT_TRUE(vs[0].legacy);
  EXPECT_EQ(vs[0].data_class, tbp::DATA_CLASS_SCALAR);

  EXPECT_EQ(vs[1].kind, Kind::kHistogram);
  EXPECT_EQ(vs[1].plugin_name, "histograms");
  ASSERT_EQ(vs[1].histogram.size(), 4u);  // buckets 1..4
  const double f09 = static_cast<float>(-0.9), f07 = static_cast<float>(0.7);
  EXPECT_EQ(vs[1].histogram[0], (std::array<double, 3>{f09, -0.5, 2}));
  EXPECT_EQ(vs[1].histogram[1], (std::array<double, 3>{-0.5, 0.0, 0}));
  EXPECT_EQ(vs[1].histogram[2], (std::array<double, 3>{0.0, 0.5, 3}));
  EXPECT_EQ(vs[1].histogram[3], (std::array<double, 3>{0.5, f07, 1}));
  EXPECT_EQ(vs[1].shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(vs[2].kind, Kind::kHistogram);
  EXPECT_TRUE(vs[2].histogram.empty());
  EXPECT_EQ(vs[2].shape, (std::vector<int64_t>{0, 3}));
  ASSERT_EQ(vs[3].histogram.size(), 1u);
  EXPECT_EQ(vs[3].histogram[0], (std::array<double, 3>{static_cast<float>(0.1), static_cast<float>(0.1), 4}));

  EXPECT_EQ(vs[4].kind, Kind::kImage);
  EXPECT_EQ(vs[4].plugin_name, "images");
  EXPECT_EQ(vs[4].data_class, tbp::DATA_CLASS_BLOB_SEQUENCE);
  ASSERT_EQ(vs[4].strings.size(), 3u);
  EXPECT_EQ(vs[4].strings[0], "242");  // width first
  EXPECT_EQ(vs[4].strings[1], "392");
  int64_t w = 0, hgt = 0;
  EXPECT_TRUE(ev::image_size(vs[4], &w, &hgt));
  EXPECT_EQ(w, 242);
  EXPECT_EQ(hgt, 392);
  tbp::ImagePluginData image_content;
  ASSERT_TRUE(image_content.ParseFromString(vs[4].plugin_content));
  EXPECT_TRUE(image_content.converted_to_tensor());

  EXPECT_EQ(vs[5].kind, Kind::kAudio);
  EXPECT_EQ(vs[5].display_name, "my clip");
  EXPECT_EQ(vs[5].strings, (std::vector<std::string>{"RIFF....WAVE", ""}));
  EXPECT_EQ(vs[5].shape, (std::vector<int64_t>{1, 2}));
}

// Metadata on the first event of a tag only (some writers): later values take the tag's first
// metadata, and a later, different one is ignored, as TensorBoard's accumulator does.
TEST(EventDecode, FirstMetadataPerTagDecides) {
  tbp::Event second = tf2_scalar("loss", 1, 2.0f, /*with_metadata=*/false);
  tbp::Event third = tf2_scalar("loss", 2, 3.0f);
  third.mutable_summary()->mutable_value(0)->mutable_metadata()->mutable_plugin_data()->set_plugin_name(
      "text");
  tbp::Event orphan = tf2_scalar("untagged", 0, 1.0f, /*with_metadata=*/false);
  tbp::Event first = tf2_scalar("loss", 0, 1.0f);
  first.mutable_summary()->mutable_value(0)->mutable_metadata()->set_display_name("Loss!");
  const ev::EventFile f = ev::parse_event_bytes(frame({orphan, first, second, third}), "m");
  EXPECT_EQ(f.events[0].values[0].kind, Kind::kTensor);  // no metadata yet: just a tensor
  EXPECT_EQ(f.events[0].values[0].numbers, std::vector<double>{1.0});
  for (size_t i = 1; i < 4; ++i) {
    const ev::Value &v = f.events[i].values.at(0);
    EXPECT_EQ(v.kind, Kind::kScalar) << i;
    EXPECT_EQ(v.scalar, static_cast<double>(i)) << i;
    EXPECT_EQ(v.plugin_name, "scalars") << i;
    EXPECT_EQ(v.display_name, "Loss!") << i;
  }
  // An explicit data_class is kept as written.
  tbp::Event blob = step_event(0);
  tbp::Summary::Value *v = add_value(&blob, "x", "my_plugin");
  v->mutable_metadata()->set_data_class(tbp::DATA_CLASS_BLOB_SEQUENCE);
  v->mutable_tensor()->set_dtype(tfproto::DT_STRING);
  v->mutable_tensor()->add_string_val("blob");
  const ev::Value got = ev::parse_event_bytes(frame({blob}), "b").events[0].values.at(0);
  EXPECT_EQ(got.data_class, tbp::DATA_CLASS_BLOB_SEQUENCE);
  EXPECT_EQ(got.kind, Kind::kTensor);
  EXPECT_EQ(got.strings, std::vector<std::string>{"blob"});
}

TEST(EventDecode, Tf2ImagesTextHParamsGraphsAndSessionLogs) {
  tbp::Event img = step_event(0);
  tbp::TensorProto *t = add_value(&img, "dense/kernel_0/image", "images")->mutable_tensor();
  t->set_dtype(tfproto::DT_STRING);
  t->mutable_tensor_shape()->add_dim()->set_size(4);
  for (const char *s : {"784", "512", "\x89PNG-one", "\x89PNG-two"}) t->add_string_val(s);
  tbp::Event text = step_event(1);
  tbp::TensorProto *tt = add_value(&text, "notes", "text")->mutable_tensor();
  tt->set_dtype(tfproto::DT_STRING);
  tt->add_string_val("hello \xff world");  // not UTF-8: kept as bytes, replaced in the Config
  tbp::Event hp = step_event(0);
  tbp::Summary::Value *hv = add_value(&hp, "_hparams_/session_start_info", "hparams");
  tbp::HParamsPluginData data;
  (*data.mutable_session_start_info()->mutable_hparams())["units"].set_number_value(200);
  (*data.mutable_session_start_info()->mutable_hparams())["optimizer"].set_string_value("adam");
  data.mutable_session_start_info()->set_group_name("g1");
  hv->mutable_metadata()->mutable_plugin_data()->set_content(data.SerializeAsString());
  hv->mutable_tensor()->set_dtype(tfproto::DT_FLOAT);
  hv->mutable_tensor()->mutable_tensor_shape()->add_dim()->set_size(0);
  tbp::Event graph = step_event(0);
  graph.set_graph_def("graph bytes");
  tbp::Event trm = step_event(1);
  trm.mutable_tagged_run_metadata()->set_tag("step1");
  trm.mutable_tagged_run_metadata()->set_run_metadata("rm");
  tbp::Event start = step_event(5);
  start.mutable_session_log()->set_status(tbp::SessionLog::START);
  tbp::Event keras = step_event(0);
  tbp::Summary::Value *kv = add_value(&keras, "keras", "graph_keras_model");
  kv->mutable_metadata()->mutable_plugin_data()->set_content("1");
  kv->mutable_tensor()->set_dtype(tfproto::DT_STRING);
  kv->mutable_tensor()->add_string_val("{\"class_name\": \"Sequential\"}");

  const ev::EventFile f = ev::parse_event_bytes(frame({img, text, hp, graph, trm, start, keras}), "mixed");
  ASSERT_EQ(f.events.size(), 7u);
  const ev::Value &iv = f.events[0].values.at(0);
  EXPECT_EQ(iv.kind, Kind::kImage);
  EXPECT_EQ(iv.strings.size(), 4u);
  EXPECT_EQ(iv.data_class, tbp::DATA_CLASS_BLOB_SEQUENCE);
  const ev::Value &tv = f.events[1].values.at(0);
  EXPECT_EQ(tv.kind, Kind::kText);
  EXPECT_EQ(tv.strings, std::vector<std::string>{"hello \xff world"});
  const ev::Value &hpv = f.events[2].values.at(0);
  EXPECT_EQ(hpv.kind, Kind::kHParams);
  tbp::HParamsPluginData back;
  ASSERT_TRUE(back.ParseFromString(hpv.plugin_content));
  EXPECT_EQ(back.session_start_info().group_name(), "g1");
  EXPECT_TRUE(f.events[3].has_graph_def);
  ASSERT_EQ(f.events[3].values.size(), 1u);
  EXPECT_EQ(f.events[3].values[0].tag, "__run_graph__");
  EXPECT_EQ(f.events[3].values[0].plugin_name, "graphs");
  EXPECT_EQ(f.events[3].values[0].strings, std::vector<std::string>{"graph bytes"});
  EXPECT_EQ(f.events[4].values.at(0).tag, "step1");
  EXPECT_EQ(f.events[4].values.at(0).plugin_name, "graph_tagged_run_metadata");
  EXPECT_EQ(f.events[5].session_log_status, tbp::SessionLog::START);
  EXPECT_EQ(f.events[0].session_log_status, -1);
  const ev::Value &kval = f.events[6].values.at(0);
  EXPECT_EQ(kval.kind, Kind::kTensor);
  EXPECT_EQ(kval.data_class, tbp::DATA_CLASS_BLOB_SEQUENCE);
  EXPECT_EQ(kval.plugin_content, "1");

  // The Config view.
  const Config c = ev::to_config(f);
  EXPECT_EQ(c.get_string("path"), "mixed");
  EXPECT_FALSE(c.get_bool("truncated"));
  const std::vector<Config> events = c.get_config_list("events");
  ASSERT_EQ(events.size(), 7u);
  const Config image = events[0].get_config_list("values").at(0);
  EXPECT_EQ(image.get_string("kind"), "image");
  EXPECT_EQ(image.get_int("width"), 784);
  EXPECT_EQ(image.get_int("height"), 512);
  const std::vector<Config> images = image.get_config_list("images");
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].get_int("png_bytes"), 8);
  EXPECT_EQ(images[1].get_int("crc32c"), static_cast<int64_t>(io::crc32c::value("\x89PNG-two", 8)));
  const Config textc = events[1].get_config_list("values").at(0);
  EXPECT_EQ(textc.get_string_list("text"), std::vector<std::string>{"hello \xef\xbf\xbd world"});
  const Config hpc = events[2].get_config_list("values").at(0);
  EXPECT_EQ(hpc.get_string("kind"), "hparams");
  const Config start_info = hpc.get_config("hparams").get_config("session_start_info");
  EXPECT_EQ(start_info.get_string("group_name"), "g1");
  EXPECT_EQ(start_info.get_config("hparams").get_float("units"), 200.0);
  EXPECT_EQ(start_info.get_config("hparams").get_string("optimizer"), "adam");
  EXPECT_TRUE(events[3].get_bool("graph_def"));
  EXPECT_EQ(events[5].get_int("session_log"), 1);
  EXPECT_NO_THROW(c.to_json());
}

TEST(EventDecode, ConfigOfScalarsHistogramsAndTruncation) {
  tbp::Event h = step_event(2);
  add_value(&h, "w")->mutable_histo()->set_min(0);
  h.mutable_summary()->mutable_value(0)->mutable_histo()->set_max(1);
  h.mutable_summary()->mutable_value(0)->mutable_histo()->add_bucket_limit(2);
  h.mutable_summary()->mutable_value(0)->mutable_histo()->add_bucket(5);
  tbp::Event nan = tf2_scalar("nan", 3, std::nanf(""));
  std::string bytes = frame({file_version_event(), tf2_scalar("loss", 1, 0.5f), h, nan});
  bytes += bytes.substr(0, 20);  // a cut-short record at the end
  const Config c = ev::to_config(ev::parse_event_bytes(bytes, "c"));
  EXPECT_TRUE(c.get_bool("truncated"));
  EXPECT_NE(c.get_string("truncation_message").find("cut short"), std::string::npos);
  const std::vector<Config> events = c.get_config_list("events");
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].get_string("file_version"), "brain.Event:2");
  EXPECT_EQ(events[0].get_string("writer"), "tensorflow.core.util.events_writer");
  const Config loss = events[1].get_config_list("values").at(0);
  EXPECT_EQ(events[1].get_int("step"), 1);
  EXPECT_EQ(loss.get_string("tag"), "loss");
  EXPECT_EQ(loss.get_string("plugin"), "scalars");
  EXPECT_EQ(loss.get_float("scalar"), 0.5);
  const Config hist = events[2].get_config_list("values").at(0);
  EXPECT_EQ(hist.get_string("kind"), "histogram");
  EXPECT_TRUE(hist.get_bool("legacy"));
  EXPECT_EQ(hist.json().at("histogram"), Config::Json::parse("[[0.0, 1.0, 5.0]]"));
  EXPECT_NE(c.to_json().find("NaN"), std::string::npos);  // a NaN scalar survives as NaN
}

// Protobuf prints a map's entries in an order that changes from one parse to the next; the
// Config view sorts them, so reading a file twice gives the same JSON (found by the fuzzer).
TEST(EventDecode, HParamsConfigIsTheSameEveryRead) {
  tbp::Event hp = step_event(0);
  tbp::Summary::Value *hv = add_value(&hp, "_hparams_/session_start_info", "hparams");
  tbp::HParamsPluginData data;
  for (int i = 0; i < 20; ++i)
    (*data.mutable_session_start_info()->mutable_hparams())["p" + std::to_string(i)].set_number_value(i);
  hv->mutable_metadata()->mutable_plugin_data()->set_content(data.SerializeAsString());
  const std::string bytes = frame({hp});
  const std::string first = ev::to_config(ev::parse_event_bytes(bytes, "h")).to_json();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ev::to_config(ev::parse_event_bytes(bytes, "h")).to_json(), first);
  EXPECT_LT(first.find("\"p0\""), first.find("\"p1\""));
  EXPECT_LT(first.find("\"p19\""), first.find("\"p2\""));  // sorted as strings
}

// ---------------------------------------------------------------- runs

TEST(EventRuns, FindRunsAsTensorBoard) {
  TempDir dir;
  for (const char *sub : {"a/train", "a/validation", "b", "empty", "a/train/deeper"})
    std::filesystem::create_directories(dir / sub);
  testing::spit(dir / "events.out.tfevents.2.host", "");
  testing::spit(dir / "events.out.tfevents.1.host", "");
  testing::spit(dir / "README.md", "");
  testing::spit(dir / "a/train/events.out.tfevents.9.h.1.v2", "");
  testing::spit(dir / "a/train/events.out.tfevents.10.h.1.v2", "");
  testing::spit(dir / "a/train/deeper/x.tfevents.y", "");
  testing::spit(dir / "a/validation/events.out.tfevents.3.h.2.v2", "");
  testing::spit(dir / "b/not_events.txt", "");
  std::filesystem::create_directories(dir / "b/events.out.tfevents.dir");  // a directory, not a file
  const auto runs = ev::find_runs(dir.path());
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs.at("."), (std::vector<std::string>{dir / "events.out.tfevents.1.host",
                                                    dir / "events.out.tfevents.2.host"}));
  // Sorted by path: "10" before "9", as TensorBoard's sorted() orders them.
  EXPECT_EQ(runs.at("a/train"), (std::vector<std::string>{dir / "a/train/events.out.tfevents.10.h.1.v2",
                                                          dir / "a/train/events.out.tfevents.9.h.1.v2"}));
  EXPECT_EQ(runs.at("a/train/deeper").size(), 1u);
  EXPECT_EQ(runs.at("a/validation").size(), 1u);
  expect_error([&] { ev::find_runs(dir / "missing"); }, Code::kNotFound, {"missing"});
  expect_error([&] { ev::find_runs(dir / "README.md"); }, Code::kInvalidArgument, {"not a directory"});
}

}  // namespace
}  // namespace kiln
