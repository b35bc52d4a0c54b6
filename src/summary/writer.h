// TensorFlow 2's summary file writer (tf.summary.create_file_writer): events go to
// <logdir>/events.out.tfevents.<10-digit secs>.<host>.<pid>.<n><suffix> as TFRecords
// (FORMATS.md §1), the first one being file_version "brain.Event:2". Callers serialize and frame
// their events on their own thread and queue the bytes; a background thread writes them, so a
// slow disk does not stall training. The queue is bounded: a producer that gets max_queue * 16
// records ahead of the disk waits. Every write(2) holds whole records, so the records already
// written stay valid if the process dies (a write cut short leaves one truncated last record,
// which readers report as such).
//
// Like TensorFlow, each thread has a stack of default writers (as_default) and a default step
// (set_step), which may be bound to a variable such as an optimizer's iterations.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "autodiff/variable.h"

namespace kiln::tbproto {
class Event;
}

namespace kiln::summary {

// tf.summary.create_file_writer's arguments and defaults.
struct WriterOptions {
  int64_t max_queue = 10;         // records held before the writer thread writes them
  int64_t flush_millis = 120000;  // the longest a queued record waits
  std::string filename_suffix = ".v2";
};

class SummaryWriter {
 public:
  // Creates logdir and its parents, and the event file with its file_version record.
  // A max_queue outside 1 to 2^31 - 1 (an int32, as TF's) or a flush_millis < 1 is InvalidArgument;
  // an unwritable logdir FailedPrecondition.
  static std::shared_ptr<SummaryWriter> create(const std::string &logdir, const WriterOptions &options = {});
  ~SummaryWriter();  // closes (flushing everything queued)
  SummaryWriter(const SummaryWriter &) = delete;
  SummaryWriter &operator=(const SummaryWriter &) = delete;

  const std::string &logdir() const;
  const std::string &path() const;  // the event file

  // Serializes, frames and queues one event (wall_time is set when it is 0). After close:
  // FailedPrecondition. A write error on the writer thread is reported by the next call.
  void write(tbproto::Event event);
  // Blocks until every record queued so far is in the file (written and flushed to the OS).
  void flush();
  // Flushes, stops the thread and closes the file; idempotent. Later writes are errors.
  void close();
  bool closed() const;
  // Records written to the file so far (file_version included).
  int64_t records_written() const;

  struct Impl;

 private:
  explicit SummaryWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using WriterPtr = std::shared_ptr<SummaryWriter>;

// ---- Per-thread defaults (tf.summary's context) ----
// The thread's default writer: the top of its stack, or null.
WriterPtr default_writer();
// Pushes writer (may be null: "no writer", as TF's create_noop_writer) on this thread's stack,
// and with a step also sets the default step; pop_default removes the top and restores the
// default step as it was before that push (FailedPrecondition when the stack is empty).
void push_default(WriterPtr writer, std::optional<int64_t> step = std::nullopt);
void pop_default();

// writer.as_default(step): push_default in the constructor, pop_default in the destructor.
// Use on one thread.
class DefaultScope {
 public:
  explicit DefaultScope(WriterPtr writer, std::optional<int64_t> step = std::nullopt) {
    push_default(std::move(writer), step);
  }
  ~DefaultScope();
  DefaultScope(const DefaultScope &) = delete;
  DefaultScope &operator=(const DefaultScope &) = delete;
};

// tf.summary.experimental.set_step / get_step, per thread. A bound variable (an int64 scalar
// such as optimizer.iterations) is read at each summary call.
void set_step(std::optional<int64_t> step);
void set_step(const std::shared_ptr<autodiff::Variable> &variable);
std::optional<int64_t> get_step();

// tf.summary.record_if: when false, summary calls on this thread write nothing (and return false).
void set_recording(bool on);
bool recording();

}  // namespace kiln::summary
