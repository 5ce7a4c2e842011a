#include "replication/repair_requests.h"

namespace recsync::replication {

void RepairRequests::set_peers(std::vector<std::string> peers) {
  std::lock_guard<std::mutex> l(mu_);
  peers_ = std::move(peers);
}

void RepairRequests::request(const RepairRef& r) {
  std::lock_guard<std::mutex> l(mu_);
  for (const std::string& p : peers_) todo_[p][r.key()] = r;
}

void RepairRequests::drop(const RepairRef& r) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [peer, m] : todo_) m.erase(r.key());
  answers_.erase(r.key());
}

std::vector<RepairRef> RepairRequests::take(const std::string& peer, size_t max) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<RepairRef> out;
  auto it = todo_.find(peer);
  if (it == todo_.end()) return out;
  auto& m = it->second;
  while (!m.empty() && out.size() < max) {
    out.push_back(std::move(m.begin()->second));
    m.erase(m.begin());
  }
  return out;
}

void RepairRequests::answered(const std::string& peer, const RepairRef& r,
                              const std::string& result) {
  std::lock_guard<std::mutex> l(mu_);
  answers_[r.key()][peer] = result;
}

std::map<std::string, std::string> RepairRequests::answers(const RepairRef& r) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = answers_.find(r.key());
  return it == answers_.end() ? std::map<std::string, std::string>{} : it->second;
}

size_t RepairRequests::waiting() const {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = 0;
  for (auto& [p, m] : todo_) n += m.size();
  return n;
}

}  // namespace recsync::replication
