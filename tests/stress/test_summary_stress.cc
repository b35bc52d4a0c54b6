// Several threads log through one summary writer while another flushes and the last one closes
// it. Run by ThreadSanitizer (label `stress`): the queue, the writer thread, flush and close must
// be ordered, and every record must come out whole, in each thread's order.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "io/event_reader.h"
#include "summary/summary.h"
#include "summary/writer.h"

namespace kiln {
namespace {

TEST(SummaryStress, WritersFlushAndClose) {
  char tmpl[] = "/tmp/kiln_summary_stress_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  summary::WriterOptions o;
  o.max_queue = 2;
  o.flush_millis = 1;
  auto w = summary::SummaryWriter::create(dir, o);
  constexpr int kThreads = 4, kEach = 400;
  std::atomic<bool> done{false};
  std::thread flusher([&] {
    while (!done.load()) w->flush();
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      summary::DefaultScope scope(w);
      for (int i = 0; i < kEach; ++i) {
        summary::scalar("t" + std::to_string(t), i, i);
        if (i % 50 == 0) summary::text("n" + std::to_string(t), std::string(100 + i, 'x'), i);
      }
    });
  for (auto &t : ts) t.join();
  done = true;
  flusher.join();
  w->close();
  io::events::EventFile f = io::events::read_event_file(w->path());
  std::map<std::string, int64_t> next;
  int64_t scalars = 0;
  for (size_t i = 1; i < f.events.size(); ++i) {
    const auto &v = f.events[i].values[0];
    if (v.tag[0] != 't') continue;
    EXPECT_EQ(f.events[i].step, next[v.tag]++);
    ++scalars;
  }
  EXPECT_EQ(scalars, kThreads * kEach);
  EXPECT_FALSE(f.truncated);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
