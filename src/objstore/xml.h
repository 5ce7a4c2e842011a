#pragma once
// A small, bounded XML reader for S3 responses (error bodies, listings,
// legal hold) and an escaper for the request bodies the client writes.
//
// Enough XML for what S3 servers send: a prolog, comments, elements with
// attributes (read past, not kept), namespace prefixes (dropped from names),
// text with the five named entities and numeric character references, and
// CDATA. DOCTYPE and processing instructions inside the document are refused
// (no entity expansion, so no billion-laughs). Limits: kMaxXmlDepth nesting,
// kMaxXmlNodes elements; the caller caps the input size (the client caps
// response bodies).
//
// Thread safety: pure functions; an XmlNode is a plain value.
#include <string>
#include <string_view>
#include <vector>

#include "recsync/status.h"

namespace recsync::objstore {

inline constexpr int kMaxXmlDepth = 32;
inline constexpr size_t kMaxXmlNodes = 200000;

struct XmlNode {
  std::string name;  // local name, prefix dropped
  std::string text;  // the element's own text (entities decoded), children's text not included
  std::vector<XmlNode> children;

  // The first child with that name, or nullptr.
  const XmlNode* child(std::string_view name) const;
  // Text of the first child with that name, "" when there is none.
  std::string child_text(std::string_view name) const;
  // Every child with that name, in document order.
  std::vector<const XmlNode*> children_named(std::string_view name) const;
};

// The root element of doc. kCorrupt with the byte offset on malformed input
// or when a limit is passed.
Result<XmlNode> parse_xml(std::string_view doc);

// Escapes & < > " ' for text and attribute values.
std::string xml_escape(std::string_view s);

}  // namespace recsync::objstore
