// Crash safety of checkpoint saves (DESIGN.md §6: temporary names, fsync, rename). A saver
// process saves a model of a few MB through CheckpointManager over and over, each generation g
// with values of its own; the test kills it with SIGKILL at random points of its saves, 24
// times (a new saver carrying on from the latest checkpoint each time), and after each kill
// checks the directory as the next process would find it:
//  - the checkpoint the `checkpoint` state file names loads, and holds exactly generation g of
//    its name ckpt-g (never an older one than before the kill);
//  - no file under a final name is half written: every `.index` opens and every checkpoint with
//    one loads with its own generation's values; a data file without an index (the kill fell
//    between a save's two renames, or inside the deletion of an old checkpoint) is complete;
//    the state file parses; a bundle under `ckpt-<n>.kiln-previous` (a save over ckpt-n, which
//    follows a kill between a save's renames and its state file, moved the old one aside:
//    io/bundle.h) leaves ckpt-n loading; anything else must be a temporary (`.tempstate<hex>`,
//    TF's naming), which neither the reader nor latest_checkpoint nor the next manager looks at.
// The savers are forked from a "zygote": this test binary run again (fork, then exec), told by
// its environment to fork savers instead of running tests. A fork of the test process itself
// could hang in OpenMP (libgomp's threads do not survive fork), and starting the binary afresh
// for each kill costs 0.6 s under ASan.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"
#include "layers/layer.h"
#include "train/checkpoint.h"

extern char **environ;

namespace kiln::train {
namespace {

constexpr const char *kChildDirEnv = "KILN_CRASH_SAVER_DIR";
constexpr const char *kChildFdEnv = "KILN_CRASH_SAVER_FD";
constexpr int kKills = 24;

// A Sequential MLP of about 4 MB of float32 weights (1 MB under AddressSanitizer, whose saves
// are slower), so a save writes and fsyncs for some milliseconds.
layers::LayerPtr make_model() {
#if defined(__SANITIZE_ADDRESS__)
  const int64_t in = 512, hidden = 384, out = 128;
#else
  const int64_t in = 1024, hidden = 768, out = 256;
#endif
  auto dense = [](int64_t units) {
    Config cfg;
    cfg.set("units", units);
    Config ser;
    ser.set("class_name", "Dense");
    ser.set("config", cfg);
    return ser;
  };
  Config c;
  c.set("layers", std::vector<Config>{dense(hidden), dense(out)});
  layers::LayerPtr m = layers::create_layer("Sequential", c);
  m->build({layers::PartialShape{-1, in}});
  return m;
}

// The value generation g stores at element i of variable v: distinct per generation, variable
// and position, and exact in float32 for the generations a run reaches.
float expected(int64_t g, size_t v, int64_t i) {
  return static_cast<float>(g) * 64.0f + static_cast<float>(v) * 8.0f + static_cast<float>(i % 8) * 0.5f;
}

void fill_generation(const layers::LayerPtr &model, int64_t g) {
  const auto vars = model->variables();
  for (size_t v = 0; v < vars.size(); ++v) {
    Tensor t = Tensor::empty(DType::kFloat32, vars[v]->shape());
    float *p = t.mutable_data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = expected(g, v, i);
    vars[v]->assign(t);
  }
}

// "" when every value of model is generation g's, else what differs.
std::string check_generation(const layers::LayerPtr &model, int64_t g) {
  const auto vars = model->variables();
  for (size_t v = 0; v < vars.size(); ++v) {
    const Tensor t = vars[v]->peek();
    const float *p = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i)
      if (p[i] != expected(g, v, i))
        return str_cat("variable ", v, " element ", i, " is ", p[i], ", generation ", g, " has ",
                       expected(g, v, i));
  }
  return "";
}

// ---- the saver, and the process that forks it

bool write_all(int fd, const void *data, size_t n) {
  const char *p = static_cast<const char *>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Saves generations until killed; reports 'r' once ready, then 's' after each save.
[[noreturn]] void run_saver(const std::string &dir, int report) {
  try {
    const layers::LayerPtr model = make_model();
    auto ckpt = std::make_shared<Checkpoint>(
        std::vector<std::pair<std::string, TrackablePtr>>{{"model", make_trackable(model)}});
    CheckpointManagerOptions o;
    o.max_to_keep = 3;
    CheckpointManager manager(ckpt, dir, o);
    manager.restore_or_initialize();  // the save numbering carries on from the last checkpoint
    write_all(report, "r", 1);
    for (;;) {
      fill_generation(model, ckpt->save_counter() + 1);  // the number the save will get
      manager.save();
      write_all(report, "s", 1);
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "crash-test saver: %s\n", e.what());
  }
  std::_Exit(3);
}

// The zygote: this binary run again (so it has used no OpenMP and holds no other thread, and a
// fork of it may do anything), which forks one saver per 'f' read from `command`, writes the
// saver's pid to `control`, waits for it to end (the test kills it) and writes its wait status.
// Forking it costs far less than starting the binary for every kill (0.6 s under ASan).
[[noreturn]] void run_zygote(const std::string &dir, int command, int control, int report) {
  char c = 0;
  while (::read(command, &c, 1) == 1 && c == 'f') {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(command);
      ::close(control);
      run_saver(dir, report);
    }
    const int32_t id = pid;
    if (pid < 0 || !write_all(control, &id, sizeof id)) break;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int32_t st = status;
    if (!write_all(control, &st, sizeof st)) break;
  }
  std::_Exit(0);
}

// Registered for every run of this binary; only the zygote started by the test below has the
// environment that makes it one (it then never returns to the tests).
class ZygoteEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char *dir = std::getenv(kChildDirEnv);
    const char *fds = std::getenv(kChildFdEnv);
    int command = -1, control = -1, report = -1;
    if (dir && fds && std::sscanf(fds, "%d,%d,%d", &command, &control, &report) == 3)
      run_zygote(dir, command, control, report);
  }
};
::testing::Environment *const zygote_environment = ::testing::AddGlobalTestEnvironment(new ZygoteEnvironment);

// ---- the test's side

class Zygote {
 public:
  explicit Zygote(const std::string &dir) {
    int command[2], control[2], report[2];
    if (::pipe(command) != 0 || ::pipe(control) != 0 || ::pipe(report) != 0)
      throw std::runtime_error("pipe failed");
    for (int fd : {command[1], control[0], report[0]}) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(report[0], F_SETFL, O_NONBLOCK);
    // Everything exec needs is made before fork: this process has threads, so the child may
    // only make async-signal-safe calls until exec.
    std::vector<std::string> env_strings;
    for (char **e = environ; *e; ++e)
      if (std::strncmp(*e, "KILN_CRASH_SAVER_", 17) != 0 && std::strncmp(*e, "OMP_NUM_THREADS=", 16) != 0)
        env_strings.push_back(*e);
    env_strings.push_back(std::string(kChildDirEnv) + "=" + dir);
    env_strings.push_back(str_cat(kChildFdEnv, "=", command[0], ",", control[1], ",", report[1]));
    env_strings.push_back("OMP_NUM_THREADS=1");
    std::vector<char *> envp;
    for (std::string &e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    // A filter with a test in it: gtest sets up the environments (where the zygote runs) only
    // when it has tests to run.
    std::string exe = "/proc/self/exe", filter = "--gtest_filter=CheckpointCrashTest.*";
    char *argv[] = {exe.data(), filter.data(), nullptr};
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);  // gtest's banner
      if (null >= 0) ::dup2(null, 1);
      ::execve(exe.c_str(), argv, envp.data());
      ::_exit(127);
    }
    ::close(command[0]);
    ::close(control[1]);
    ::close(report[1]);
    command_ = command[1];
    control_ = control[0];
    report_ = report[0];
  }
  ~Zygote() {
    if (saver_ > 0) kill_saver(saver_);  // a test that failed half way
    ::close(command_);                   // end of file: the zygote exits
    int status = 0;
    ::waitpid(pid_, &status, 0);
    ::close(control_);
    ::close(report_);
  }
  Zygote(const Zygote &) = delete;
  Zygote &operator=(const Zygote &) = delete;

  // Starts a saver; its pid, or -1.
  pid_t fork_saver() {
    char stale[64];
    while (::read(report_, stale, sizeof stale) > 0) {  // from the saver before
    }
    int32_t pid = -1;
    if (!write_all(command_, "f", 1) || !read_control(&pid)) return -1;
    saver_ = pid;
    return pid;
  }
  // The saver's next report ('r', 's'), or 0 when it ended or after timeout.
  char next_report(std::chrono::milliseconds timeout) {
    pollfd p[2] = {{report_, POLLIN, 0}, {control_, POLLIN, 0}};
    if (::poll(p, 2, static_cast<int>(timeout.count())) <= 0 || !(p[0].revents & POLLIN)) return 0;
    char b = 0;
    return ::read(report_, &b, 1) == 1 ? b : 0;
  }
  // Kills the saver and waits until it is gone; its wait status.
  int kill_saver(pid_t pid) {
    ::kill(pid, SIGKILL);
    int32_t status = -1;
    read_control(&status);
    saver_ = -1;
    return status;
  }

 private:
  bool read_control(int32_t *v) {
    pollfd p{control_, POLLIN, 0};
    return ::poll(&p, 1, 60000) == 1 && ::read(control_, v, sizeof *v) == sizeof *v;
  }

  pid_t pid_ = -1, saver_ = -1;
  int command_ = -1, control_ = -1, report_ = -1;
};

bool ends_with(const std::string &s, const std::string &tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "ckpt-<n>" -> n, or -1.
int64_t checkpoint_number(const std::string &prefix_name) {
  if (prefix_name.rfind("ckpt-", 0) != 0 || prefix_name.size() == 5) return -1;
  int64_t n = 0;
  for (size_t i = 5; i < prefix_name.size(); ++i) {
    if (prefix_name[i] < '0' || prefix_name[i] > '9') return -1;
    n = n * 10 + (prefix_name[i] - '0');
  }
  return n;
}

// A file's identity: a checkpoint saved again under its name gets new files (renamed over).
std::pair<uint64_t, uint64_t> file_id(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {0, 0};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

struct Verifier {
  layers::LayerPtr model = make_model();
  std::shared_ptr<Checkpoint> ckpt = std::make_shared<Checkpoint>(
      std::vector<std::pair<std::string, TrackablePtr>>{{"model", make_trackable(model)}});
  uint64_t data_size = 0;  // of a complete data file, once one is seen
  // Checkpoints already loaded, by the identity of their files (and of those of the bundle a
  // save over them moved aside): each is loaded once.
  std::set<std::vector<std::pair<uint64_t, uint64_t>>> loaded;

  // load(), unless these very files loaded before.
  std::string load_once(const std::string &prefix, int64_t n) {
    const std::string previous = io::previous_bundle_prefix(prefix);
    const std::vector<std::pair<uint64_t, uint64_t>> id = {
        file_id(prefix + ".index"), file_id(prefix + ".data-00000-of-00001"), file_id(previous + ".index"),
        file_id(previous + ".data-00000-of-00001")};
    if (loaded.count(id)) return "";
    std::string problem = load(prefix, n);
    if (problem.empty()) loaded.insert(id);
    return problem;
  }

  // Loads prefix into the model: "" when it holds generation n of its name, else what is wrong.
  std::string load(const std::string &prefix, int64_t n) {
    try {
      ckpt->read(prefix).assert_consumed();
    } catch (const Error &e) {
      return str_cat("'", prefix, "' does not load: ", e.what());
    }
    if (ckpt->save_counter() != n) return str_cat("'", prefix, "' has save_counter ", ckpt->save_counter());
    const std::string diff = check_generation(model, n);
    return diff.empty() ? "" : str_cat("'", prefix, "': ", diff);
  }
};

// The checks after a kill; returns the latest generation (0 before the first save). Adds the
// temporaries found to *temporaries.
int64_t check_directory(Verifier *v, const std::string &dir, int64_t previous,
                        std::set<std::string> *temporaries) {
  const std::string latest = io::latest_checkpoint(dir);
  if (latest.empty()) {
    EXPECT_EQ(previous, 0) << "after generation " << previous << " was saved, no checkpoint is found";
  }
  int64_t generation = 0;
  if (!latest.empty()) {
    generation = checkpoint_number(io::base_name(latest));
    EXPECT_EQ(io::dir_name(latest), dir);
    EXPECT_GE(generation, previous) << "the latest checkpoint went back from ckpt-" << previous << " to "
                                    << latest;
    EXPECT_EQ(v->load(latest, generation), "");
    // Restoring from the directory, as load_weights / restore(dir) do, finds the same one.
    EXPECT_EQ(v->ckpt->restore(dir).path(), latest);
    v->data_size = io::file_size(latest + ".data-00000-of-00001");
  }
  std::set<std::string> data_only;  // prefixes whose data file has no index
  for (const auto &entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string path = entry.path().string();
    if (name.find(".tempstate") != std::string::npos) {
      temporaries->insert(name);  // a save's temporary: the next save ignores it, as TensorFlow's does
      continue;
    }
    if (name == io::kCheckpointStateFile) {
      EXPECT_NO_THROW(io::get_checkpoint_state(dir)) << "the state file is damaged";
      continue;
    }
    const std::string aside = io::previous_bundle_prefix("");  // the suffix of such a prefix
    if (const size_t at = name.find(aside + "."); at != std::string::npos) {
      // A save over ckpt-n moved its bundle aside and was killed: ckpt-n must still load (the
      // previous bundle while ckpt-n has no index of its own).
      const std::string prefix = io::join_path(dir, name.substr(0, at));
      const std::string rest = name.substr(at + aside.size());
      const int64_t n = checkpoint_number(io::base_name(prefix));
      EXPECT_GT(n, 0) << "unexpected file " << name;
      EXPECT_TRUE(rest == ".index" || rest == ".data-00000-of-00001") << "unexpected file " << name;
      if (n > 0 && rest == ".index") {
        EXPECT_EQ(v->load_once(prefix, n), "") << "a checkpoint whose bundle was moved aside does not load";
      }
      continue;
    }
    if (ends_with(name, ".index")) {
      const std::string prefix = path.substr(0, path.size() - 6);
      const int64_t n = checkpoint_number(io::base_name(prefix));
      EXPECT_GT(n, 0) << "unexpected file " << name;
      if (n > 0) {
        EXPECT_EQ(v->load_once(prefix, n), "") << "a checkpoint with an index is incomplete";
      }
      continue;
    }
    if (ends_with(name, ".data-00000-of-00001")) {
      const std::string prefix = path.substr(0, path.size() - 20);
      EXPECT_GT(checkpoint_number(io::base_name(prefix)), 0) << "unexpected file " << name;
      if (!io::file_exists(prefix + ".index")) data_only.insert(prefix);
      continue;
    }
    ADD_FAILURE() << "unexpected file " << name;
  }
  for (const std::string &prefix : data_only) {
    if (v->data_size == 0) continue;
    EXPECT_EQ(io::file_size(prefix + ".data-00000-of-00001"), v->data_size)
        << "a data file under its final name is not complete: " << prefix;
  }
  return generation;
}

TEST(CheckpointCrashTest, SigkillDuringSavesLeavesTheLatestCheckpointLoadable) {
  char tmpl[] = "/tmp/kiln_crash_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  struct RemoveAtExit {  // declared before the zygote: removed after its saver is gone
    std::string path;
    ~RemoveAtExit() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } remove_dir{dir};
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(str_cat("random seed ", seed));
  std::mt19937 rng(seed);
  Verifier verifier;
  int64_t generation = 0;
  std::set<std::string> temporaries;
  int kills_mid_write = 0;  // kills that left a new temporary: they fell while a file was written
  std::chrono::duration<double, std::milli> save_time{0};
  const auto started = std::chrono::steady_clock::now();

  int kills = 0;
  Zygote zygote(dir);
  for (; kills < kKills && !::testing::Test::HasFailure(); ++kills) {
    const pid_t saver = zygote.fork_saver();
    ASSERT_GT(saver, 0) << "the saver process did not start";
    ASSERT_EQ(zygote.next_report(std::chrono::seconds(60)), 'r') << "the saver did not start; see its stderr";
    if (kills == 0) {
      // Calibration: time three whole saves, then kill in the middle of the fourth.
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 3; ++i) ASSERT_EQ(zygote.next_report(std::chrono::seconds(60)), 's');
      save_time = (std::chrono::steady_clock::now() - t0) / 3;
      std::this_thread::sleep_for(save_time / 2);
    } else {
      // Anywhere in the first two saves (and the restore before them, when the delay is short).
      std::uniform_real_distribution<double> delay(0.0, 2.0 * save_time.count());
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(delay(rng)));
    }
    const int status = zygote.kill_saver(saver);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the saver ended on its own (wait status " << status << "); see its stderr";
    const size_t temps_before = temporaries.size();
    generation = check_directory(&verifier, dir, generation, &temporaries);
    if (temporaries.size() > temps_before) ++kills_mid_write;
  }
  EXPECT_GT(generation, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "[ crash    ] %d kills in %.1f s (%d while a file was being written), a save takes %.1f ms; "
      "the latest checkpoint is ckpt-%lld\n",
      kills, seconds, kills_mid_write, save_time.count(), static_cast<long long>(generation));
}

}  // namespace
}  // namespace kiln::train
