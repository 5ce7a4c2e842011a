#include "objstore/xml.h"

#include <cstdint>

namespace recsync::objstore {

const XmlNode* XmlNode::child(std::string_view n) const {
  for (const auto& c : children) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

std::string XmlNode::child_text(std::string_view n) const {
  const XmlNode* c = child(n);
  return c ? c->text : std::string();
}

std::vector<const XmlNode*> XmlNode::children_named(std::string_view n) const {
  std::vector<const XmlNode*> out;
  for (const auto& c : children) {
    if (c.name == n) out.push_back(&c);
  }
  return out;
}

namespace {

bool is_name_char(char c) {
  return c != '>' && c != '/' && c != '=' && c != ' ' && c != '\t' && c != '\r' && c != '\n' &&
         c != '<' && c != '"' && c != '\'';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view d) : d_(d) {}

  Result<XmlNode> document() {
    if (!skip_misc()) return error("malformed prolog");
    if (!starts("<")) return error("no root element");
    XmlNode root;
    if (!element(root, 1)) return error(why_);
    if (!skip_misc() || pos_ != d_.size()) return error("content after the root element");
    return root;
  }

 private:
  Status error(const std::string& what) const {
    return Status::corrupt("XML: " + what + " at byte " + std::to_string(pos_));
  }
  bool fail(const char* why) {
    why_ = why;
    return false;
  }
  bool starts(std::string_view s) const { return d_.substr(pos_, s.size()) == s; }
  void skip_space() {
    while (pos_ < d_.size() &&
           (d_[pos_] == ' ' || d_[pos_] == '\t' || d_[pos_] == '\r' || d_[pos_] == '\n')) {
      ++pos_;
    }
  }
  // Skips past the next occurrence of end; false if there is none.
  bool skip_past(std::string_view end) {
    size_t e = d_.find(end, pos_);
    if (e == std::string_view::npos) return false;
    pos_ = e + end.size();
    return true;
  }
  // Whitespace, the XML declaration and comments (before and after the root).
  bool skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?")) {
        if (!skip_past("?>")) return false;
      } else if (starts("<!--")) {
        if (!skip_past("-->")) return false;
      } else {
        return !starts("<!");  // DOCTYPE and the like: refused
      }
    }
  }

  bool name(std::string& out) {
    size_t start = pos_;
    while (pos_ < d_.size() && is_name_char(d_[pos_])) ++pos_;
    if (pos_ == start) return false;
    std::string_view n = d_.substr(start, pos_ - start);
    size_t colon = n.rfind(':');
    out = std::string(colon == std::string_view::npos ? n : n.substr(colon + 1));
    return true;
  }

  // Reads past attributes up to '>' or '/>'; sets empty for a self-closing tag.
  bool attributes(bool& empty) {
    for (;;) {
      skip_space();
      if (pos_ >= d_.size()) return fail("unterminated tag");
      if (d_[pos_] == '>') {
        ++pos_;
        empty = false;
        return true;
      }
      if (starts("/>")) {
        pos_ += 2;
        empty = true;
        return true;
      }
      std::string ignored;
      if (!name(ignored)) return fail("bad attribute");
      skip_space();
      if (pos_ >= d_.size() || d_[pos_] != '=') return fail("attribute without value");
      ++pos_;
      skip_space();
      if (pos_ >= d_.size() || (d_[pos_] != '"' && d_[pos_] != '\'')) {
        return fail("unquoted attribute value");
      }
      char q = d_[pos_++];
      size_t e = d_.find(q, pos_);
      if (e == std::string_view::npos) return fail("unterminated attribute value");
      pos_ = e + 1;
    }
  }

  bool entity(std::string& out) {
    size_t semi = d_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return fail("bad entity");
    std::string_view e = d_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (e == "lt")
      out += '<';
    else if (e == "gt")
      out += '>';
    else if (e == "amp")
      out += '&';
    else if (e == "quot")
      out += '"';
    else if (e == "apos")
      out += '\'';
    else if (e.size() >= 2 && e[0] == '#') {
      bool hex = e[1] == 'x' || e[1] == 'X';
      std::string_view digits = e.substr(hex ? 2 : 1);
      if (digits.empty()) return fail("bad character reference");
      uint32_t cp = 0;
      for (char c : digits) {
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : !hex                   ? -1
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v < 0) return fail("bad character reference");
        cp = cp * (hex ? 16 : 10) + uint32_t(v);
        if (cp > 0x10FFFF) return fail("character reference out of range");
      }
      if (cp == 0) return fail("character reference to NUL");
      append_utf8(out, cp);
    } else {
      return fail("unknown entity");
    }
    return true;
  }

  // Content up to and including the end tag of `node`.
  bool content(XmlNode& node, int depth) {
    for (;;) {
      if (pos_ >= d_.size()) return fail("unterminated element");
      char c = d_[pos_];
      if (c == '&') {
        if (!entity(node.text)) return false;
      } else if (c != '<') {
        node.text += c;
        ++pos_;
      } else if (starts("</")) {
        pos_ += 2;
        std::string end;
        if (!name(end) || end != node.name) return fail("mismatched end tag");
        skip_space();
        if (pos_ >= d_.size() || d_[pos_] != '>') return fail("bad end tag");
        ++pos_;
        return true;
      } else if (starts("<!--")) {
        if (!skip_past("-->")) return fail("unterminated comment");
      } else if (starts("<![CDATA[")) {
        size_t start = pos_ + 9;
        size_t e = d_.find("]]>", start);
        if (e == std::string_view::npos) return fail("unterminated CDATA");
        node.text.append(d_.substr(start, e - start));
        pos_ = e + 3;
      } else if (starts("<!") || starts("<?")) {
        return fail("DOCTYPE or processing instruction inside the document");
      } else {
        node.children.emplace_back();
        if (!element(node.children.back(), depth + 1)) return false;
      }
    }
  }

  bool element(XmlNode& node, int depth) {
    if (depth > kMaxXmlDepth) return fail("nesting too deep");
    if (++nodes_ > kMaxXmlNodes) return fail("too many elements");
    ++pos_;  // '<'
    if (!name(node.name)) return fail("bad element name");
    bool empty = false;
    if (!attributes(empty)) return false;
    return empty || content(node, depth);
  }

  std::string_view d_;
  size_t pos_ = 0;
  size_t nodes_ = 0;
  const char* why_ = "malformed";
};

}  // namespace

Result<XmlNode> parse_xml(std::string_view doc) { return Parser(doc).document(); }

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace recsync::objstore
