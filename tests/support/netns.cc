#include "support/netns.h"

namespace recsync::test {
namespace {

Status ip(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  RunResult r = run(args, 20s);
  if (r.exit_code == 0) return Status::ok();
  std::string cmd;
  for (auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return Status::io(cmd + ": exit " + std::to_string(r.exit_code) + ": " + r.err);
}

}  // namespace

Result<std::unique_ptr<NetnsPair>> NetnsPair::make(const std::string& tag, const std::string& addr1,
                                                   const std::string& addr2) {
  std::unique_ptr<NetnsPair> p(new NetnsPair);
  p->ns1_ = tag + "-1";
  p->ns2_ = tag + "-2";
  p->veth1_ = tag + "a";
  p->veth2_ = tag + "b";
  if (p->veth1_.size() > 15) return Status::invalid("tag too long for an interface name: " + tag);
  // Leftovers of a crashed run (errors ignored: usually there are none).
  run({"ip", "netns", "del", p->ns1_}, 20s);
  run({"ip", "netns", "del", p->ns2_}, 20s);
  run({"ip", "link", "del", p->veth1_}, 20s);
  RECSYNC_RETURN_IF_ERROR(ip({"netns", "add", p->ns1_}));
  RECSYNC_RETURN_IF_ERROR(ip({"netns", "add", p->ns2_}));
  RECSYNC_RETURN_IF_ERROR(ip({"link", "add", p->veth1_, "netns", p->ns1_, "type", "veth", "peer",
                              "name", p->veth2_, "netns", p->ns2_}));
  RECSYNC_RETURN_IF_ERROR(ip({"-n", p->ns1_, "addr", "add", addr1, "dev", p->veth1_}));
  RECSYNC_RETURN_IF_ERROR(ip({"-n", p->ns2_, "addr", "add", addr2, "dev", p->veth2_}));
  for (int i = 1; i <= 2; ++i) {
    RECSYNC_RETURN_IF_ERROR(ip({"-n", p->ns(i), "link", "set", "lo", "up"}));
    RECSYNC_RETURN_IF_ERROR(ip({"-n", p->ns(i), "link", "set", p->veth(i), "up"}));
  }
  return p;
}

NetnsPair::~NetnsPair() {
  // Deleting a namespace removes the veth end in it, and with it the pair.
  if (!ns1_.empty()) run({"ip", "netns", "del", ns1_}, 20s);
  if (!ns2_.empty()) run({"ip", "netns", "del", ns2_}, 20s);
}

RunResult NetnsPair::exec(int i, std::vector<std::string> argv) const {
  std::vector<std::string> full = exec_prefix(i);
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full, 20s);
}

Status NetnsPair::set_link(int i, bool up) const {
  return ip({"-n", ns(i), "link", "set", veth(i), up ? "up" : "down"});
}

}  // namespace recsync::test
