#include "summary/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "event.pb.h"
#include "io/file_util.h"
#include "io/record.h"

namespace kiln::summary {

namespace {

using Clock = std::chrono::steady_clock;

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// TF's ops.uid(): a process-wide counter, so two writers created in the same second differ.
std::atomic<int64_t> g_writer_uid{0};

}  // namespace

struct SummaryWriter::Impl {
  std::string logdir;
  std::string path;
  WriterOptions options;
  int fd = -1;

  std::mutex mu;
  std::condition_variable work_cv;  // the writer thread waits here
  std::condition_variable done_cv;  // producers and flush wait here
  std::deque<std::string> pending;  // framed records not yet handed to the file
  uint64_t queued = 0;              // records queued since creation (file_version included)
  uint64_t written = 0;             // records written
  uint64_t flush_target = 0;        // flush() wants written >= this
  Clock::time_point oldest;         // when the oldest pending record was queued
  bool closing = false;
  bool closed = false;
  std::string error;  // the writer thread's first write error
  std::thread thread;

  size_t capacity() const { return static_cast<size_t>(options.max_queue) * 16; }

  // Writes all of data, retrying short writes; false with errno set on failure.
  bool write_all(const std::string &data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    const auto flush_every = std::chrono::milliseconds(options.flush_millis);
    for (;;) {
      auto ready = [&] {
        return closing || flush_target > written ||
               pending.size() >= static_cast<size_t>(options.max_queue) ||
               (!pending.empty() && Clock::now() - oldest >= flush_every);
      };
      while (!ready()) {
        if (pending.empty())
          work_cv.wait(lock);
        else
          work_cv.wait_until(lock, oldest + flush_every);
      }
      if (pending.empty()) {
        if (closing) break;
        continue;
      }
      std::deque<std::string> batch;
      batch.swap(pending);
      lock.unlock();
      // One write(2) of whole records: a crash leaves at most the last record cut short.
      std::string buf;
      size_t total = 0;
      for (const auto &r : batch) total += r.size();
      buf.reserve(total);
      for (const auto &r : batch) buf += r;
      const bool ok = error.empty() ? write_all(buf) : false;
      const int err = errno;
      lock.lock();
      if (!ok && error.empty()) error = "summary writer: writing " + path + " failed: " + std::strerror(err);
      written += batch.size();
      done_cv.notify_all();
    }
    done_cv.notify_all();
  }

  void check_error_locked() const {
    if (!error.empty()) fail(Code::kDataLoss, error);
  }

  void enqueue(std::string framed) {
    std::unique_lock<std::mutex> lock(mu);
    if (closed || closing) fail(Code::kFailedPrecondition, "summary writer: ", path, " is closed");
    check_error_locked();
    done_cv.wait(lock, [&] { return pending.size() < capacity() || closing || !error.empty(); });
    check_error_locked();
    if (closing) fail(Code::kFailedPrecondition, "summary writer: ", path, " is closed");
    const bool first = pending.empty();
    if (first) oldest = Clock::now();
    pending.push_back(std::move(framed));
    ++queued;
    // The first record of an empty queue wakes the writer, idle without a deadline, so that it
    // waits flush_millis from now; a full queue wakes it to write at once.
    if (first || pending.size() >= static_cast<size_t>(options.max_queue)) work_cv.notify_one();
  }

  void flush() {
    std::unique_lock<std::mutex> lock(mu);
    if (closed) return;
    flush_target = std::max(flush_target, queued);
    const uint64_t target = queued;
    work_cv.notify_one();
    done_cv.wait(lock, [&] { return written >= target; });
    check_error_locked();
  }

  void close() {
    {
      std::unique_lock<std::mutex> lock(mu);
      if (closed) return;
      if (closing) {  // another thread is closing: wait until it has
        done_cv.wait(lock, [&] { return closed; });
        return;
      }
      closing = true;
      work_cv.notify_one();
    }
    if (thread.joinable()) thread.join();
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
      if (fd >= 0) {
        if (::close(fd) != 0 && error.empty())
          error = "summary writer: closing " + path + " failed: " + std::strerror(errno);
        fd = -1;
      }
    }
    done_cv.notify_all();
  }
};

SummaryWriter::SummaryWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SummaryWriter::~SummaryWriter() {
  try {
    impl_->close();
  } catch (...) {
  }
}

std::shared_ptr<SummaryWriter> SummaryWriter::create(const std::string &logdir,
                                                     const WriterOptions &options) {
  if (logdir.empty())
    fail(Code::kInvalidArgument, "create_file_writer: logdir is empty; expected a directory path");
  if (options.max_queue < 1 || options.max_queue > INT32_MAX)  // TF's is an int32
    fail(Code::kInvalidArgument, "create_file_writer: max_queue is ", options.max_queue,
         "; expected 1 to 2147483647");
  if (options.flush_millis < 1)
    fail(Code::kInvalidArgument, "create_file_writer: flush_millis is ", options.flush_millis,
         "; expected at least 1");
  if (options.filename_suffix.find('/') != std::string::npos)
    fail(Code::kInvalidArgument, "create_file_writer: filename_suffix '", options.filename_suffix,
         "' contains '/'; expected a plain file-name suffix");
  try {
    io::create_dirs(logdir);
  } catch (const Error &e) {
    fail(Code::kFailedPrecondition, "create_file_writer: cannot create log directory ", logdir, ": ",
         e.what());
  }
  auto impl = std::make_unique<Impl>();
  impl->logdir = logdir;
  impl->options = options;
  const double now = wall_seconds();
  const auto secs = static_cast<long long>(now);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%010lld", secs);
  const int64_t uid = g_writer_uid.fetch_add(1);
  impl->path = io::join_path(logdir, std::string("events.out.tfevents.") + stamp + "." + host_name() + "." +
                                         std::to_string(getpid()) + "." + std::to_string(uid) +
                                         options.filename_suffix);
  impl->fd = ::open(impl->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (impl->fd < 0)
    fail(Code::kFailedPrecondition, "create_file_writer: cannot create ", impl->path, ": ",
         std::strerror(errno));
  // The first record, written before anything else can be: TensorBoard's purge logic needs it.
  tbproto::Event first;
  first.set_wall_time(static_cast<double>(secs));
  first.set_file_version("brain.Event:2");
  first.mutable_source_metadata()->set_writer("kiln.summary.writer");
  std::string framed;
  io::record::append(framed, first.SerializeAsString());
  if (!impl->write_all(framed)) {
    const int err = errno;
    ::close(impl->fd);
    io::remove_file_quietly(impl->path);
    fail(Code::kFailedPrecondition, "create_file_writer: cannot write ", impl->path, ": ",
         std::strerror(err));
  }
  impl->queued = impl->written = 1;
  Impl *raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::shared_ptr<SummaryWriter>(new SummaryWriter(std::move(impl)));
}

const std::string &SummaryWriter::logdir() const { return impl_->logdir; }
const std::string &SummaryWriter::path() const { return impl_->path; }

void SummaryWriter::write(tbproto::Event event) {
  if (event.wall_time() == 0.0) event.set_wall_time(wall_seconds());
  // Protobuf serializes at most 2 GiB - 1 (it would give an empty string, an empty record).
  const size_t size = event.ByteSizeLong();
  if (size > static_cast<size_t>(INT32_MAX))
    fail(Code::kInvalidArgument, "summary writer: the event is ", size,
         " bytes; an event record holds less than 2 GiB (protobuf's limit)");
  std::string framed;
  io::record::append(framed, event.SerializeAsString());
  impl_->enqueue(std::move(framed));
}

void SummaryWriter::flush() { impl_->flush(); }

void SummaryWriter::close() {
  impl_->close();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->check_error_locked();
}

bool SummaryWriter::closed() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->closed || impl_->closing;
}

int64_t SummaryWriter::records_written() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int64_t>(impl_->written);
}

// ---- Per-thread defaults ----

namespace {

struct StepState {
  std::optional<int64_t> value;
  std::shared_ptr<autodiff::Variable> variable;
};

// One entry of the default-writer stack; saved_step is the step to restore when the push set one.
struct Frame {
  WriterPtr writer;
  std::optional<StepState> saved_step;
};

struct ThreadState {
  std::vector<Frame> stack;
  StepState step;
  bool recording = true;
};

ThreadState &state() {
  thread_local ThreadState s;
  return s;
}

}  // namespace

WriterPtr default_writer() {
  auto &s = state();
  return s.stack.empty() ? nullptr : s.stack.back().writer;
}

void push_default(WriterPtr writer, std::optional<int64_t> step) {
  auto &s = state();
  Frame f{std::move(writer), std::nullopt};
  if (step) {
    f.saved_step = s.step;
    s.step = StepState{step, nullptr};
  }
  s.stack.push_back(std::move(f));
}

void pop_default() {
  auto &s = state();
  if (s.stack.empty())
    fail(Code::kFailedPrecondition,
         "summary: no default writer to pop on this thread; expected a matching push");
  if (s.stack.back().saved_step) s.step = *s.stack.back().saved_step;
  s.stack.pop_back();
}

DefaultScope::~DefaultScope() {
  if (!state().stack.empty()) pop_default();
}

void set_step(std::optional<int64_t> step) {
  auto &s = state().step;
  s.value = step;
  s.variable.reset();
}

void set_step(const std::shared_ptr<autodiff::Variable> &variable) {
  if (!variable) {
    set_step(std::nullopt);
    return;
  }
  if (variable->shape().num_elements() != 1 ||
      (variable->dtype() != DType::kInt64 && variable->dtype() != DType::kInt32))
    fail(Code::kInvalidArgument, "summary.set_step: variable '", variable->name(), "' is ",
         dtype_name(variable->dtype()), variable->shape().to_string(), "; expected an int64 or int32 scalar");
  auto &s = state().step;
  s.value.reset();
  s.variable = variable;
}

std::optional<int64_t> get_step() {
  const auto &s = state().step;
  if (s.variable) {
    Tensor t = s.variable->peek();
    return t.dtype() == DType::kInt64 ? *t.data<int64_t>() : static_cast<int64_t>(*t.data<int32_t>());
  }
  return s.value;
}

void set_recording(bool on) { state().recording = on; }
bool recording() { return state().recording; }

}  // namespace kiln::summary
