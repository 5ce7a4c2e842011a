#pragma once
// Readers for single config values (private to src/config): each checks one
// TOML node and either stores the value or returns kInvalid with
// "file:line: key: reason". Pure; any thread.
#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "recsync/config.h"
#include "recsync/status.h"
#include "recsync/units.h"

namespace recsync::config_values {

// One value being applied: its node, its dotted name for messages and the
// "file:line: " prefix of its position.
struct Item {
  const toml::node& node;
  std::string key;
  std::string where;
  Status fail(const std::string& why) const { return Status::invalid(where + key + ": " + why); }
};

std::string where_of(const std::string& source, uint32_t line);
const char* type_name(toml::node_type t);
Status wrong_type(const Item& it, const char* want);
Status get_string(const Item& it, std::string* out);
Status get_int(const Item& it, int64_t lo, int64_t hi, int* out);
Status get_choice(const Item& it, std::initializer_list<const char*> choices, std::string* out);
Status get_level(const Item& it, std::string* out);
// A duration string, or the integer 0. `min` is inclusive.
Status get_duration(const Item& it, Millis min, Millis* out);
Status get_string_list(const Item& it, std::vector<std::string>* out);
// Lexically normal form without a trailing '/': "/a/b/../c/" -> "/a/c".
std::string normal_path(const std::string& p);
Status get_abs_path(const Item& it, bool allow_empty, std::string* out);
// 1-64 letters, digits, '.', '_', '-', starting with a letter or digit.
bool valid_name(const std::string& s);
Status get_name(const Item& it, std::string* out);
// Why "host:port" / "[v6]:port" is malformed, or "" when it is fine.
std::string address_problem(const std::string& s, bool allow_port0);
// Listen addresses may use port 0 (any free port: tests); peer addresses not.
Status get_address(const Item& it, bool listen, bool allow_empty, std::string* out);
Status get_bandwidth(const Item& it, uint64_t* out);
Status get_schedule(const Item& it, Schedule* out, std::string* text);
Status get_fingerprint(const Item& it, std::string* out);
Status get_socket_path(const Item& it, std::string* out);
Status get_bool(const Item& it, bool* out);
// A size string ("16MiB") or integer bytes, within [min, max].
Status get_size(const Item& it, uint64_t min, uint64_t max, uint64_t* out);
// Object store values ([object_store]): endpoint "http(s)://host[:port]";
// S3 bucket naming; a key prefix (printable, no leading '/', no "." or ".."
// segment, at most 512 bytes); credentials "/abs/path" or "systemd:NAME".
Status get_endpoint(const Item& it, std::string* out);
Status get_bucket(const Item& it, std::string* out);
Status get_key_prefix(const Item& it, std::string* out);
Status get_credentials_ref(const Item& it, std::string* out);
Status get_components(const Item& it, const std::string& source,
                      std::map<std::string, std::string>* out);

}  // namespace recsync::config_values
