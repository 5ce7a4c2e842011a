// recsync-loadgen: a simulated FreeSWITCH record_session.
//
// Each call creates <dir>[/YYYY/MM/DD]/<uuid>.wav, writes a 44-byte WAV header
// placeholder (RIFF sizes 0), appends stereo 16-bit 8 kHz PCM (32,000 bytes
// per second of audio) in 20 ms frames (640 bytes) as the call runs, and at
// hang-up seeks back, rewrites the header with the real sizes and closes the
// file. Audio content and uuids are pseudo-random from --seed, so a run is
// reproducible. With --manifest, one JSON line per closed call records the
// final size and xxh128 hash (the ground truth for end-to-end tests).
//
// One thread runs an event loop over the open calls: every tick it writes
// each call's frames that are due by now. At --speed 1 a tick is 20 ms and a
// call grows by one frame per tick; at higher speeds (or --speed 0, as fast
// as possible) up to kMaxFramesPerWrite frames go out in one write().
//
// Exit codes: 0 all calls closed; 1 a call failed (I/O error); 2 bad usage;
// 3 --max-seconds reached before all calls closed.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "recsync/hash.h"
#include "recsync/status.h"

namespace recsync::loadgen {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitCallFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeLimit = 3;

constexpr uint32_t kSampleRate = 8000;
constexpr uint16_t kChannels = 2;
constexpr uint16_t kBitsPerSample = 16;
constexpr uint64_t kBytesPerSecond = kSampleRate * kChannels * kBitsPerSample / 8;  // 32,000
constexpr uint64_t kFrameBytes = kBytesPerSecond / 50;                              // 20 ms: 640
constexpr uint64_t kHeaderBytes = 44;
constexpr uint64_t kMaxFramesPerWrite = 50;  // 1 s of audio per write at most
constexpr auto kKeepOpenPoll = std::chrono::milliseconds(100);

using Clock = std::chrono::steady_clock;

struct Options {
  std::string dir;
  uint64_t calls = 10;
  uint64_t concurrency = 10;
  double min_duration = 5;
  double max_duration = 30;
  double speed = 1;
  uint64_t seed = 1;
  bool subdirs = false;
  std::string manifest;
  std::string keep_open_until;
  double max_seconds = 600;
};

// splitmix64: seeds and the master stream (uuids, durations).
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xorshift64*: the per-call audio stream (cheap, deterministic).
struct AudioRng {
  uint64_t s;
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dULL;
  }
  void fill(unsigned char* p, size_t n) {  // n is a multiple of 8
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v = next();
      std::memcpy(p + i, &v, 8);
    }
  }
};

std::string make_uuid(uint64_t& master) {
  uint64_t hi = splitmix64(master), lo = splitmix64(master);
  hi = (hi & ~0xf000ULL) | 0x4000ULL;        // version 4
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf,
                "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64, hi >> 32,
                (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48, lo & uint64_t{0xffffffffffff});
  return buf;
}

void put_le32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_le16(unsigned char* p, uint16_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

// A canonical 44-byte PCM WAV header; data_bytes 0 gives the placeholder
// record_session writes at open (RIFF and data sizes both 0).
void wav_header(unsigned char* h, uint32_t data_bytes, bool placeholder) {
  std::memcpy(h, "RIFF", 4);
  put_le32(h + 4, placeholder ? 0 : data_bytes + 36);
  std::memcpy(h + 8, "WAVEfmt ", 8);
  put_le32(h + 16, 16);
  put_le16(h + 20, 1);  // PCM
  put_le16(h + 22, kChannels);
  put_le32(h + 24, kSampleRate);
  put_le32(h + 28, static_cast<uint32_t>(kBytesPerSecond));
  put_le16(h + 32, kChannels * kBitsPerSample / 8);
  put_le16(h + 34, kBitsPerSample);
  std::memcpy(h + 36, "data", 4);
  put_le32(h + 40, placeholder ? 0 : data_bytes);
}

struct Call {
  std::string rel;
  std::string path;
  int fd = -1;
  uint64_t total_data = 0;  // bytes of audio, a multiple of kFrameBytes
  uint64_t written = 0;     // audio bytes written so far
  Clock::time_point start;
  AudioRng rng{};
  std::unique_ptr<Hasher> hasher;  // over the final header, then the audio
};

Status write_all(int fd, const unsigned char* p, size_t n, int64_t offset) {
  while (n > 0) {
    ssize_t w = offset >= 0 ? ::pwrite(fd, p, n, offset) : ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(errno, "write");
    }
    p += w;
    n -= static_cast<size_t>(w);
    if (offset >= 0) offset += w;
  }
  return Status::ok();
}

class Generator {
 public:
  explicit Generator(Options o) : o_(std::move(o)), master_(o_.seed) {}

  int run() {
    raise_fd_limit();
    if (!o_.manifest.empty()) {
      manifest_ = std::fopen(o_.manifest.c_str(), "a");
      if (!manifest_) {
        std::fprintf(stderr, "loadgen: cannot open manifest %s: %s\n", o_.manifest.c_str(),
                     std::strerror(errno));
        return kExitUsage;
      }
    }
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o_.max_seconds));
    // Wall time per tick: one frame at speed <= 1, at least 1 ms otherwise.
    Clock::duration tick = Clock::duration::zero();
    if (o_.speed > 0) {
      tick = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(0.020 / o_.speed));
      tick = std::max<Clock::duration>(tick, std::chrono::milliseconds(1));
    }
    auto next_tick = t0;
    bool timed_out = false;
    while (started_ < o_.calls || !open_.empty()) {
      auto now = Clock::now();
      if (now >= deadline) {
        timed_out = true;
        break;
      }
      while (started_ < o_.calls && open_.size() < o_.concurrency) start_call(now);
      bool progressed = step(now);
      if (tick == Clock::duration::zero()) {
        // As fast as possible, but do not spin while calls are only held open.
        if (!progressed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } else {
        next_tick += tick;
        now = Clock::now();
        if (next_tick < now) next_tick = now;  // behind: do not try to catch up ticks
        std::this_thread::sleep_until(std::min(next_tick, deadline));
      }
    }
    for (auto& c : open_) {  // only when the time limit hit: leave the files as they are
      if (c.fd >= 0) ::close(c.fd);
    }
    if (manifest_) std::fclose(manifest_);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("loadgen: %" PRIu64 " calls, %" PRIu64 " bytes, %.2f s%s%s\n", closed_, bytes_,
                secs, failed_ ? " (some calls failed)" : "",
                timed_out ? " (max-seconds reached)" : "");
    std::fflush(stdout);
    if (timed_out) return kExitTimeLimit;
    return failed_ ? kExitCallFailed : kExitOk;
  }

 private:
  static void raise_fd_limit() {
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
  }

  void start_call(Clock::time_point now) {
    ++started_;
    Call c;
    std::string uuid = make_uuid(master_);
    double u = static_cast<double>(splitmix64(master_) >> 11) * 0x1.0p-53;  // [0,1)
    double secs = o_.min_duration + u * (o_.max_duration - o_.min_duration);
    c.total_data = static_cast<uint64_t>(secs * 50.0 + 0.5) * kFrameBytes;
    c.rng.s = splitmix64(master_) | 1;  // xorshift state must be non-zero
    std::string sub;
    if (o_.subdirs) {
      std::time_t t = std::time(nullptr);
      std::tm tm{};
      ::localtime_r(&t, &tm);
      char buf[16];
      std::strftime(buf, sizeof buf, "%Y/%m/%d/", &tm);
      sub = buf;
      std::error_code ec;
      std::filesystem::create_directories(o_.dir + "/" + sub, ec);
      if (ec) {
        fail(c, "mkdir " + o_.dir + "/" + sub + ": " + ec.message());
        return;
      }
    }
    c.rel = sub + uuid + ".wav";
    c.path = o_.dir + "/" + c.rel;
    c.fd = ::open(c.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (c.fd < 0) {
      fail(c, Status::from_errno(errno, "open " + c.path).to_string());
      return;
    }
    unsigned char h[kHeaderBytes];
    wav_header(h, 0, /*placeholder=*/true);
    Status s = write_all(c.fd, h, sizeof h, -1);
    if (!s.is_ok()) {
      fail(c, s.with_context(c.path).to_string());
      return;
    }
    wav_header(h, static_cast<uint32_t>(c.total_data), /*placeholder=*/false);
    c.hasher = std::make_unique<Hasher>();
    c.hasher->update(h, sizeof h);
    c.start = now;
    open_.push_back(std::move(c));
  }

  // Writes every open call's due frames; closes calls whose audio is done.
  // Returns whether anything was written or closed.
  bool step(Clock::time_point now) {
    bool progressed = false;
    bool release = o_.keep_open_until.empty() || keep_open_released(now);
    for (size_t i = 0; i < open_.size();) {
      Call& c = open_[i];
      uint64_t due = c.total_data;
      if (o_.speed > 0) {
        double audio_secs = std::chrono::duration<double>(now - c.start).count() * o_.speed;
        due = std::min<uint64_t>(c.total_data,
                                 static_cast<uint64_t>(audio_secs * 50.0) * kFrameBytes);
      }
      due = std::min(due, c.written + kMaxFramesPerWrite * kFrameBytes);
      bool ok = true;
      if (due > c.written) {
        size_t n = static_cast<size_t>(due - c.written);
        c.rng.fill(buf_, n);
        Status s = write_all(c.fd, buf_, n, -1);
        if (!s.is_ok()) {
          fail(c, s.with_context(c.path).to_string());
          ok = false;
        } else {
          c.hasher->update(buf_, n);
          c.written = due;
        }
        progressed = true;
      }
      if (ok && c.written == c.total_data && release) {
        ok = finish(c);
        progressed = true;
      }
      if (!ok || c.fd < 0) {
        open_[i] = std::move(open_.back());
        open_.pop_back();
      } else {
        ++i;
      }
    }
    return progressed;
  }

  bool keep_open_released(Clock::time_point now) {
    if (released_) return true;
    if (now - last_keep_open_check_ < kKeepOpenPoll) return false;
    last_keep_open_check_ = now;
    struct stat st;
    released_ = ::stat(o_.keep_open_until.c_str(), &st) == 0;
    return released_;
  }

  // Hang-up: the real header, close, manifest line. Returns false on failure
  // (already reported). Sets c.fd to -1 either way.
  bool finish(Call& c) {
    unsigned char h[kHeaderBytes];
    wav_header(h, static_cast<uint32_t>(c.total_data), /*placeholder=*/false);
    Status s = write_all(c.fd, h, sizeof h, 0);
    if (!s.is_ok()) {
      fail(c, s.with_context(c.path).to_string());
      return false;
    }
    if (::close(c.fd) != 0) {
      c.fd = -1;
      fail(c, Status::from_errno(errno, "close " + c.path).to_string());
      return false;
    }
    c.fd = -1;
    uint64_t size = kHeaderBytes + c.total_data;
    ++closed_;
    bytes_ += size;
    if (manifest_) {
      int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
      nlohmann::json j = {
          {"path", c.rel}, {"size", size}, {"hash", c.hasher->hex()}, {"closed_at_ms", ms}};
      std::fprintf(manifest_, "%s\n", j.dump().c_str());
      std::fflush(manifest_);
    }
    return true;
  }

  void fail(Call& c, const std::string& why) {
    std::fprintf(stderr, "loadgen: call failed: %s\n", why.c_str());
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    ++failed_;
  }

  Options o_;
  uint64_t master_;
  std::vector<Call> open_;
  uint64_t started_ = 0, closed_ = 0, failed_ = 0, bytes_ = 0;
  std::FILE* manifest_ = nullptr;
  bool released_ = false;
  Clock::time_point last_keep_open_check_{};
  alignas(8) unsigned char buf_[kMaxFramesPerWrite * kFrameBytes];
};

int real_main(int argc, char** argv) {
  Options o;
  CLI::App app{"recsync-loadgen: simulated FreeSWITCH record_session"};
  app.add_option("--dir", o.dir, "spool folder to record into")->required();
  app.add_option("--calls", o.calls, "number of calls")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "calls open at once")->capture_default_str();
  app.add_option("--min-duration", o.min_duration, "shortest call, seconds of audio")
      ->capture_default_str();
  app.add_option("--max-duration", o.max_duration, "longest call, seconds of audio")
      ->capture_default_str();
  app.add_option("--speed", o.speed, "audio seconds per wall second; 0 = as fast as possible")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "PRNG seed (uuids, durations, audio)")->capture_default_str();
  app.add_flag("--subdirs", o.subdirs, "record into YYYY/MM/DD subfolders");
  app.add_option("--manifest", o.manifest, "append one JSON line per closed call");
  app.add_option("--keep-open-until", o.keep_open_until,
                 "finished calls stay open until this file exists");
  app.add_option("--max-seconds", o.max_seconds, "hard wall-time bound")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (o.concurrency == 0 || o.min_duration < 0 || o.max_duration < o.min_duration || o.speed < 0 ||
      o.max_seconds <= 0 || o.max_duration > 3600 * 24) {
    std::fprintf(stderr,
                 "loadgen: need concurrency >= 1, 0 <= min-duration <= max-duration <= 86400, "
                 "speed >= 0, max-seconds > 0\n");
    return kExitUsage;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) {
    std::fprintf(stderr, "loadgen: cannot create %s: %s\n", o.dir.c_str(), ec.message().c_str());
    return kExitUsage;
  }
  return Generator(std::move(o)).run();
}

}  // namespace
}  // namespace recsync::loadgen

int main(int argc, char** argv) { return recsync::loadgen::real_main(argc, argv); }
