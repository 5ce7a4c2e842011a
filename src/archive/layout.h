#pragma once
// Where a recording lives in the archive. Pure functions.
#include <string>

#include "recsync/env.h"
#include "recsync/names.h"  // versioned_rel_path
#include "recsync/status.h"

namespace recsync {

enum class Layout {
  kDate,  // YYYY/MM/DD/<basename>, from the recording time in UTC
  kFlat,  // the spool-relative path unchanged (the old cron's tree)
};

Result<Layout> parse_layout(const std::string& s);

// The archive-relative path for a spool-relative path recorded at rec_time.
std::string archive_rel_path(Layout layout, const std::string& spool_rel, WallTime rec_time);

}  // namespace recsync
