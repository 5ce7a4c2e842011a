#pragma once
// Names the calling thread (what top -H, ps -L, perf and /proc/PID/task/*/comm
// show): "rs-archive", "rs-send", "rs-recv", ... Linux keeps 15 bytes; longer
// names are cut. Best effort.
#include <pthread.h>

#include <string>

namespace recsync {

inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace recsync
