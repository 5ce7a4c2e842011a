#include "metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace recsync::metrics {
namespace {

bool is_alpha_(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
// Overlong forms, surrogates and code points above U+10FFFF are invalid, as
// in Go's utf8.Valid, which is what Prometheus checks label values with.
size_t utf8_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Appends s with `quote` characters escaped (backslash and newline always),
// replacing invalid UTF-8 bytes with U+FFFD.
void append_escaped(std::string& out, std::string_view s, bool escape_quote) {
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      size_t n = utf8_len(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
        continue;
      }
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
}

const char* type_word(MetricType t) { return t == MetricType::kCounter ? "counter" : "gauge"; }

// Why `name` cannot be a family of type t, or "" if it can.
std::string name_problem(std::string_view name, MetricType t) {
  if (!valid_metric_name(name)) return "not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)";
  bool total = ends_with(name, "_total");
  if (t == MetricType::kCounter && !total) return "a counter's name must end in _total";
  if (t != MetricType::kCounter && total) return "only a counter's name may end in _total";
  for (std::string_view reserved : {"_bucket", "_count", "_sum"}) {
    if (ends_with(name, reserved)) {
      return "the suffix " + std::string(reserved) + " is for histograms and summaries";
    }
  }
  if (t == MetricType::kInfo && !ends_with(name, "_info"))
    return "an info family's name must end in _info";
  return "";
}

}  // namespace

bool valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_alpha_(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alpha_(c) || is_digit(c) || c == ':'; });
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || !is_alpha_(name[0]) || name.starts_with("__")) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_alpha_(c) || is_digit(c); });
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  append_escaped(out, value, true);
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  append_escaped(out, help, false);
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest round-trip form: integers print without a fraction, and what
  // Prometheus parses (Go's strconv.ParseFloat) gives back the same double.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buf, end);
}

Status Exposition::refuse(Status s) {
  if (first_error_.is_ok()) first_error_ = s;
  return s;
}

Status Exposition::begin_family(std::string_view name, MetricType type, std::string_view help) {
  current_.clear();
  label_sets_.clear();
  std::string why = name_problem(name, type);
  if (!why.empty())
    return refuse(Status::invalid("metric family '" + std::string(name) + "': " + why));
  if (families_.count(name)) {
    return refuse(Status::invalid("metric family '" + std::string(name) + "' begun twice"));
  }
  families_.emplace(name);
  current_ = name;
  type_ = type;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_word(type);
  out_ += '\n';
  return Status::ok();
}

Status Exposition::add_sample(const Labels& labels, double value) {
  if (current_.empty()) {
    return refuse(Status::invalid("metric sample outside a family (none begun, or refused)"));
  }
  auto fail = [&](const std::string& why) {
    return refuse(Status::invalid("metric family '" + current_ + "': " + why));
  };
  if (type_ == MetricType::kCounter && (std::isnan(value) || value < 0))
    return fail("a counter cannot be " + format_value(value));
  if (type_ == MetricType::kInfo && value != 1) return fail("an info sample's value must be 1");

  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (!valid_label_name(sorted[i].first))
      return fail("'" + sorted[i].first + "' is not a valid label name");
    if (i > 0 && sorted[i].first == sorted[i - 1].first)
      return fail("label '" + sorted[i].first + "' given twice");
  }
  std::string key;
  for (const auto& [k, v] : sorted) {
    key += k;
    key += '=';
    append_escaped(key, v, true);
    key += ',';
  }
  if (!label_sets_.insert(std::move(key)).second) return fail("the same label set twice");

  out_ += current_;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_ += ',';
      out_ += labels[i].first;
      out_ += "=\"";
      append_escaped(out_, labels[i].second, true);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
  ++samples_;
  return Status::ok();
}

std::string Exposition::take() {
  std::string s = std::move(out_);
  *this = Exposition();
  return s;
}

std::string render_collectors(std::span<const Collector> collectors, Status* first_error) {
  Exposition e;
  for (const auto& c : collectors) {
    if (c) c(e);
  }
  if (first_error) *first_error = e.first_error();
  return e.take();
}

}  // namespace recsync::metrics
