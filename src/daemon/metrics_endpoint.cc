#include "daemon/metrics_endpoint.h"

#include "daemon/metrics.h"
#include "recsync/log.h"

namespace recsync {

MetricsEndpoint::MetricsEndpoint(std::function<int64_t()> now_ms) : now_ms_(std::move(now_ms)) {}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

void MetricsEndpoint::publish(StatusInputs in) {
  auto next = std::make_shared<const StatusInputs>(std::move(in));
  std::lock_guard<std::mutex> l(mu_);
  latest_.swap(next);
  // The old copy is freed here or by a scrape still rendering from it.
}

Status MetricsEndpoint::start(const std::string& listen) {
  metrics::HttpServerOptions o;
  o.listen = listen;
  auto s = metrics::HttpServer::start(std::move(o), [this] { return render(); });
  if (!s) return s.status();
  server_ = std::move(s).value();
  self_ = server_.get();
  return Status::ok();
}

void MetricsEndpoint::stop() {
  if (server_) server_->stop();
}

std::string MetricsEndpoint::render() {
  std::shared_ptr<const StatusInputs> in;
  {
    std::lock_guard<std::mutex> l(mu_);
    in = latest_;
  }
  const metrics::HttpServer* self = self_.load();
  if (!in) {
    metrics::Exposition e;
    if (self) self->collect(e);
    return e.take();
  }
  Status err;
  std::string page = render_metrics(*in, now_ms_(), self, &err);
  if (!err.is_ok() && !warned_) {
    warned_ = true;  // a bug, not the client's doing: once is enough
    log::get("metrics")->warn("a metrics family was left out: {}", err.message());
  }
  return page;
}

}  // namespace recsync
