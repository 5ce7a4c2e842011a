#pragma once
// Blocking client for the control socket, used by the recsync CLI.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "recsync/status.h"

namespace recsync {

// Sends one request, waits for one reply line. Errors: kNotFound (no socket),
// kIo with ECONNREFUSED (daemon not running), kRefused (permission denied, by
// the filesystem or by the daemon), kIo on timeout or a broken reply.
Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace recsync
