#pragma once
// Two network namespaces joined by a veth pair, for end-to-end tests of the
// peer link over a real (virtual) network that a test can cut and shape.
// Root only; uses ip(8) and, for shaping, tc(8).
//
// Thread safety: none (one test thread). The destructor deletes both
// namespaces (which removes the veth pair); processes still running inside
// them keep the namespace alive until they exit, so stop them first.
#include <memory>
#include <string>
#include <vector>

#include "recsync/status.h"
#include "support/support.h"

namespace recsync::test {

class NetnsPair {
 public:
  // Creates namespaces "<tag>-1" and "<tag>-2" (tag: a short unique name,
  // e.g. "rst" + pid), a veth pair "<tag>a" (in ns 1, addr1) / "<tag>b" (in
  // ns 2, addr2), addresses given with their prefix ("10.231.0.1/24"), and
  // brings the links and each namespace's loopback up. Leftovers with the
  // same names are deleted first. Error: which ip command failed and why.
  static Result<std::unique_ptr<NetnsPair>> make(const std::string& tag, const std::string& addr1,
                                                 const std::string& addr2);
  ~NetnsPair();
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  // i = 1 or 2.
  const std::string& ns(int i) const { return i == 1 ? ns1_ : ns2_; }
  const std::string& veth(int i) const { return i == 1 ? veth1_ : veth2_; }
  // argv prefix that runs a command inside namespace i: ip netns exec <ns>.
  std::vector<std::string> exec_prefix(int i) const { return {"ip", "netns", "exec", ns(i)}; }
  // Runs argv inside namespace i (bounded: 20 s).
  RunResult exec(int i, std::vector<std::string> argv) const;
  // `ip link set <veth i> up|down` inside namespace i.
  Status set_link(int i, bool up) const;

 private:
  NetnsPair() = default;
  std::string ns1_, ns2_, veth1_, veth2_;
};

}  // namespace recsync::test
