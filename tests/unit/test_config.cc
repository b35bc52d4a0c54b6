// kiln::Config and ConfigReader: types, order, JSON round trip, and errors that name the key.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/config.h"
#include "core/error.h"
#include "test_util.h"

namespace kiln {
namespace {

TEST(Config, KeepsInsertionOrderAndTypes) {
  Config c;
  c.set("units", 64).set("activation", "relu").set("use_bias", true).set("rate", 0.5);
  c.set("kernel_size", std::vector<int64_t>{3, 3}).set_null("noise_shape");
  EXPECT_EQ(c.keys(), (std::vector<std::string>{"units", "activation", "use_bias", "rate", "kernel_size",
                                                "noise_shape"}));
  c.set("units", 32);  // replacing keeps the position
  EXPECT_EQ(c.keys().front(), "units");
  EXPECT_EQ(c.get_int("units"), 32);
  EXPECT_EQ(c.type("activation"), Config::Type::kString);
  EXPECT_EQ(c.type("kernel_size"), Config::Type::kList);
  EXPECT_EQ(c.type("noise_shape"), Config::Type::kNull);
  EXPECT_TRUE(c.get_bool("use_bias"));
  EXPECT_DOUBLE_EQ(c.get_float("rate"), 0.5);
  EXPECT_DOUBLE_EQ(c.get_float("units"), 32.0);  // an int reads as a float
  EXPECT_EQ(c.get_int_list("kernel_size"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(c.get_int_list("units"), (std::vector<int64_t>{32}));  // a scalar reads as a list
}

TEST(Config, NestedConfigsAndJsonRoundTrip) {
  Config init;
  init.set("class_name", "GlorotUniform").set("config", Config().set_null("seed"));
  Config c;
  c.set("kernel_initializer", init).set("layers", std::vector<Config>{init, init});
  c.set("names", std::vector<std::string>{"a", "b"}).set("scales", std::vector<double>{0.5, 2});
  const Config back = Config::from_json(c.to_json());
  EXPECT_EQ(back, c);
  EXPECT_EQ(back.keys(), c.keys());
  EXPECT_EQ(back.get_config("kernel_initializer").get_string("class_name"), "GlorotUniform");
  EXPECT_EQ(back.get_config_list("layers").size(), 2u);
  EXPECT_EQ(back.get_string_list("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(back.get_float_list("scales"), (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(Config::from_json("{\"units\": 64.0}").get_int("units"), 64);  // integral float is an int
}

TEST(Config, UpdateKeepsPlacesAndAppends) {
  Config a;
  a.set("x", 1).set("y", 2);
  Config b;
  b.set("z", 3).set("x", 9);
  a.update(b);
  EXPECT_EQ(a.keys(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(a.get_int("x"), 9);
}

TEST(Config, ErrorsNameTheKeyAndTheExpectedType) {
  Config c;
  c.set("units", "64");
  testing::expect_error([&] { (void)(c.get_int("units")); }, Code::kInvalidArgument, {"key 'units' is a string \"64\"; expected an int"});
  testing::expect_error([&] { (void)(c.get_int("missing")); }, Code::kNotFound, {"no key 'missing'"});
  testing::expect_error([&] { (void)(Config().set("x", 2.5).get_int("x")); }, Code::kInvalidArgument, {"expected an int"});
  testing::expect_error([&] { (void)(Config().set("x", std::nan(""))); }, Code::kInvalidArgument, {"expected a finite float"});
  testing::expect_error([&] { (void)(Config().set("", 1)); }, Code::kInvalidArgument, {"must not be empty"});
  testing::expect_error([&] { (void)(Config::from_json("[1, 2]")); }, Code::kInvalidArgument, {"expected a JSON object"});
  testing::expect_error([&] { (void)(Config::from_json("{\"a\": ")); }, Code::kInvalidArgument, {"not valid JSON"});
  testing::expect_error([&] { (void)(Config().set("l", std::vector<std::string>{"a"}).get_int_list("l")); }, Code::kInvalidArgument, {"expected a list of ints"});
}

TEST(Config, MeasuredValuesKeepNonFiniteFloatsThroughJson) {
  const double inf = std::numeric_limits<double>::infinity();
  Config c;
  c.set_any_float("loss", std::nan("")).set_any_float("hi", inf).set_any_float("lo", -inf);
  c.set_any_float("list", std::vector<double>{1.5, -inf, std::nan("")}).set("name", "NaN Infinity");
  const std::string text = c.to_json();
  EXPECT_EQ(text, "{\"loss\":NaN,\"hi\":Infinity,\"lo\":-Infinity,\"list\":[1.5,-Infinity,NaN],"
                  "\"name\":\"NaN Infinity\"}");
  Config back = Config::from_json(text);
  EXPECT_TRUE(std::isnan(back.get_float("loss")));
  EXPECT_EQ(back.get_float("hi"), inf);
  EXPECT_EQ(back.get_float("lo"), -inf);
  std::vector<double> list = back.get_float_list("list");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0], 1.5);
  EXPECT_EQ(list[1], -inf);
  EXPECT_TRUE(std::isnan(list[2]));
  EXPECT_EQ(back.get_string("name"), "NaN Infinity");
  // Indented text too, and finite configs are untouched.
  EXPECT_TRUE(std::isnan(Config::from_json(c.to_json(2)).get_float("loss")));
  EXPECT_EQ(Config().set("a", 1.5).to_json(), "{\"a\":1.5}");
  // Words that only look alike stay errors.
  testing::expect_error([&] { (void)(Config::from_json("{\"a\": NaNa}")); }, Code::kInvalidArgument, {"not valid JSON"});
  testing::expect_error([&] { (void)(Config::from_json("{\"a\": nan}")); }, Code::kInvalidArgument, {"not valid JSON"});
  // Settings stay finite wherever they come from.
  testing::expect_error([&] {
    ConfigReader r(Config::from_json("{\"rate\": NaN}"), "Dropout");
    (void)r.get_float("rate", 0.5);
  }, Code::kInvalidArgument, {"rate", "finite"});
}

TEST(ConfigReader, DefaultsRequiredAndUnknownKeys) {
  Config c;
  c.set("units", 8).set("activation", "tanh").set_null("bias_initializer");
  ConfigReader r(c, "Dense");
  EXPECT_EQ(r.get_int("units"), 8);
  EXPECT_EQ(r.get_string("activation", "linear"), "tanh");
  EXPECT_FALSE(r.get_optional_config("bias_initializer").has_value());  // null = default
  EXPECT_TRUE(r.get_bool("use_bias", true));
  r.finish();

  Config typo;
  typo.set("units", 8).set("unitz", 9);
  ConfigReader r2(typo, "Dense");
  r2.get_int("units");
  r2.get_bool("use_bias", true);
  testing::expect_error([&] { (void)(r2.finish()); }, Code::kInvalidArgument, {"Dense: unknown config key 'unitz'; accepted keys: units, use_bias"});

  ConfigReader r3(Config(), "Dense");
  testing::expect_error([&] { (void)(r3.get_int("units")); }, Code::kInvalidArgument, {"Dense: config key 'units' is required"});
  Config wrong;
  wrong.set("units", "eight");
  ConfigReader r4(wrong, "Dense");
  testing::expect_error([&] { (void)(r4.get_int("units", 1)); }, Code::kInvalidArgument, {"Dense: config: key 'units' is a string"});
}

}  // namespace
}  // namespace kiln
