#pragma once
// Parsing and printing of the durations, sizes and rates used in the config
// file and the CLI. Pure functions, no locale.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "recsync/status.h"

namespace recsync {

using Millis = std::chrono::milliseconds;

// "1500ms", "1s", "2m", "3h", "15d", "1h30m" (sum of parts) or "0".
// A bare number other than 0 is an error (the unit must be explicit).
Result<Millis> parse_duration(std::string_view s);
// Bytes: "0", "512B", "10KB" (1000), "10KiB" (1024), MB/MiB, GB/GiB, TB/TiB.
// Decimal fractions are allowed ("1.5GB"). A bare number means bytes.
Result<uint64_t> parse_size(std::string_view s);
// A rate: a size with an optional "/s" suffix ("50MB/s"); "0" means no cap.
Result<uint64_t> parse_rate(std::string_view s);
// "90s" -> "1m30s"; used in status output.
std::string format_duration(Millis d);
// 1536 -> "1.5 KiB"; 0 -> "0 B".
std::string format_bytes(uint64_t n);
// A cap or rate in decimal units, as rates are usually written ("50MB/s"):
// 50000000 -> "50 MB/s", 10485760 -> "10.5 MB/s" (tenths, rounded half up);
// 0 -> "unlimited" (0 is "no cap" wherever a cap is configured).
std::string format_rate(uint64_t bps);

}  // namespace recsync
