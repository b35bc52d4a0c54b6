// kiln::Config in kiln.hpp: building, reading, copying (deep) and errors as kiln::Error.
#include <gtest/gtest.h>

#include "kiln/kiln.hpp"

namespace {

TEST(HppConfig, SetGetAndOrder) {
  kiln::Config c;
  c.set("units", 64).set("activation", "relu").set("use_bias", false).set("rate", 0.1);
  c.set("kernel_size", std::vector<int64_t>{3, 3}).set("names", std::vector<std::string>{"x", "y"});
  c.set("init", kiln::Config().set("class_name", "Ones")).set_null("seed");
  EXPECT_EQ(c.size(), 8u);
  EXPECT_EQ(c.keys().at(1), "activation");
  EXPECT_EQ(c.get_int("units"), 64);
  EXPECT_EQ(c.get_string("activation"), "relu");
  EXPECT_FALSE(c.get_bool("use_bias"));
  EXPECT_DOUBLE_EQ(c.get_float("rate"), 0.1);
  EXPECT_EQ(c.get_int_list("kernel_size"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(c.get_string_list("names"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c.get_config("init").get_string("class_name"), "Ones");
  EXPECT_EQ(c.type("seed"), kiln::Config::Type::null);
  c.set("layers", std::vector<kiln::Config>{c.get_config("init")});
  EXPECT_EQ(c.get_config_list("layers").at(0).get_string("class_name"), "Ones");
  EXPECT_EQ(kiln::Config::from_json(c.to_json()), c);
  EXPECT_EQ(kiln::Config::from_json(c.to_json(1024)), c);
  EXPECT_THROW(c.to_json(5000), kiln::Error);  // beyond 1024 spaces a level
}

TEST(HppConfig, CopiesAreDeep) {
  kiln::Config a;
  a.set("units", 1);
  kiln::Config b = a;
  b.set("units", 2);
  EXPECT_EQ(a.get_int("units"), 1);
  EXPECT_NE(a, b);
}

TEST(HppConfig, ErrorsThrow) {
  kiln::Config c;
  c.set("units", "64");
  try {
    c.get_int("units");
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("key 'units' is a string"), std::string::npos) << e.what();
  }
  EXPECT_THROW(c.get_int("nope"), kiln::Error);
  EXPECT_THROW(kiln::Config::from_json("not json"), kiln::Error);
}

}  // namespace

// Python's dict.update: src's keys set here, replacing values already here.
TEST(HppConfig, Update) {
  kiln::Config a, b;
  a.set("units", int64_t{4}).set("name", std::string("d"));
  b.set("units", int64_t{8}).set("use_bias", false);
  a.update(b);
  EXPECT_EQ(a.get_int("units"), 8);
  EXPECT_EQ(a.get_string("name"), "d");
  EXPECT_FALSE(a.get_bool("use_bias"));
  EXPECT_EQ(b.size(), 2u);  // src unchanged
}
