#include "watch/aggregator.h"

#include <algorithm>

namespace recsync {

Aggregator::Aggregator(Millis settle) : settle_ms_(std::max<int64_t>(0, settle.count())) {}

void Aggregator::set_settle(Millis settle) { settle_ms_ = std::max<int64_t>(0, settle.count()); }

void Aggregator::on_event(const std::string& rel, int64_t now_ms) {
  arm(rel, now_ms + settle_ms_, /*keep_later=*/false);
}

void Aggregator::on_found(const std::string& rel, int64_t due_ms) {
  arm(rel, due_ms, /*keep_later=*/true);
}

void Aggregator::arm(const std::string& rel, int64_t due_ms, bool keep_later) {
  auto it = by_rel_.find(std::string_view(rel));
  if (it != by_rel_.end()) {
    Index::iterator node = it->second;
    if (keep_later && node->first >= due_ms) return;
    if (node->first == due_ms) return;
    // Re-key: move the node (and its string) instead of copying the name.
    by_rel_.erase(it);
    auto nh = by_due_.extract(node);
    nh.key() = due_ms;
    Index::iterator moved = by_due_.insert(std::move(nh));
    by_rel_.emplace(std::string_view(moved->second), moved);
    return;
  }
  Index::iterator node = by_due_.emplace(due_ms, rel);
  by_rel_.emplace(std::string_view(node->second), node);
}

std::vector<std::string> Aggregator::take_due(int64_t now_ms) {
  std::vector<std::string> out;
  auto end = by_due_.upper_bound(now_ms);
  for (auto it = by_due_.begin(); it != end;) {
    by_rel_.erase(std::string_view(it->second));
    auto nh = by_due_.extract(it++);
    out.push_back(std::move(nh.mapped()));
  }
  return out;
}

std::optional<int64_t> Aggregator::next_due() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

void Aggregator::forget(const std::string& rel) {
  auto it = by_rel_.find(std::string_view(rel));
  if (it == by_rel_.end()) return;
  Index::iterator node = it->second;
  by_rel_.erase(it);
  by_due_.erase(node);
}

}  // namespace recsync
