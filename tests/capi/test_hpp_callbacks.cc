// Callbacks through kiln.hpp: a built-in callback by class name, copies, and an unknown class as
// a kiln::Error.
#include <gtest/gtest.h>

#include "kiln/kiln.hpp"

namespace {

TEST(HppCallbacks, CreateCopyAndUnknown) {
  kiln::Callback h = kiln::Callback::create("History");
  kiln::Callback copy = h;
  EXPECT_EQ(copy.class_name(), "History");
  try {
    kiln::Callback::create("NoSuchCallback");
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("NoSuchCallback"), std::string::npos);
  }
}

TEST(HppCallbacks, HistoryReadsItsRecord) {
  kiln::History h;
  EXPECT_EQ(h.class_name(), "History");
  EXPECT_TRUE(h.history().empty());
  EXPECT_TRUE(h.keys().empty());
  EXPECT_TRUE(h.epoch().empty());
  kiln::History not_history(kiln::Callback::create("ProgbarLogger").release());
  try {
    not_history.history();
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_FAILED_PRECONDITION);
  }
}

}  // namespace
