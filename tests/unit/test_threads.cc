// Kernel thread counts (core/threads.h): the global count and the calling thread's override.
#include <string>
#include <thread>

#include "core/threads.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;

TEST(Threads, OverrideIsPerThreadAndZeroRemovesIt) {
  set_num_threads(3);
  EXPECT_EQ(num_threads_for_this_thread(), 0);
  set_num_threads_for_this_thread(1);
  EXPECT_EQ(num_threads(), 1);
  EXPECT_EQ(num_threads_for_this_thread(), 1);
  int other = 0, other_override = -1;
  std::thread([&] {
    other = num_threads();
    other_override = num_threads_for_this_thread();
  }).join();
  EXPECT_EQ(other, 3);
  EXPECT_EQ(other_override, 0);
  set_num_threads(2);  // the override still wins on this thread
  EXPECT_EQ(num_threads(), 1);
  set_num_threads_for_this_thread(0);
  EXPECT_EQ(num_threads(), 2);
}

TEST(Threads, OverrideOutOfRangeIsRejectedAndChangesNothing) {
  set_num_threads_for_this_thread(2);
  const int limit = max_num_threads();
  for (int bad : {-1, limit + 1, 1 << 30})
    expect_error([bad] { set_num_threads_for_this_thread(bad); }, Code::kInvalidArgument,
                 {"set_num_threads_for_this_thread", "got " + std::to_string(bad),
                  "from 1 to " + std::to_string(limit), "0 (remove the override)"});
  EXPECT_EQ(num_threads_for_this_thread(), 2);
  set_num_threads_for_this_thread(limit);
  EXPECT_EQ(num_threads(), limit);
  set_num_threads_for_this_thread(0);
}

}  // namespace
}  // namespace kiln
