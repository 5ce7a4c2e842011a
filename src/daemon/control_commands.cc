#include "daemon/control_commands.h"

#include <map>

#include "daemon/status.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "retention/plan.h"
#include "scrub/report.h"

namespace recsync {

using json = nlohmann::json;

namespace {

using Reply = ControlServer::Reply;
using Handler = void (*)(ControlContext&, const json&, const PeerCred&, Reply&);

std::string iso(int64_t ms) { return format_utc(ms, TimeFormat::kSeconds, /*blank_unset=*/true); }
json error(const std::string& e) { return {{"ok", false}, {"error", e}}; }

void status(ControlContext& c, const json&, const PeerCred&, Reply& reply) {
  json j = c.status();
  j["ok"] = true;
  reply(j);
}

// Every archived recording the target names is held by its identity, so the
// copy on each peer holds that very recording (not whatever bears the name
// there). A target naming none yet (or one not hashed yet) is held by name.
std::vector<HoldRow> holds_for(const std::string& target, const std::string& reason, int64_t now_ms,
                               const std::vector<RecordingRow>& matches) {
  std::vector<HoldRow> out;
  bool by_name = matches.empty();
  for (const RecordingRow& r : matches) {
    if (r.hash.empty()) {
      by_name = true;
      continue;
    }
    out.push_back({target, reason, now_ms, r.origin, r.identity_rel(), r.hash});
  }
  if (by_name) out.push_back({target, reason, now_ms, "", "", ""});
  return out;
}

void hold_add(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  const std::string target = req.value("target", "");
  if (target.empty()) return reply(error("hold add needs a recording id or archive path"));
  auto matches = c.store->recordings().find(target);
  if (!matches) return reply(error(matches.status().message()));
  // An archive path names the one recording there (other recordings may
  // share it as their origin path: copies moved aside by a name collision).
  std::vector<RecordingRow> at_path;
  for (const RecordingRow& r : *matches)
    if (r.rel == target) at_path.push_back(r);
  if (!at_path.empty()) *matches = std::move(at_path);
  const std::string reason = req.value("reason", "");
  const std::vector<HoldRow> holds = holds_for(target, reason, to_ms(c.env->now()), *matches);
  if (Status s = c.store->holds().add(holds); !s) return reply(error(s.message()));
  const size_t n = matches->size();
  const HoldRow& h = holds.front();
  log::get("control")->info("hold added on '{}' by uid {} ({} archived recordings match){}", target,
                            who.uid, n, h.reason.empty() ? "" : ": " + h.reason);
  reply({{"ok", true}, {"target", target}, {"matches", n}});
}

void hold_release(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  const std::string target = req.value("target", "");
  auto r = c.store->holds().release(target);
  if (!r) return reply(error(r.status().message()));
  if (*r == 0) return reply(error("no hold on '" + target + "'"));
  log::get("control")->info("hold released on '{}' by uid {}", target, who.uid);
  reply({{"ok", true}, {"target", target}});
}

void hold_list(ControlContext& c, const json&, const PeerCred&, Reply& reply) {
  auto h = c.store->holds().list();
  if (!h) return reply(error(h.status().message()));
  json a = json::array();
  for (auto& x : *h) {
    json j = {{"target", x.target}, {"reason", x.reason}, {"created", iso(x.created_ms)}};
    if (x.is_identity())
      j["identity"] = {{"origin", x.origin == kLocalOrigin ? c.node : x.origin},
                       {"path", x.origin_rel},
                       {"hash", x.hash}};
    a.push_back(std::move(j));
  }
  reply({{"ok", true}, {"holds", a}});
}

void locate(ControlContext& c, const json& req, const PeerCred&, Reply& reply) {
  const std::string id = req.value("id", "");
  if (id.empty()) return reply(error("locate needs a recording id or path"));
  auto rows = c.store->recordings().find(id);
  if (!rows) return reply(error(rows.status().message()));
  auto holds = c.store->holds().list();
  HoldSet hs(holds ? *holds : std::vector<HoldRow>{});
  json a = json::array();
  for (auto& r : *rows)
    a.push_back({{"where", "archive"},
                 {"path", path_join(c.archive_root, r.rel)},
                 {"size", r.size},
                 {"hash", r.hash},
                 {"recorded", iso(r.rec_time_ms)},
                 {"origin", r.origin == kLocalOrigin ? c.node : r.origin},
                 {"origin_path", r.identity_rel()},
                 {"held", hs.held(r)}});
  if (c.tier) {
    auto objs = c.store->objects().find(id);
    if (!objs) return reply(error(objs.status().message()));
    for (auto& o : *objs) {
      RecordingRow r;
      r.rel = o.rel;
      r.name = o.name;
      a.push_back({{"where", "object_store"},
                   {"path", c.tier->where(o)},
                   {"size", o.size},
                   {"hash", o.hash},
                   {"recorded", iso(o.rec_time_ms)},
                   {"origin", o.origin},
                   {"version_id", o.version_id},
                   {"etag", o.etag},
                   {"verified", iso(o.verified_ms)},
                   {"legal_hold", o.legal_hold},
                   {"held", hs.held(r)}});
    }
  }
  for (const SpoolItem& e : c.spool->find(id))
    a.push_back({{"where", "spool"},
                 {"path", path_join(c.spool_root, e.rel)},
                 {"size", e.size},
                 {"state", e.in_flight ? "archiving" : "waiting"},
                 {"last_error", e.last_error}});
  if (a.empty()) return reply(error("no recording '" + id + "' in the spool or the archive"));
  reply({{"ok", true}, {"locations", a}});
}

// A recording (or, with window, this node's hot window) back from the
// object store; network and disk work, so off the loop.
void fetch(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  if (!c.tier) return reply(error("no [object_store] is configured"));
  const bool window = req.value("window", false);
  const std::string id = req.value("id", "");
  if (!window && id.empty()) return reply(error("fetch needs a recording id or path, or --window"));
  log::get("control")->info("fetch {} by uid {}", window ? "--window" : id, who.uid);
  objtier::ObjectTier* t = c.tier;
  c.off_loop(
      [t, window, id]() -> json {
        if (window) {
          auto w = t->fetch_window();
          if (!w) return error(w.status().message());
          return {{"ok", true},
                  {"listed", w->listed},
                  {"indexed", w->indexed},
                  {"fetched", w->fetched},
                  {"bytes", w->fetched_bytes},
                  {"already", w->already},
                  {"other_nodes", w->other_nodes},
                  {"errors", w->errors},
                  {"last_error", w->last_error}};
        }
        auto r = t->fetch(id);
        if (!r) return error(r.status().message());
        json a = json::array();
        for (auto& f : *r)
          a.push_back(
              {{"path", f.rel}, {"size", f.size}, {"hash", f.hash}, {"already", f.already}});
        return {{"ok", true}, {"fetched", a}};
      },
      std::move(reply));
}

// One recording erased here and queued for every peer; file and network
// work, so off the loop.
void erase(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  if (!c.eraser) return reply(error("erasure is not available"));
  erase::EraseRequest r{
      req.value("target", ""), req.value("reason", ""), static_cast<int64_t>(who.uid), {}, false};
  for (const SpoolItem& s : c.spool->find(r.target)) {  // the pipeline is read on this thread
    r.in_spool = true;
    if (!s.in_flight) r.spool_rels.push_back(s.rel);
  }
  erase::Eraser* e = c.eraser;
  c.off_loop(
      [e, r]() -> json {
        auto out = e->erase(r);
        if (!out) {
          json j = error(out.status().message());
          j["refused"] = out.status().code() == Status::Code::kRefused;
          return j;
        }
        json j = {{"ok", true},         {"origin", out->origin},   {"origin_path", out->origin_rel},
                  {"hash", out->hash},  {"removed", out->removed}, {"bytes", out->bytes},
                  {"peers", out->peers}};
        if (!out->object_store.empty()) j["object_store"] = out->object_store;
        return j;
      },
      std::move(reply));
}

json dry_run_json(const Result<PruneReport>& rep, int64_t keep_s) {
  if (!rep) return error(rep.status().message());
  json a = json::array();
  for (auto& r : rep->would_remove)
    a.push_back({{"path", r.rel}, {"size", r.size}, {"recorded", iso(r.rec_time_ms)}});
  json objs = json::array();
  for (auto& o : rep->objects.would_remove)
    objs.push_back(
        {{"path", o.rel}, {"key", o.key}, {"size", o.size}, {"recorded", iso(o.rec_time_ms)}});
  return {{"ok", true},
          {"dry_run", true},
          {"refused", rep->refused},
          {"would_remove", a},
          {"files", rep->removed},
          {"bytes", rep->bytes},
          {"held", rep->held},
          {"keep_s", keep_s},
          {"offloaded", rep->offloaded},
          {"unstored", rep->unstored},
          {"objects_would_remove", objs},
          {"objects", rep->objects.removed},
          {"object_bytes", rep->objects.bytes},
          {"objects_held", rep->objects.held}};
}

void prune(ControlContext& c, const json& req, const PeerCred&, Reply& reply) {
  if (!req.value("dry_run", false)) {
    c.retention->run_now();
    return reply({{"ok", true}, {"started", true}});
  }
  RetentionScheduler* r = c.retention;
  c.off_loop(
      [r] {
        auto rep = r->dry_run();
        return dry_run_json(rep, r->snapshot().settings.policy.keep.count() / 1000);
      },
      std::move(reply));
}

void backfill_start(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  if (!c.repl) return reply(error("backfill needs a peer: no [[peer]] in the configuration"));
  replication::BackfillStart s;
  s.dry_run = req.value("dry_run", false);
  if (const std::string p = req.value("peer", ""); !p.empty()) s.peers = {p};
  const int64_t keep = c.retention->snapshot().settings.policy.keep.count();
  s.window_start_ms = keep > 0 ? to_ms(c.env->now()) - keep : 0;
  auto id = c.repl->backfill().start(s);
  if (!id) return reply(error(id.status().message()));
  log::get("control")->info("backfill {} requested by uid {}{}", *id, who.uid,
                            s.dry_run ? " (dry run)" : "");
  reply({{"ok", true}, {"job", *id}});
}

void backfill_status(ControlContext& c, const json&, const PeerCred&, Reply& reply) {
  if (!c.repl) return reply(error("backfill needs a peer: no [[peer]] in the configuration"));
  auto v = c.repl->backfill().view();
  if (!v) return reply(error(v.status().message()));
  reply({{"ok", true}, {"backfill", backfill_json(*v)}});
}

void reload(ControlContext& c, const json&, const PeerCred&, Reply& reply) {
  c.reload();
  reply({{"ok", true}});
}

json bandwidth_json(const replication::BandwidthControl& bc) {
  const replication::BandwidthState st = bc.state();
  const replication::BandwidthSettings s = bc.settings();
  return {{"ok", true},
          {"cap_bps", st.cap_bps},
          {"source", st.source},
          {"base_bps", st.base_bps},
          {"base_source", st.base_source},
          {"default_bps", s.bandwidth_bps},
          {"schedule", s.schedule_text},
          {"override", bandwidth_override_json(st.override_in_force)}};
}

void bandwidth(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  if (!c.bandwidth) return reply(error("bandwidth control is not available"));
  const std::string action = req.value("action", "show");
  const WallTime now = c.env->now();
  bool cleared = false;
  if (action == "set") {
    const json& cap = req.contains("cap_bps") ? req["cap_bps"] : json();
    const json& dur = req.contains("for_ms") ? req["for_ms"] : json(0);
    // Parsed JSON has non-negative integers unsigned; built in C++, signed.
    if (!cap.is_number_unsigned() && !(cap.is_number_integer() && cap.get<int64_t>() >= 0))
      return reply(error("bandwidth set needs cap_bps: bytes per second, 0 = no cap"));
    if (!dur.is_number_integer() || dur.get<int64_t>() < 0 ||
        dur.get<int64_t>() > kMaxBandwidthOverride.count())
      return reply(error("bandwidth set: for_ms must be 0 (until cleared) up to " +
                         std::to_string(kMaxBandwidthOverride.count())));
    c.bandwidth->set_override(cap.get<uint64_t>(), Millis(dur.get<int64_t>()), who.uid, now);
  } else if (action == "clear") {
    cleared = c.bandwidth->clear_override(who.uid, now);
  } else if (action != "show") {
    return reply(error("unknown bandwidth action '" + action + "' (show, set or clear)"));
  }
  json j = bandwidth_json(*c.bandwidth);
  if (action == "clear") j["cleared"] = cleared;
  reply(j);
}

void scrub_start(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  if (!c.scrub) return reply(error("no scrub in this daemon"));
  const bool unpaced = req.value("unpaced", false);
  c.scrub->start_pass(unpaced);
  log::get("control")->info("scrub pass requested by uid {}{}", who.uid,
                            unpaced ? " (unpaced)" : "");
  reply({{"ok", true}, {"scrub", scrub::snapshot_json(c.scrub->snapshot(), c.node)}});
}

void scrub_status(ControlContext& c, const json&, const PeerCred&, Reply& reply) {
  if (!c.scrub) return reply(error("no scrub in this daemon"));
  reply({{"ok", true}, {"scrub", scrub::snapshot_json(c.scrub->snapshot(), c.node)}});
}

// Reads the named recordings now (off the loop); findings are handled as a
// pass handles them (alarm, repair).
void scrub_check(ControlContext& c, const json& req, const PeerCred& who, Reply& reply) {
  if (!c.scrub) return reply(error("no scrub in this daemon"));
  std::vector<std::string> targets;
  if (req.contains("targets") && req["targets"].is_array())
    for (const json& t : req["targets"])
      if (t.is_string() && !t.get<std::string>().empty()) targets.push_back(t.get<std::string>());
  if (targets.empty()) return reply(error("scrub_check needs targets (recording ids or paths)"));
  log::get("control")->info("verify of {} recording(s) requested by uid {}", targets.size(),
                            who.uid);
  scrub::Scrubber* sc = c.scrub;
  const std::string node = c.node;
  c.off_loop(
      [sc, node, targets] {
        size_t checked = 0;
        auto r = sc->check_now(targets, &checked);
        if (!r) return error(r.status().message());
        json a = json::array();
        for (const scrub::Finding& f : *r) a.push_back(scrub::finding_json(f, node));
        return json{{"ok", true}, {"checked", checked}, {"findings", a}};
      },
      std::move(reply));
}

const std::map<std::string, Handler>& handlers() {
  static const std::map<std::string, Handler> h = {{"status", status},
                                                   {"hold_add", hold_add},
                                                   {"hold_release", hold_release},
                                                   {"hold_list", hold_list},
                                                   {"locate", locate},
                                                   {"erase", erase},
                                                   {"prune", prune},
                                                   {"reload", reload},
                                                   {"backfill_start", backfill_start},
                                                   {"backfill_status", backfill_status},
                                                   {"bandwidth", bandwidth},
                                                   {"fetch", fetch},
                                                   {"scrub_start", scrub_start},
                                                   {"scrub_status", scrub_status},
                                                   {"scrub_check", scrub_check}};
  return h;
}

}  // namespace

void handle_control(ControlContext& ctx, const json& req, const PeerCred& who, Reply reply) {
  try {
    const std::string cmd = req.value("cmd", "");
    auto it = handlers().find(cmd);
    if (it == handlers().end()) return reply(error("unknown command '" + cmd + "'"));
    it->second(ctx, req, who, reply);
  } catch (const std::exception& e) {
    reply(error(std::string("internal error: ") + e.what()));
  }
}

}  // namespace recsync
