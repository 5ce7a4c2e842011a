#include "replication/peer_board.h"

#include "recsync/clock.h"

namespace recsync::replication {

const char* peer_state_name(PeerState s) {
  switch (s) {
    case PeerState::kConnecting:
      return "connecting";
    case PeerState::kConnected:
      return "connected";
    case PeerState::kBackoff:
      return "backoff";
    case PeerState::kRefused:
      return "refused";
  }
  return "?";
}

PeerBoard::PeerBoard(Env* env, const std::vector<PeerConfig>& peers) : env_(env), cfg_(peers) {
  for (const PeerConfig& p : peers) {
    PeerStatus& s = peers_.emplace_back();
    s.name = p.name;
    s.address = p.address;
    s.fingerprint = p.fingerprint;
  }
}

std::optional<size_t> PeerBoard::find_fingerprint(const std::string& fp) const {
  for (size_t i = 0; i < cfg_.size(); ++i)
    if (cfg_[i].fingerprint == fp) return i;
  return std::nullopt;
}

void PeerBoard::set_state(size_t i, PeerState s, const std::string& err) {
  const int64_t now = to_ms(env_->now());
  std::lock_guard<std::mutex> l(mu_);
  PeerStatus& p = peers_[i];
  p.state = s;
  if (!err.empty()) p.last_error = err;
  p.connected_since_ms = s == PeerState::kConnected ? now : 0;
}

void PeerBoard::clear_error(size_t i) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].last_error.clear();
}

namespace {
std::optional<InFlight>& lane_of(PeerStatus& p, bool backfill) {
  return backfill ? p.backfill_in_flight : p.in_flight;
}
}  // namespace

void PeerBoard::add_sent(size_t i, bool backfill, uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].sent_bytes += n;
  if (auto& f = lane_of(peers_[i], backfill)) f->sent_bytes += n;
}

uint64_t PeerBoard::sent_bytes(size_t i) const {
  std::lock_guard<std::mutex> l(mu_);
  return peers_[i].sent_bytes;
}

void PeerBoard::add_received(size_t i, uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].received_bytes += n;
}

void PeerBoard::begin_transfer(size_t i, bool backfill, const std::string& rel, uint64_t size) {
  const int64_t now = to_ms(env_->now());
  std::lock_guard<std::mutex> l(mu_);
  lane_of(peers_[i], backfill) = InFlight{rel, size, 0, 0, now};
}

void PeerBoard::transfer_read(size_t i, bool backfill, uint64_t read_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto& f = lane_of(peers_[i], backfill)) f->read_bytes = read_bytes;
}

void PeerBoard::end_transfer(size_t i, bool backfill) {
  std::lock_guard<std::mutex> l(mu_);
  lane_of(peers_[i], backfill).reset();
}

void PeerBoard::set_clock(size_t i, double offset_ms, double rtt_ms) {
  const int64_t now = to_ms(env_->now());
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].clock_offset_ms = offset_ms;
  peers_[i].clock_measured_ms = now;
  peers_[i].rtt_ms = rtt_ms;
}

void PeerBoard::conflict(size_t i) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].conflicts++;
}

void PeerBoard::acked(size_t i) {
  const int64_t now = to_ms(env_->now());
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].acked_files++;
  peers_[i].last_ack_ms = now;
}

void PeerBoard::received_file(size_t i) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].received_files++;
}

void PeerBoard::failed(size_t i, const std::string& why) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].failed_transfers++;
  peers_[i].last_error = why;
}

void PeerBoard::set_rtt(size_t i, double ms) {
  std::lock_guard<std::mutex> l(mu_);
  peers_[i].rtt_ms = ms;
}

void PeerBoard::refused_link(const std::string& what) {
  const int64_t now = to_ms(env_->now());
  std::lock_guard<std::mutex> l(mu_);
  refused_ = {what, now};
}

std::vector<PeerStatus> PeerBoard::peers() const {
  std::lock_guard<std::mutex> l(mu_);
  return peers_;
}

RefusedLink PeerBoard::last_refused() const {
  std::lock_guard<std::mutex> l(mu_);
  return refused_;
}

}  // namespace recsync::replication
