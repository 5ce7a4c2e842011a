#pragma once
// Writer for the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Metrics are read from the components at scrape time, as the Prometheus
// client libraries' collectors do: the daemon hands the HTTP server a render
// callback that builds one Exposition from fresh component snapshots and
// returns its text (see render_collectors()). Nothing writes into a global
// registry on a hot path, so nothing here needs a lock.
//
// Output, per family (one HELP and one TYPE line each, samples contiguous):
//   # HELP recsync_peer_up Whether the link to the peer is up (1) or not (0).
//   # TYPE recsync_peer_up gauge
//   recsync_peer_up{peer="fs2"} 1
//
// What the writer enforces (a refused call returns kInvalid, writes nothing,
// and the text stays a valid exposition):
// - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
//   [a-zA-Z_][a-zA-Z0-9_]*, and label names starting "__" are refused
//   (reserved for Prometheus itself);
// - a counter's name ends in "_total"; a gauge's does not, and neither ends in
//   "_bucket", "_count" or "_sum" (histogram/summary series, which this writer
//   does not produce; promtool flags them); an info family's name ends in
//   "_info", its type line says gauge and every sample's value is 1;
// - a family name is begun at most once per exposition; a label set at most
//   once per family; a label name at most once per sample;
// - counter values are not negative and not NaN.
// Escaping: label values escape backslash, double quote and newline; HELP
// text escapes backslash and newline. Invalid UTF-8 in label values and HELP
// is replaced by U+FFFD (the format requires UTF-8).
// Values print as the shortest decimal that reads back to the same double
// ("1", "0.25", "1e+21"), and as "NaN", "+Inf", "-Inf": what Prometheus'
// parser and promtool accept. No timestamps (values are current at scrape).
//
// Pure: no I/O, no clock. Thread safety: none; one Exposition per render.
#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "recsync/status.h"

namespace recsync::metrics {

// The Content-Type of a 0.0.4 text exposition.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType {
  kCounter,  // only goes up; name ends in _total
  kGauge,    // goes up and down
  kInfo,     // constant 1 with the information in labels (e.g. *_build_info); TYPE gauge
};

// Label name/value pairs of one sample, in the order they are printed.
using Labels = std::vector<std::pair<std::string, std::string>>;

bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);  // false for "__"-prefixed names too
// Label value as it goes between the quotes: \\ \" \n escaped, invalid UTF-8 -> U+FFFD.
std::string escape_label_value(std::string_view value);
// HELP text: \\ and \n escaped, invalid UTF-8 -> U+FFFD.
std::string escape_help(std::string_view help);
// A sample value as the format writes it (see above).
std::string format_value(double v);

class Exposition {
 public:
  // Starts a family; samples added next belong to it. kInvalid (naming the
  // family and the rule) for a bad name, a name that does not fit the type,
  // or a family begun before. After a refused begin, add_sample() refuses
  // until the next successful begin (so no sample lands in the wrong family).
  Status begin_family(std::string_view name, MetricType type, std::string_view help);
  // Adds a sample to the current family. kInvalid for: no current family,
  // a bad or repeated label name, a label set already in this family, a
  // negative or NaN counter, an info value other than 1.
  Status add_sample(const Labels& labels, double value);
  Status add_sample(double value) { return add_sample(Labels{}, value); }

  // The first refusal of this exposition (OK if none): a render callback can
  // log it once instead of checking every call.
  const Status& first_error() const { return first_error_; }
  size_t family_count() const { return families_.size(); }
  size_t sample_count() const { return samples_; }

  const std::string& text() const { return out_; }
  // Moves the text out; the Exposition is left empty and reusable.
  std::string take();

 private:
  Status refuse(Status s);

  std::string out_;
  std::set<std::string, std::less<>> families_;
  std::string current_;  // name of the family samples go to; "" = none
  MetricType type_ = MetricType::kGauge;
  std::set<std::string, std::less<>> label_sets_;  // of the current family
  size_t samples_ = 0;
  Status first_error_;
};

// One component's contribution to a scrape: reads its snapshot and adds its
// families. Collectors run on the thread that renders (the HTTP server's).
using Collector = std::function<void(Exposition&)>;

// Runs each collector in order on one Exposition and returns the text. If a
// collector's call was refused, `first_error` (when not null) receives the
// first refusal; the text holds everything that was accepted.
std::string render_collectors(std::span<const Collector> collectors, Status* first_error = nullptr);

}  // namespace recsync::metrics
