// kernels/spin_team.h: every part runs once and run() returns after all of them, a helper takes
// its part while the caller runs its own, concurrent and nested callers run their parts
// themselves, a copied job runs with its own captures, and a forked child starts helpers of its own.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "kernels/spin_team.h"

namespace kiln {
namespace {

namespace team = kernels::spin_team;

bool two_cores() { return team::max_helpers() >= 1; }

// Waits up to a second for flag; true if it was set.
bool wait_for(const std::atomic<bool> &flag) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(SpinTeam, EveryPartRunsOnceAndRunReturnsAfterAllOfThem) {
  for (int parts = 1; parts <= 12; ++parts)
    for (int round = 0; round < 50; ++round) {
      std::vector<int> runs(static_cast<size_t>(parts), 0);
      std::vector<long> values(static_cast<size_t>(parts), 0);
      std::vector<std::thread::id> ran_on(static_cast<size_t>(parts));
      const int by_helpers = team::run(parts, [&](int i) {
        ++runs[static_cast<size_t>(i)];
        ran_on[static_cast<size_t>(i)] = std::this_thread::get_id();
        long v = 0;
        for (int k = 0; k < 1000 * (i + 1); ++k) v += k % 7;
        values[static_cast<size_t>(i)] = v;
      });
      // run's count is the parts that ran on another thread than the caller's.
      EXPECT_EQ(by_helpers, std::count_if(ran_on.begin(), ran_on.end(),
                                          [](std::thread::id t) { return t != std::this_thread::get_id(); }));
      for (int i = 0; i < parts; ++i) {
        EXPECT_EQ(runs[static_cast<size_t>(i)], 1) << parts << " parts, part " << i;
        long want = 0;
        for (int k = 0; k < 1000 * (i + 1); ++k) want += k % 7;
        EXPECT_EQ(values[static_cast<size_t>(i)], want) << parts << " parts, part " << i;
      }
    }
}

TEST(SpinTeam, AHelperRunsItsPartWhileTheCallerRunsItsOwn) {
  if (!two_cores()) GTEST_SKIP() << "one processor: no helper is started";
  const long before = team::parts_run_by_helpers();
  std::atomic<bool> part1_started{false};
  std::thread::id caller = std::this_thread::get_id(), ran_part1;
  bool waited = false;
  const int by_helpers = team::run(2, [&](int i) {
    if (i == 0) {
      waited = wait_for(part1_started);  // part 1 can only start on the helper meanwhile
    } else {
      ran_part1 = std::this_thread::get_id();
      part1_started = true;
    }
  });
  EXPECT_TRUE(waited);
  EXPECT_EQ(by_helpers, 1);  // run says how many parts helpers ran
  EXPECT_NE(ran_part1, caller);
  EXPECT_GE(team::helpers_started(), 1);
  EXPECT_EQ(team::parts_run_by_helpers(), before + 1);
}

TEST(SpinTeam, ACallerNeverWaitsForAPartNoHelperTook) {
  // Part 0 takes longer than the helpers' spin: they go to sleep between calls, and the caller
  // runs what they have not taken.
  for (int round = 0; round < 20; ++round) {
    std::vector<int> runs(3, 0);
    team::run(3, [&](int i) { ++runs[static_cast<size_t>(i)]; });
    std::this_thread::sleep_for(std::chrono::microseconds(team::kSpinMicros * 3));
    EXPECT_EQ(runs, (std::vector<int>{1, 1, 1}));
  }
}

TEST(SpinTeam, ConcurrentCallersEachGetAllTheirParts) {
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([c, &failures] {
      for (int round = 0; round < 300; ++round) {
        const int parts = 2 + (round + c) % 3;
        std::vector<std::atomic<int>> runs(static_cast<size_t>(parts));
        for (auto &r : runs) r = 0;
        team::run(parts, [&](int i) { runs[static_cast<size_t>(i)].fetch_add(1); });
        for (auto &r : runs)
          if (r.load() != 1) failures.fetch_add(1);
      }
    });
  for (std::thread &t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(SpinTeam, ANestedRunRunsOnItsCaller) {
  std::vector<int> inner(6, 0);
  team::run(2, [&](int i) { team::run(3, [&](int j) { ++inner[static_cast<size_t>(3 * i + j)]; }); });
  EXPECT_EQ(inner, (std::vector<int>(6, 1)));
}

// run_copied: a helper runs a copy of the callable, taken from the team's lines, so each job's
// captures must be the ones it was published with even when jobs follow each other closely.
struct Recorder {
  long *out;
  const Recorder **ran_from;  // the object each part ran on
  long base;
  std::atomic<bool> *part1_started;  // when not null, part 0 waits (up to a second) for part 1
  void operator()(int i) const {
    out[i] = base + i;
    ran_from[i] = this;
    if (i == 1 && part1_started) part1_started->store(true);
    if (i == 0 && part1_started) wait_for(*part1_started);
  }
};

TEST(SpinTeam, ACopiedJobRunsWithTheValuesItWasPublishedWith) {
  std::vector<long> out(3, -1);
  std::vector<const Recorder *> ran_from(3);
  int by_helpers = 0;
  std::atomic<bool> part1_started{false};
  for (long round = 0; round < 5000; ++round) {
    // The first round waits for a helper to take part 1 (where there is one).
    const Recorder job{out.data(), ran_from.data(), 10 * round,
                       round == 0 && two_cores() ? &part1_started : nullptr};
    const int parts = 2 + static_cast<int>(round % 2);
    const int helped = team::run_copied(parts, job);
    by_helpers += helped;
    int copies = 0;
    for (int i = 0; i < parts; ++i) {
      ASSERT_EQ(out[static_cast<size_t>(i)], job.base + i) << "round " << round;
      if (ran_from[static_cast<size_t>(i)] != &job) ++copies;
    }
    EXPECT_EQ(ran_from[0], &job);  // the caller runs part 0 on the object itself
    EXPECT_EQ(copies, helped);     // a helper only ever on its copy
  }
  if (two_cores()) {
    EXPECT_GT(by_helpers, 0);
  }
}

TEST(SpinTeam, AJobTooLargeToCopyRunsOnTheCaller) {
  struct Job {
    int *runs;
    std::thread::id *where;
  };
  std::vector<int> runs(3, 0);
  std::vector<std::thread::id> where(3);
  const Job job{runs.data(), where.data()};
  const auto invoke = [](const void *j, int part) {
    const Job &copy = *static_cast<const Job *>(j);
    ++copy.runs[part];
    copy.where[part] = std::this_thread::get_id();
  };
  // Claims more bytes than a job may have: nothing is copied, the caller runs every part.
  EXPECT_EQ(team::run_job(3, invoke, &job, team::kJobBytes + 1), 0);
  EXPECT_EQ(runs, (std::vector<int>{1, 1, 1}));
  for (const std::thread::id &t : where) EXPECT_EQ(t, std::this_thread::get_id());
  // Within the limit: every part once, wherever it ran.
  EXPECT_GE(team::run_job(3, invoke, &job, sizeof(job)), 0);
  EXPECT_EQ(runs, (std::vector<int>{2, 2, 2}));
}

// AddressSanitizer's runtime: a thread started in a forked child of a multithreaded process did
// not run within a second there (in CI), and the child's caller ran part 1 itself, as designed.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kChildThreadsRun = false;
#else
constexpr bool kChildThreadsRun = true;
#endif

TEST(SpinTeam, AForkedChildStartsHelpersOfItsOwn) {
  if (!two_cores()) GTEST_SKIP() << "one processor: no helper is started";
  team::run(2, [](int) {});  // the parent's helpers exist
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // In the child: none of the parent's helpers. A new one takes part 1 while part 0 waits; every
    // part runs once whoever runs it.
    int code = team::helpers_started() == 0 ? 0 : 1;
    std::atomic<bool> part1_started{false};
    std::atomic<int> runs{0};
    bool waited = false;
    team::run(2, [&](int i) {
      runs.fetch_add(1);
      if (i == 0)
        waited = wait_for(part1_started);
      else
        part1_started = true;
    });
    if (!waited && kChildThreadsRun) code |= 2;
    if (team::helpers_started() != 1 || runs.load() != 2) code |= 4;
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the child saw its parent's helpers; 2: no helper took part 1; "
                                       "4: the child did not start exactly one helper, or a part did not "
                                       "run exactly once";
}

}  // namespace
}  // namespace kiln
