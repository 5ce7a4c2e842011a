#include "replication/receiver.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer/frame.h"
#include "peer/path_policy.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"
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
    in->peer = p ? name : "";
    // A new link from the same peer replaces an old one (the old sender is gone).
    for (auto& o : inbound_)
      if (&o != in && o.conn && !o.done && p && o.peer == name) o.conn->shutdown();
    if (ctx_.stop.stopped()) {
      in->done = true;
      return;
    }
  }
  Status s = p ? session(*conn, *p)
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

Status Receiver::session(Connection& c, size_t peer) {
  const std::string& name = ctx_.board.config(peer).name;
  auto fr = c.recv(kHelloTimeout);
  if (!fr) return fr.status().with_context("waiting for HELLO");
  if (fr->type != FrameType::kHello) return Status::corrupt("first frame is not HELLO");
  peer::HelloMsg h;
  RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &h));
  RECSYNC_RETURN_IF_ERROR(
      send_msg(c, FrameType::kHello, peer::HelloMsg{peer::kProtocolVersion, ctx_.opt.node}));
  if (h.version != peer::kProtocolVersion)
    return Status::refused("peer speaks protocol version " + std::to_string(h.version));
  ctx_.lg->info("peer {} connected from {}", name, c.remote());
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
    switch (f->type) {
      case FrameType::kPing: {
        peer::PingMsg m;
        RECSYNC_RETURN_IF_ERROR(peer::decode(f->payload, &m));
        RECSYNC_RETURN_IF_ERROR(send_msg(c, FrameType::kPong, m));
        break;
      }
      case FrameType::kHold: {
        peer::HoldMsg m;
        RECSYNC_RETURN_IF_ERROR(peer::decode(f->payload, &m));
        RECSYNC_RETURN_IF_ERROR(receive_hold(c, peer, m));
        break;
      }
      case FrameType::kOffer: {
        peer::OfferMsg o;
        RECSYNC_RETURN_IF_ERROR(peer::decode(f->payload, &o));
        RECSYNC_RETURN_IF_ERROR(receive_offer(c, peer, o, fin));
        break;
      }
      default:
        return unexpected(*f, "from a sender");
    }
  }
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

Status Receiver::record(const InboundResult& r, const std::string& hash, int64_t mtime_ns,
                        const std::string& origin) {
  return ctx_.store->recordings().upsert(make_recording_row(
      r.rel, path_basename(r.rel), r.size, hash, mtime_ns / 1'000'000, ctx_.now_ms(), origin));
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
  // One InboundFile per path at a time: a re-offer of a path still being
  // finished waits for it.
  while (fin.busy(o.path)) {
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, peer, fin));
    fin.wait_done(50ms);
  }
  auto in = InboundFile::begin(ctx_.env, ctx_.opt.archive_root, o.path, o.size, hash, o.mtime_ns,
                               ctx_.opt.inbound);
  if (!in) return nack(nack_code_for(in.status()), in.status().message());
  if ((*in)->already_present()) {
    auto r = (*in)->accept_existing();
    if (!r) return nack(nack_code_for(r.status()), r.status().message());
    if (Status s = record(*r, hash, o.mtime_ns, name); !s)
      return nack(peer::NackMsg::kRetry, s.message());
    ctx_.lg->info("received {} from {} (already here)", r->rel, name);
    ctx_.board.received_file(peer);
    return send_id(c, FrameType::kAck, o.id);
  }
  const auto t0 = std::chrono::steady_clock::now();
  Status patch_err;  // a patch error: drain the delta, then NACK
  uint64_t delta_bytes = 0;
  RECSYNC_RETURN_IF_ERROR(receive_delta(c, peer, o, **in, fin, patch_err, delta_bytes));
  if (!patch_err.is_ok()) return nack(nack_code_for(patch_err), patch_err.message());
  std::shared_ptr<InboundFile> file = std::move(*in);
  fin.submit(o.id, o.path, [this, peer, name, file, hash, o, t0, delta_bytes]() -> Status {
    auto r = file->finish();
    if (!r) {
      ctx_.lg->warn("peer {}: refused {}: {}", name, printable(o.path), r.status().message());
      return r.status();
    }
    if (Status s = record(*r, hash, o.mtime_ns, name); !s) {
      // The file is published and whole: the index is rebuilt from disk at
      // the next start, so ack anyway (the copy is what counts).
      ctx_.lg->error("received {} but could not index it: {}", r->rel, s.message());
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
  if (any) {
    s = Status::refused("control characters in the hold target");
  } else if (h.op == peer::HoldMsg::kAdd) {
    HoldRow row;
    row.target = h.target;
    row.reason = h.reason + " (copied from " + name + ")";
    row.created_ms = h.created_ms;
    s = ctx_.store->holds().add_copied(row);
    if (s) ctx_.lg->info("hold on '{}' copied from {}: {}", h.target, name, printable(h.reason));
  } else {
    s = ctx_.store->holds().release_copied(h.target).status();
    if (s) ctx_.lg->info("hold on '{}' released by {}", h.target, name);
  }
  if (s) return send_id(c, FrameType::kAck, h.id);
  ctx_.lg->warn("peer {}: hold change on '{}' refused: {}", name, printable(h.target), s.message());
  return send_nack(c, h.id, nack_code_for(s), s.message());
}

}  // namespace recsync::replication
