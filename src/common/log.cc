#include "recsync/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <mutex>

namespace recsync::log {
namespace {

std::once_flag g_once;
spdlog::sink_ptr g_sink;

// sd-daemon(3) priority prefix so journald keeps the level.
class SdPriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static const char* kPrio[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const char* p = kPrio[static_cast<int>(msg.level)];
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SdPriorityFlag>();
  }
};

void do_init() {
  g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto f = std::make_unique<spdlog::pattern_formatter>();
  if (std::getenv("JOURNAL_STREAM")) {
    f->add_flag<SdPriorityFlag>('*').set_pattern("%*%n: %v");
  } else {
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %n: %v");
  }
  g_sink->set_formatter(std::move(f));
  for (const char* c : kComponents) {
    auto l = std::make_shared<spdlog::logger>(c, g_sink);
    l->set_level(spdlog::level::info);
    spdlog::register_logger(l);
  }
}

}  // namespace

void init(const std::string& default_level) {
  std::call_once(g_once, do_init);
  set_levels(default_level, {});
}

void set_levels(const std::string& default_level, const std::map<std::string, std::string>& per) {
  std::call_once(g_once, do_init);
  for (const char* c : kComponents) {
    auto it = per.find(c);
    auto lvl = spdlog::level::from_str(it != per.end() ? it->second : default_level);
    if (auto l = spdlog::get(c)) l->set_level(lvl);
  }
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::call_once(g_once, do_init);
  if (auto l = spdlog::get(component)) return l;
  auto l = std::make_shared<spdlog::logger>(component, g_sink);
  spdlog::register_logger(l);
  return l;
}

}  // namespace recsync::log
