#include "replication/receiver.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "backfill/entry.h"
#include "peer/frame.h"
#include "peer/path_policy.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"
#include "replication/backfill_server.h"
#include "replication/wire.h"

namespace recsync::replication {

using peer::Connection;
using peer::FrameType;

void Receiver::start() {
  acceptor_ = std::thread([this] { acceptor_main(); });
}

void Receiver::shutdown_all() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& in : inbound_)
    if (in.conn) in.conn->shutdown();
}

void Receiver::join() {
  if (acceptor_.joinable()) acceptor_.join();
  // Sessions: their connections are shut down; a handshake in progress ends
  // at its timeout at the latest.
  while (true) {
    std::list<Inbound> left;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& in : inbound_)
        if (in.conn) in.conn->shutdown();
      left.splice(left.end(), inbound_);
    }
    if (left.empty()) break;
    for (auto& in : left) in.t.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void Receiver::reap_locked() {
  for (auto it = inbound_.begin(); it != inbound_.end();) {
    if (it->done) {
      it->t.join();
      it = inbound_.erase(it);
    } else {
      ++it;
    }
  }
}

void Receiver::acceptor_main() {
  name_this_thread("rs-accept");
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {ctx_.cancel.fd(), POLLIN, 0}};
    int r = ::poll(fds, ctx_.cancel.fd() >= 0 ? 2 : 1, 1000);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (ctx_.stop.stopped()) return;
      reap_locked();
    }
    if (r <= 0 || !(fds[0].revents & POLLIN)) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string remote = peer::format_sockaddr(ss);
    std::lock_guard<std::mutex> l(mu_);
    if (inbound_.size() >= static_cast<size_t>(kMaxInbound)) {
      ctx_.lg->warn("refused connection from {}: {} links open already", remote, kMaxInbound);
      ::close(fd);
      continue;
    }
    Inbound& in = inbound_.emplace_back();
    in.t = std::thread([this, pin = &in, fd, remote] { session_main(pin, fd, remote); });
  }
}

void Receiver::session_main(Inbound* in, int fd, std::string remote) {
  name_this_thread("rs-recv");
  auto c = Connection::accept(fd, ctx_.tls, kConnectTimeout, &ctx_.cancel);
  if (!c) {
    if (!ctx_.stop.stopped()) {
      ctx_.lg->warn("refused connection from {}: {}", remote, c.status().message());
      ctx_.board.refused_link(remote + ": " + c.status().message());
    }
    std::lock_guard<std::mutex> l(mu_);
    in->done = true;
    return;
  }
  std::shared_ptr<Connection> conn = std::move(c).value();
  std::optional<size_t> p = ctx_.board.find_fingerprint(conn->peer_fingerprint());
  const std::string name = p ? ctx_.board.config(*p).name : "?";
  {
    std::lock_guard<std::mutex> l(mu_);
    in->conn = conn;
    if (ctx_.stop.stopped()) {
      in->done = true;
      return;
    }
  }
  Status s = p ? session(in, *conn, *p)
               : Status::refused("fingerprint " + conn->peer_fingerprint() + " is not a peer");
  if (!ctx_.stop.stopped()) {
    if (s.code() != Status::Code::kNotFound)
      ctx_.lg->warn("link from {} ({}) ended: {}", name, remote, s.message());
    else
      ctx_.lg->info("peer {} closed its link", name);
  }
  std::lock_guard<std::mutex> l(mu_);
  in->done = true;
}

Status Receiver::hello(Inbound* in, Connection& c, size_t peer) {
  const std::string& name = ctx_.board.config(peer).name;
  auto fr = c.recv(kHelloTimeout);
  if (!fr) return fr.status().with_context("waiting for HELLO");
  if (fr->type != FrameType::kHello) return Status::corrupt("first frame is not HELLO");
  peer::HelloMsg h;
  RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &h));
  // The version the peer said, if older than ours: an older sender drops a
  // link whose answer names another version than its own.
  const uint32_t v = std::min(h.version, peer::kProtocolVersion);
  RECSYNC_RETURN_IF_ERROR(send_msg(c, FrameType::kHello, peer::HelloMsg{v, ctx_.opt.node, h.lane}));
  if (h.version < peer::kMinProtocolVersion)
    return Status::refused("peer speaks protocol version " + std::to_string(h.version) +
                           ", older than " + std::to_string(peer::kMinProtocolVersion) +
                           ": upgrade it");
  {
    std::lock_guard<std::mutex> l(mu_);
    in->peer = name;
    in->lane = h.lane;
    // A new link from the same peer and lane replaces an old one (its sender is gone).
    for (auto& o : inbound_)
      if (&o != in && o.conn && !o.done && o.peer == name && o.lane == h.lane) o.conn->shutdown();
  }
  ctx_.lg->info("peer {} connected from {}{}", name, c.remote(),
                h.lane == peer::Lane::kBackfill ? " (backfill lane)" : "");
  return Status::ok();
}

Status Receiver::session(Inbound* in, Connection& c, size_t peer) {
  RECSYNC_RETURN_IF_ERROR(hello(in, c, peer));
  Finisher fin(kWindow);
  auto last = std::chrono::steady_clock::now();
  while (true) {
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, peer, fin));
    auto f = c.recv(fin.pending() ? 20ms : kReceiverIdle);
    if (!f) {
      if (f.status().code() == Status::Code::kBusy &&
          (fin.pending() > 0 || std::chrono::steady_clock::now() - last < kReceiverIdle))
        continue;
      return f.status();
    }
    last = std::chrono::steady_clock::now();
    RECSYNC_RETURN_IF_ERROR(dispatch(c, peer, *f, fin));
  }
}

Status Receiver::dispatch(Connection& c, size_t peer, const peer::Frame& f, Finisher& fin) {
  switch (f.type) {
    case FrameType::kPing: {
      peer::PingMsg m;
      const int64_t t1 = wall_ns(ctx_.env);
      RECSYNC_RETURN_IF_ERROR(peer::decode(f.payload, &m));
      m.t1_ns = t1;
      m.t2_ns = wall_ns(ctx_.env);
      return send_msg(c, FrameType::kPong, m);
    }
    case FrameType::kHold: {
      peer::HoldMsg m;
      RECSYNC_RETURN_IF_ERROR(peer::decode(f.payload, &m));
      return receive_hold(c, peer, m);
    }
    case FrameType::kErase: {
      peer::EraseMsg m;
      RECSYNC_RETURN_IF_ERROR(peer::decode(f.payload, &m));
      return receive_erase(c, peer, m);
    }
    case FrameType::kOffer: {
      peer::OfferMsg o;
      RECSYNC_RETURN_IF_ERROR(peer::decode(f.payload, &o));
      return receive_offer(c, peer, o, fin);
    }
    case FrameType::kDigestReq:
    case FrameType::kListReq:
    case FrameType::kPull:
    case FrameType::kHoldsReq:
      return answer_backfill(ctx_, c, ctx_.board.config(peer).name, f);
    default:
      return unexpected(f, "from a sender");
  }
}

Status Receiver::lock_path(Connection& c, size_t peer, Finisher& fin, const std::string& path) {
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (busy_paths_.insert(path).second) return Status::ok();
    }
    if (ctx_.stop.stopped()) return Status::io("stopping");
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, peer, fin));
    fin.wait_done(50ms);
  }
}

void Receiver::unlock_path(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  busy_paths_.erase(path);
}

Status Receiver::send_verdicts(Connection& c, size_t peer, Finisher& fin) {
  for (auto& v : fin.take_done()) {
    if (v.status.is_ok()) {
      RECSYNC_RETURN_IF_ERROR(send_id(c, FrameType::kAck, v.id));
      continue;
    }
    ctx_.lg->warn("peer {}: transfer {} failed: {}", ctx_.board.config(peer).name, v.id,
                  v.status.message());
    RECSYNC_RETURN_IF_ERROR(send_nack(c, v.id, nack_code_for(v.status), v.status.message()));
  }
  return Status::ok();
}

Status Receiver::record(const std::string& rel, const peer::OfferMsg& o, const std::string& hash) {
  RecordingRow row =
      make_recording_row(rel, path_basename(o.path), o.size, hash, o.mtime_ns / 1'000'000,
                         ctx_.now_ms(), o.origin == ctx_.opt.node ? kLocalOrigin : o.origin);
  row.origin_rel = o.path;
  RECSYNC_RETURN_IF_ERROR(ctx_.store->recordings().upsert(row));
  return backfill_arrived(ctx_, row);
}

Status Receiver::receive_offer(Connection& c, size_t peer, const peer::OfferMsg& o, Finisher& fin) {
  const std::string& name = ctx_.board.config(peer).name;
  auto nack = [&](uint8_t code, const std::string& reason) {
    ctx_.lg->warn("peer {}: refused {}: {}", name, printable(o.path), printable(reason));
    return send_nack(c, o.id, code, reason);
  };
  const std::string hash = bytes_to_hash(o.hash);
  if (Status s = peer::validate_peer_path(o.path); !s)
    return nack(peer::NackMsg::kRefused, s.message());
  if (Status s = backfill::validate_origin(o.origin); !s)
    return nack(peer::NackMsg::kRefused, s.message());
  if (auto t = ctx_.store->tombstones().contains(
          o.path, o.origin == ctx_.opt.node ? kLocalOrigin : o.origin);
      t && *t)
    return nack(peer::NackMsg::kRefused, "erased here (tombstone): not taken again");
  RECSYNC_RETURN_IF_ERROR(lock_path(c, peer, fin, o.path));
  struct Unlock {
    Receiver* r;
    std::string path;
    bool armed = true;
    ~Unlock() {
      if (armed) r->unlock_path(path);
    }
  } unlock{this, o.path};
  const Identity id{o.origin, o.path, hash};
  if (auto at = ctx_.placer.find(id); at && !at->empty()) {
    if (Status s = record(*at, o, hash); !s) return nack(peer::NackMsg::kRetry, s.message());
    if (Status s = remove_inbound_partials(ctx_.env, ctx_.opt.archive_root, o.path); !s)
      ctx_.lg->warn("peer {}: {}: leftover partials not removed: {}", name, printable(o.path),
                    s.message());
    ctx_.lg->info("received {} from {} (already here as {})", o.path, name, *at);
    ctx_.board.received_file(peer);
    return send_id(c, FrameType::kAck, o.id);
  }
  auto in = InboundFile::begin(ctx_.env, ctx_.opt.archive_root, o.path, o.size, hash, o.mtime_ns,
                               ctx_.opt.inbound);
  if (!in) return nack(nack_code_for(in.status()), in.status().message());
  const auto t0 = std::chrono::steady_clock::now();
  Status patch_err;  // a patch error: drain the delta, then NACK
  uint64_t delta_bytes = 0;
  RECSYNC_RETURN_IF_ERROR(receive_delta(c, peer, o, **in, fin, patch_err, delta_bytes));
  if (!patch_err.is_ok()) return nack(nack_code_for(patch_err), patch_err.message());
  std::shared_ptr<InboundFile> file = std::move(*in);
  unlock.armed = false;  // the finisher job gives the path back
  fin.submit(o.id, o.path, [this, peer, name, file, hash, o, id, t0, delta_bytes]() -> Status {
    struct Unlock {
      Receiver* r;
      const std::string& path;
      ~Unlock() { r->unlock_path(path); }
    } unlock{this, o.path};
    auto r = file->finish([&](const std::string& out) -> Result<Published> {
      auto placed =
          ctx_.placer.place(out, id, [&](const Placed& p) { return record(p.rel, o, hash); });
      if (!placed) return placed.status();
      return Published{placed->rel, placed->already};
    });
    if (!r) {
      ctx_.lg->warn("peer {}: refused {}: {}", name, printable(o.path), r.status().message());
      return r.status();
    }
    ctx_.board.received_file(peer);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ctx_.lg->info("received {} from {} ({} bytes, {} delta bytes, basis {} bytes, {:.0f} ms)",
                  r->rel, name, o.size, delta_bytes, file->basis_size(), ms);
    return Status::ok();
  });
  return Status::ok();
}

Status Receiver::receive_delta(Connection& c, size_t peer, const peer::OfferMsg& o, InboundFile& in,
                               Finisher& fin, Status& patch_err, uint64_t& delta_bytes) {
  const std::vector<uint8_t>& sig = in.signature();
  const bool literal = in.basis_size() == 0;  // the sender sends plain bytes then
  for (size_t off = 0; off < sig.size(); off += kReadChunk) {
    peer::ChunkMsg m;
    m.id = o.id;
    m.data.assign(sig.begin() + off, sig.begin() + std::min(sig.size(), off + kReadChunk));
    RECSYNC_RETURN_IF_ERROR(send_msg(c, FrameType::kSignature, m));
  }
  RECSYNC_RETURN_IF_ERROR(send_id(c, FrameType::kEnd, o.id));
  while (true) {
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, peer, fin));
    auto fr = c.recv(kReceiverIdle);
    if (!fr) {
      if (patch_err.is_ok()) {
        Status k = in.abort_keep_partial();
        ctx_.lg->warn("peer {}: transfer of {} interrupted at {} of {} bytes ({}); partial kept{}",
                      ctx_.board.config(peer).name, o.path, in.bytes_written(), o.size,
                      fr.status().message(), k ? "" : ": " + k.message());
      }
      return fr.status();
    }
    if (fr->type == FrameType::kDelta) {
      uint64_t chunk_id = 0;
      std::span<const uint8_t> data;
      RECSYNC_RETURN_IF_ERROR(peer::decode_chunk_view(fr->payload, &chunk_id, &data));
      if (chunk_id != o.id)
        return Status::corrupt("DELTA for transfer " + std::to_string(chunk_id));
      delta_bytes += data.size();
      ctx_.board.add_received(peer, fr->payload.size());
      if (patch_err.is_ok()) {
        patch_err = literal ? in.feed_literal(data) : in.feed_delta(data);
        if (!patch_err.is_ok()) in.discard();
      }
      continue;
    }
    if (fr->type != FrameType::kEnd) return unexpected(*fr, "during a transfer");
    peer::IdMsg e;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &e));
    if (e.id != o.id) return Status::corrupt("END for transfer " + std::to_string(e.id));
    return Status::ok();
  }
}

Status Receiver::receive_hold(Connection& c, size_t peer, const peer::HoldMsg& h) {
  const std::string& name = ctx_.board.config(peer).name;
  Status s;
  bool any = false;
  for (unsigned char ch : h.target) any |= ch < 0x20 || ch == 0x7f;
  HoldRow row;
  row.target = h.target;
  if (h.has_hash) {
    row.hash = bytes_to_hash(h.hash);
    row.origin = h.origin == ctx_.opt.node ? kLocalOrigin : h.origin;
    row.origin_rel = h.origin_rel;
  }
  if (any) {
    s = Status::refused("control characters in the hold target");
  } else if (h.has_hash &&
             (!peer::validate_peer_path(h.origin_rel) || !backfill::validate_origin(h.origin))) {
    s = Status::refused("bad identity in the hold");
  } else if (h.op == peer::HoldMsg::kAdd) {
    row.reason = h.reason + " (copied from " + name + ")";
    row.created_ms = h.created_ms;
    s = ctx_.store->holds().add_copied(row);
    if (s) ctx_.lg->info("hold on '{}' copied from {}: {}", h.target, name, printable(h.reason));
  } else {
    s = ctx_.store->holds().release_copied(row.key()).status();
    if (s) ctx_.lg->info("hold on '{}' released by {}", h.target, name);
  }
  if (s) return send_id(c, FrameType::kAck, h.id);
  ctx_.lg->warn("peer {}: hold change on '{}' refused: {}", name, printable(h.target), s.message());
  return send_nack(c, h.id, nack_code_for(s), s.message());
}

}  // namespace recsync::replication
