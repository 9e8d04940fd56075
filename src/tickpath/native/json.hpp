// A small validating JSON reader over a byte buffer: just what typed frame decoders need.
//
// It never allocates on the common path: strings come back as views into the frame, and only a string
// with an escape is copied (unescaped) into a scratch buffer. Errors are of two kinds, as in msgspec
// (the pure-Python reference): the bytes are not JSON (MALFORMED), or they are JSON of the wrong
// shape (SCHEMA). Nesting deeper than MAX_DEPTH is malformed, as is invalid UTF-8 in a kept string.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tp::json {

enum Error : uint8_t { OK = 0, MALFORMED = 1, SCHEMA = 2 };
constexpr int MAX_DEPTH = 512;

struct Str {
  std::string_view view;  // the string's content (unescaped when it had escapes)
  bool escaped = false;
};

class Reader {
 public:
  Reader(const char* p, size_t n) : p_(p), end_(p + n) {}
  Error error = OK;

  bool fail(Error e) {
    if (error == OK) error = e;
    return false;
  }
  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at_end() {
    ws();
    return p_ == end_;
  }
  // The next non-blank byte without consuming it (0 at the end).
  char peek() {
    ws();
    return p_ < end_ ? *p_ : '\0';
  }
  bool eat(char c) {
    ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool expect(char c) { return eat(c) || fail(MALFORMED); }

  // Object iteration: begin_object(), then `bool first = true;` and, while next_key(k, s, first)
  // yields keys, read each value. Arrays likewise with next_element(first).
  bool begin_object() {
    char c = peek();
    if (c == '{') {
      ++p_;
      return true;
    }
    return mismatch();
  }
  // True with the key when another member follows; false at '}' (error stays OK) or on bad input.
  bool next_key(Str& key, std::string& scratch, bool& first) {
    ws();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return false;
    }
    if (!first && !expect(',')) return false;
    first = false;
    ws();
    if (p_ >= end_ || *p_ != '"') return fail(MALFORMED);
    if (!string(key, scratch, false)) return false;
    return expect(':');
  }
  bool begin_array() {
    char c = peek();
    if (c == '[') {
      ++p_;
      return true;
    }
    return mismatch();
  }
  // True when another element follows (positioned at it); false at ']' or on bad input.
  bool next_element(bool& first) {
    ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return false;
    }
    if (!first && !expect(',')) return false;
    first = false;
    ws();
    return true;
  }

  // A string value; `utf8` false skips the UTF-8 check (keys: msgspec matches them as bytes).
  bool string(Str& out, std::string& scratch, bool utf8 = true);
  // The common shape of a level, ["<decimal>","<decimal>"] with no blanks or escapes: both strings as
  // views, consumed. False (nothing consumed) for anything else; the caller then takes the general path.
  bool decimal_pair(std::string_view& a, std::string_view& b) {
    const char* q = p_;
    if (end_ - q < 7 || q[0] != '[' || q[1] != '"') return false;
    const char* s1 = q + 2;
    q = s1;
    while (q < end_ && (unsigned(*q - '0') < 10 || *q == '.')) ++q;
    if (end_ - q < 4 || q[0] != '"' || q[1] != ',' || q[2] != '"') return false;
    const char* e1 = q;
    const char* s2 = q + 3;
    q = s2;
    while (q < end_ && (unsigned(*q - '0') < 10 || *q == '.')) ++q;
    if (end_ - q < 2 || q[0] != '"' || q[1] != ']') return false;
    a = std::string_view(s1, size_t(e1 - s1));
    b = std::string_view(s2, size_t(q - s2));
    p_ = q + 2;
    return true;
  }
  // An integer field: a JSON number without fraction or exponent that fits in int64.
  bool int64(int64_t& out);
  bool boolean(bool& out) {
    ws();
    if (literal("true")) return out = true, true;
    if (literal("false")) return out = false, true;
    return mismatch();
  }
  bool null() {
    ws();
    return literal("null");
  }
  // Any value, validated and discarded (strings are not UTF-8-checked, as msgspec skips them).
  bool skip(int depth = 0);
  bool is_value_start(char c) const {
    return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' ||
           c == 'n';
  }
  const char* pos() const { return p_; }
  // A value of the wrong type here. As msgspec: a scalar is read to its end first (a malformed one
  // is MALFORMED), a container is a SCHEMA error at once.
  bool mismatch() {
    char c = peek();
    if (c == '{' || c == '[') return fail(SCHEMA);
    if (c == '"') return skip_string() && fail(SCHEMA);
    if (c == 't') return literal("true") ? fail(SCHEMA) : fail(MALFORMED);
    if (c == 'f') return literal("false") ? fail(SCHEMA) : fail(MALFORMED);
    if (c == 'n') return literal("null") ? fail(SCHEMA) : fail(MALFORMED);
    if (c == '-' || (c >= '0' && c <= '9')) {
      bool integral, negative, overflow;
      uint64_t mag;
      return number(integral, negative, mag, overflow) && fail(SCHEMA);
    }
    return fail(MALFORMED);
  }

 private:
  const char* p_;
  const char* end_;

  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (size_t(end_ - p_) >= n && std::memcmp(p_, word, n) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }
  bool number(bool& integral, bool& negative, uint64_t& magnitude, bool& overflow);
  bool skip_string();
  static bool utf8_ok(const unsigned char* s, const unsigned char* e);
};

inline bool Reader::utf8_ok(const unsigned char* s, const unsigned char* e) {
  while (s < e) {
    unsigned c = *s;
    if (c < 0x80) {
      ++s;
      continue;
    }
    int n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) n = 1, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, min = 0x10000, c &= 0x07;
    else return false;
    if (e - s <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((s[i] & 0xC0) != 0x80) return false;
      c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
    s += n + 1;
  }
  return true;
}

inline void put_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

inline int hex4(const char* p) {
  int v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

inline bool Reader::string(Str& out, std::string& scratch, bool utf8) {
  ws();
  if (p_ >= end_ || *p_ != '"') return mismatch();
  const char* start = ++p_;
  const char* q = start;
  unsigned high = 0;  // any byte >= 0x80: only then is UTF-8 checked
  while (q < end_ && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) high |= (unsigned char)*q++;
  if (q < end_ && *q == '"') {
    if (utf8 && (high & 0x80) && !utf8_ok((const unsigned char*)start, (const unsigned char*)q)) return fail(MALFORMED);
    out.view = std::string_view(start, size_t(q - start));
    out.escaped = false;
    p_ = q + 1;
    return true;
  }
  // Slow path: escapes (or an error).
  scratch.assign(start, size_t(q - start));
  const char* run = q;  // start of the pending unescaped run
  while (q < end_) {
    unsigned char c = (unsigned char)*q;
    if (c == '"') break;
    if (c < 0x20) return fail(MALFORMED);
    if (c != '\\') {
      ++q;
      continue;
    }
    scratch.append(run, size_t(q - run));
    if (end_ - q < 2) return fail(MALFORMED);
    char e = q[1];
    q += 2;
    switch (e) {
      case '"': scratch.push_back('"'); break;
      case '\\': scratch.push_back('\\'); break;
      case '/': scratch.push_back('/'); break;
      case 'b': scratch.push_back('\b'); break;
      case 'f': scratch.push_back('\f'); break;
      case 'n': scratch.push_back('\n'); break;
      case 'r': scratch.push_back('\r'); break;
      case 't': scratch.push_back('\t'); break;
      case 'u': {
        if (end_ - q < 4) return fail(MALFORMED);
        int cp = hex4(q);
        if (cp < 0) return fail(MALFORMED);
        q += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate needs its low half
          if (end_ - q < 6 || q[0] != '\\' || q[1] != 'u') return fail(MALFORMED);
          int lo = hex4(q + 2);
          if (lo < 0xDC00 || lo > 0xDFFF) return fail(MALFORMED);
          q += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail(MALFORMED);
        }
        put_utf8(scratch, uint32_t(cp));
        break;
      }
      default: return fail(MALFORMED);
    }
    run = q;
  }
  if (q >= end_) return fail(MALFORMED);
  scratch.append(run, size_t(q - run));
  if (utf8 && !utf8_ok((const unsigned char*)scratch.data(), (const unsigned char*)scratch.data() + scratch.size()))
    return fail(MALFORMED);
  p_ = q + 1;
  out.view = std::string_view(scratch);
  out.escaped = true;
  return true;
}

inline bool Reader::number(bool& integral, bool& negative, uint64_t& magnitude, bool& overflow) {
  const char* q = p_;
  negative = q < end_ && *q == '-';
  if (negative) ++q;
  if (q >= end_) return fail(MALFORMED);
  magnitude = 0;
  overflow = false;
  if (*q == '0') {
    ++q;
    if (q < end_ && unsigned(*q - '0') < 10) return fail(MALFORMED);  // a leading zero
  } else if (*q >= '1' && *q <= '9') {
    const char* digits = q;
    while (q < end_ && unsigned(*q - '0') < 10 && q - digits < 19) magnitude = magnitude * 10 + uint64_t(*q++ - '0');
    while (q < end_ && unsigned(*q - '0') < 10) {  // 20 digits or more: only now can uint64 overflow
      uint64_t next;
      if (__builtin_mul_overflow(magnitude, uint64_t(10), &next) ||
          __builtin_add_overflow(next, uint64_t(*q - '0'), &magnitude))
        overflow = true;
      ++q;
    }
  } else {
    return fail(MALFORMED);
  }
  integral = true;
  if (q < end_ && *q == '.') {
    integral = false;
    ++q;
    if (q >= end_ || *q < '0' || *q > '9') return fail(MALFORMED);
    while (q < end_ && *q >= '0' && *q <= '9') ++q;
  }
  if (q < end_ && (*q == 'e' || *q == 'E')) {
    integral = false;
    ++q;
    if (q < end_ && (*q == '+' || *q == '-')) ++q;
    if (q >= end_ || *q < '0' || *q > '9') return fail(MALFORMED);
    while (q < end_ && *q >= '0' && *q <= '9') ++q;
  }
  p_ = q;
  return true;
}

inline bool Reader::int64(int64_t& out) {
  char c = peek();
  if (c != '-' && (c < '0' || c > '9')) return mismatch();
  bool integral, negative, overflow;
  uint64_t mag;
  if (!number(integral, negative, mag, overflow)) return false;
  if (!integral || overflow) return fail(SCHEMA);
  if (mag > uint64_t(INT64_MAX)) return fail(SCHEMA);  // INT64_MIN is excluded: it means "absent"
  if (negative) {
    out = -int64_t(mag);
  } else {
    out = int64_t(mag);
  }
  return true;
}

inline bool Reader::skip_string() {
  const char* q = p_ + 1;
  while (q < end_) {
    unsigned char c = (unsigned char)*q;
    if (c == '"') {
      p_ = q + 1;
      return true;
    }
    if (c < 0x20) return fail(MALFORMED);
    if (c == '\\') {
      if (end_ - q < 2) return fail(MALFORMED);
      char e = q[1];
      if (e == 'u') {  // surrogates are checked as in a kept string (msgspec does)
        int cp = end_ - q < 6 ? -1 : hex4(q + 2);
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return fail(MALFORMED);
        q += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          int lo = end_ - q < 6 || q[0] != '\\' || q[1] != 'u' ? -1 : hex4(q + 2);
          if (lo < 0xDC00 || lo > 0xDFFF) return fail(MALFORMED);
          q += 6;
        }
      } else if (std::strchr("\"\\/bfnrt", e) && e != '\0') {
        q += 2;
      } else {
        return fail(MALFORMED);
      }
      continue;
    }
    ++q;
  }
  return fail(MALFORMED);
}

inline bool Reader::skip(int depth) {
  if (depth > MAX_DEPTH) return fail(MALFORMED);
  char c = peek();
  switch (c) {
    case '"': return skip_string();
    case '{': {
      ++p_;
      bool first = true;
      for (;;) {
        ws();
        if (p_ < end_ && *p_ == '}') return ++p_, true;
        if (!first && !expect(',')) return false;
        first = false;
        ws();
        if (p_ >= end_ || *p_ != '"') return fail(MALFORMED);
        if (!skip_string() || !expect(':') || !skip(depth + 1)) return false;
      }
    }
    case '[': {
      ++p_;
      bool first = true;
      for (;;) {
        ws();
        if (p_ < end_ && *p_ == ']') return ++p_, true;
        if (!first && !expect(',')) return false;
        first = false;
        if (!skip(depth + 1)) return false;
      }
    }
    case 't': if (literal("true")) return true; return fail(MALFORMED);
    case 'f': if (literal("false")) return true; return fail(MALFORMED);
    case 'n': if (literal("null")) return true; return fail(MALFORMED);
    default: {
      bool integral, negative, overflow;
      uint64_t mag;
      if (c != '-' && (c < '0' || c > '9')) return fail(MALFORMED);
      return number(integral, negative, mag, overflow);
    }
  }
}

}  // namespace tp::json
