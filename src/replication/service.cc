#include "replication/service.h"

#include <unistd.h>

#include "recsync/units.h"
#include "replication/backfill_jobs.h"
#include "replication/receiver.h"
#include "replication/repair_requests.h"
#include "replication/sender.h"

namespace recsync::replication {

Service::Service(Env* env, StateStore* store, ServiceOptions opt)
    : env_(env),
      store_(store),
      opt_(std::move(opt)),
      own_gov_(opt_.governor ? nullptr
                             : std::make_unique<Governor>(opt_.bandwidth_bps, 0, steady_ns())),
      gov_(opt_.governor ? opt_.governor : own_gov_.get()),
      board_(env, opt_.peers) {}

Service::~Service() { stop(); }

Result<std::unique_ptr<Service>> Service::create(Env* env, StateStore* store,
                                                 const peer::Identity& self, ServiceOptions opt) {
  std::unique_ptr<Service> s(new Service(env, store, std::move(opt)));
  std::vector<std::string> pins;
  for (auto& p : s->opt_.peers) pins.push_back(p.fingerprint);
  auto tls = peer::TlsContext::create(self, pins);
  if (!tls) return tls.status();
  s->tls_ = std::move(tls).value();
  auto fd = peer::listen_tcp(s->opt_.listen);
  if (!fd) return fd.status().with_context("replication.listen " + s->opt_.listen);
  auto port = peer::bound_port(*fd);
  if (!port) {
    ::close(*fd);
    return port.status();
  }
  s->listen_port_ = *port;
  if (!s->opt_.placer) {
    s->own_placer_ = std::make_unique<Placer>(env, store, s->opt_.archive_root, s->opt_.node);
    s->opt_.placer = s->own_placer_.get();
  }
  s->ctx_.reset(new LinkContext{env, store, s->opt_, *s->tls_, s->cancel_, *s->gov_, s->board_,
                                *s->opt_.placer, s->stop_});
  s->jobs_ = std::make_unique<BackfillJobs>(*s->ctx_);
  s->ctx_->jobs = s->jobs_.get();
  s->repairs_ = std::make_unique<RepairRequests>();
  s->repairs_->set_peers(s->peer_names());
  s->ctx_->repairs = s->repairs_.get();
  s->receiver_ = std::make_unique<Receiver>(*s->ctx_, *fd);
  for (size_t i = 0; i < s->board_.size(); ++i)
    for (peer::Lane lane : {peer::Lane::kLive, peer::Lane::kBackfill})
      s->senders_.push_back(std::make_unique<Sender>(*s->ctx_, i, lane));
  store->queue().set_peers(s->peer_names());
  return s;
}

void Service::start() {
  ctx_->lg->info("replication listening on {} (port {}), {} peer(s), cap {}", opt_.listen,
                 listen_port_, senders_.size(),
                 gov_->rate() ? format_bytes(gov_->rate()) + "/s" : std::string("none"));
  started_ = true;
  receiver_->start();
  for (auto& s : senders_) s->start();
}

void Service::stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.stop();
  store_->queue().doorbell().ring();  // idle senders wait on it
  for (auto& s : senders_) s->shutdown();
  receiver_->shutdown_all();
  cancel_.cancel();
  for (auto& s : senders_) s->join();
  receiver_->join();
}

void Service::tick() { jobs_->tick(); }

std::vector<std::string> Service::peer_names() const {
  std::vector<std::string> n;
  for (auto& p : opt_.peers) n.push_back(p.name);
  return n;
}

ServiceStatus Service::status() {
  ServiceStatus s;
  s.listen = opt_.listen;
  s.listen_port = listen_port_;
  s.bandwidth_bps = gov_->rate();
  s.peers = board_.peers();
  s.last_refused = board_.last_refused();
  {
    // Rate over the last ~5 s of samples taken at status calls.
    std::lock_guard<std::mutex> l(rate_mu_);
    const int64_t now = steady_ns();
    const uint64_t total = gov_->granted(Priority::kLive) + gov_->granted(Priority::kBulk);
    samples_.emplace_back(now, total);
    while (samples_.size() > 2 && now - samples_[1].first >= 5'000'000'000) samples_.pop_front();
    auto& [t0, b0] = samples_.front();
    if (now - t0 > 200'000'000) s.rate_bps = static_cast<uint64_t>((total - b0) * 1e9 / (now - t0));
  }
  for (auto& p : s.peers)
    if (auto q = store_->queue().stats(p.name)) p.queue = *q;
  return s;
}

}  // namespace recsync::replication
