#pragma once
// The receiver's pool for the end of received transfers (service.cc).
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "recsync/status.h"
#include "recsync/thread_name.h"

namespace recsync::replication {

// Runs the end of received transfers (InboundFile::finish: fsync, hash check,
// rename, folder fsync; then the index row) on a few threads of its own, so
// the receiving thread reads the next transfer meanwhile. The receiving
// thread sends the verdicts (take_done). The destructor waits for every job:
// a file being published is published even when the link is gone (the
// sender re-offers it and gets an ACK at once).
//
// Threads: every public call is thread-safe; jobs run on the pool's own
// threads (named rs-finish), verdicts come out in completion order.
class Finisher {
 public:
  struct Verdict {
    uint64_t id = 0;
    Status status;  // OK = ACK
  };
  explicit Finisher(size_t threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Finisher() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(uint64_t id, std::string rel, std::function<Status()> job) {
    {
      std::lock_guard<std::mutex> l(mu_);
      jobs_.push_back({id, std::move(rel), std::move(job)});
      pending_++;
    }
    cv_.notify_all();
  }
  // A job for rel is queued or running.
  bool busy(const std::string& rel) {
    std::lock_guard<std::mutex> l(mu_);
    return rels_.count(rel) > 0 ||
           std::any_of(jobs_.begin(), jobs_.end(), [&](const Job& j) { return j.rel == rel; });
  }
  // Jobs submitted whose verdict has not been taken yet: queued, running,
  // or done and waiting for take_done(). (Counting only queued and running
  // ones lost a wakeup: a job ending between the receiver's take_done() and
  // its look at pending() left the ACK unsent while the receiver slept for
  // its idle timeout and the sender waited for the ACK.)
  size_t pending() {
    std::lock_guard<std::mutex> l(mu_);
    return pending_;
  }
  std::vector<Verdict> take_done() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Verdict> out;
    out.swap(done_);
    pending_ -= out.size();
    return out;
  }
  void wait_done(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> l(mu_);
    done_cv_.wait_for(l, d, [&] { return !done_.empty(); });
  }

 private:
  struct Job {
    uint64_t id;
    std::string rel;
    std::function<Status()> fn;
  };
  void run() {
    name_this_thread("rs-finish");
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stop_, and nothing left
      Job j = std::move(jobs_.front());
      jobs_.pop_front();
      rels_.insert(j.rel);
      l.unlock();
      Status st = j.fn();
      l.lock();
      rels_.erase(rels_.find(j.rel));
      done_.push_back({j.id, std::move(st)});
      done_cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Job> jobs_;
  std::multiset<std::string> rels_;
  std::vector<Verdict> done_;
  size_t pending_ = 0;  // submitted, verdict not yet taken
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace recsync::replication
