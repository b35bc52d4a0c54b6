// libkiln_openmp_env.so (src/openmp_env/openmp_env.c): libgomp starts with kiln's spin count
// unless the user chose a wait policy, and the process environment is left as the user set it.
#include <gtest/gtest.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "openmp_env/openmp_env.h"

namespace {

// This test binary's path (the child runs it with a filter that selects one no-op test).
std::string self_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// The GOMP_SPINCOUNT libgomp reports at start-up in a child started with `env_args` (after
// clearing the two variables kiln looks at), as "GOMP_SPINCOUNT = '<n>'"; empty if not found,
// or if the child's own test (OpenMpEnvChild) failed.
std::string child_spincount(const std::string &env_args) {
  const std::string cmd = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " + env_args +
                          " '" + self_path() + "' --gtest_filter=OpenMpEnvChild.* 2>&1";
  FILE *p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  if (out.find("[  PASSED  ] 1 test") == std::string::npos) {
    ADD_FAILURE() << "the child with " << env_args << " failed:\n" << out;
    return "";
  }
  const std::string key = "GOMP_SPINCOUNT = '";
  const size_t at = out.find(key);
  if (at == std::string::npos) return "";
  const size_t end = out.find('\'', at + key.size());
  return end == std::string::npos ? "" : out.substr(at + key.size(), end - at - key.size());
}

TEST(OpenMpEnvChild, StartsAndChecksTheEnvironmentIsTheUsers) {
  // Run as a child: whatever libgomp was told, the variable kiln set is gone again.
  const char *user = getenv("KILN_TEST_USER_SPINCOUNT");
  const char *now = getenv("GOMP_SPINCOUNT");
  if (user)
    EXPECT_STREQ(now, user);
  else
    EXPECT_EQ(now, nullptr);
}

TEST(OpenMpEnv, LibgompStartsWithKilnsSpinCount) {
  ASSERT_FALSE(self_path().empty());
  EXPECT_EQ(child_spincount(""), kiln_openmp_env_spincount());
}

TEST(OpenMpEnv, TheUsersSpinCountOrWaitPolicyWins) {
  EXPECT_EQ(child_spincount("GOMP_SPINCOUNT=777 KILN_TEST_USER_SPINCOUNT=777"), "777");
  EXPECT_EQ(child_spincount("OMP_WAIT_POLICY=passive"), "0");
  EXPECT_EQ(child_spincount("OMP_WAIT_POLICY=active"), "30000000000");
}

TEST(OpenMpEnv, RestoreIsANoOpOnceDone) {
  // The core's start-up already took the variable back out (or never set it).
  EXPECT_EQ(kiln_openmp_env_restore(), 0);
}

}  // namespace
