// ingest's native decoder: bus payloads (tickpath's canonical event JSON, as msgspec encodes it)
// straight into Arrow-layout column buffers, one set per storage table, with no Python object per
// message or field. No Python here: module.cpp binds it.
//
// It is exact or it declines. The layout (which tags exist, each tag's keys, value types, literal
// values, nullability, and the column each key lands in) comes from Python, built from the event
// structs themselves (tickpath/ingest/native.py), so this file knows no event type. A payload is
//   - taken: every key of its tag present once, no other key, every value of its declared type;
//   - odd: it does not start with {"type":"<known tag>" (the Python side decodes it on its own);
//   - or it refuses its whole table: anything else this parser does not fully understand (an
//     escape it does not decode, a float where an int belongs, a missing or unknown key, ...). The
//     Python reference then decodes that table's payloads, so the result is the reference's.
// Strings are validated as UTF-8 (what msgspec, and Arrow, accept); simple escapes are decoded,
// \u escapes decline. Integers are int64 (an int32 column checks its range).
#pragma once
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace tp::ingest {

enum class VType : uint8_t { INT = 0, STR = 1, BOOL = 2, LEVELS = 3 };
enum class CType : uint8_t { I64 = 0, I32 = 1, STR = 2, BOOL = 3, LEVELS = 4 };

struct KeySpec {
  std::string key;
  int col;  // column index in the table, -1: checked, not stored (the channel)
  VType type;
  bool nullable;
  std::vector<std::string> allowed;  // a literal's values (empty: any)
  bool i32 = false;                   // its column is int32: the value must fit
};

struct TagSpec {
  std::string tag;
  int table;
  int kind_col;  // column set to `kind` for every row of this tag (-1: none)
  std::string kind;
  std::vector<KeySpec> keys;  // in canonical order (the order msgspec writes them)
  std::vector<int> absent;    // columns of the table no key (nor the kind) sets
};

struct Column {
  CType type;
  std::vector<int64_t> i64;
  std::vector<int32_t> i32;
  std::vector<uint8_t> valid;  // LSB-first validity bitmap (I64, I32, STR, BOOL)
  size_t nulls = 0;
  std::vector<int32_t> off{0};  // STR: value offsets; LEVELS: list offsets (into the level rows)
  std::string data;              // STR
  std::vector<uint8_t> bits;     // BOOL values, LSB-first
  std::vector<int32_t> p_off{0}, q_off{0};  // LEVELS: price and qty string offsets
  std::string p_data, q_data;
  size_t rows = 0;

  explicit Column(CType t) : type(t) {}

  void clear() {  // for the next batch, keeping the capacity (no allocation on the steady path)
    i64.clear(), i32.clear(), valid.clear(), bits.clear(), data.clear(), p_data.clear(), q_data.clear();
    off.assign(1, 0), p_off.assign(1, 0), q_off.assign(1, 0);
    nulls = rows = 0;
  }

  void bit(std::vector<uint8_t>& v, bool on) {
    if ((rows & 7) == 0) v.push_back(0);
    if (on) v.back() |= uint8_t(1u << (rows & 7));
  }
};

struct Table {
  std::vector<Column> cols;
  std::vector<int64_t> idx;  // each row's position in the batch
  bool refused = false;
};

// One parsed value of the payload being decoded (views into the payload or the scratch string).
struct Value {
  bool null = false;
  int64_t i = 0;
  std::string_view s;
  size_t lv_begin = 0, lv_end = 0;  // LEVELS: range in Decoder::levels_
};

class Decoder {
 public:
  Decoder(std::vector<TagSpec> tags, std::vector<std::vector<CType>> tables) : tags_(std::move(tags)) {
    for (auto& t : tables) {
      Table tb;
      for (CType c : t) tb.cols.emplace_back(c);
      tables_.push_back(std::move(tb));
    }
    for (auto& t : tags_) {
      std::vector<char> set(tables[size_t(t.table)].size(), 0);
      for (auto& k : t.keys) {
        k.i32 = k.col >= 0 && tables[size_t(t.table)][size_t(k.col)] == CType::I32;
        if (k.col >= 0) set[size_t(k.col)] = 1;
      }
      if (t.kind_col >= 0) set[size_t(t.kind_col)] = 1;
      for (size_t c = 0; c < set.size(); ++c)
        if (!set[c]) t.absent.push_back(int(c));
    }
    vals_.resize(64);
  }

  void reset() {
    for (auto& t : tables_) {
      for (auto& c : t.cols) c.clear();
      t.idx.clear();
      t.refused = false;
    }
    odd_.clear();
  }

  // Decodes payload `pos`; returns 0 taken, 1 odd, 2 its table refused (or was already).
  int feed(std::string_view p, int64_t pos) {
    int t = tag_of(p);
    if (t < 0) {
      odd_.push_back(pos);
      return 1;
    }
    const TagSpec& spec = tags_[size_t(t)];
    Table& tb = tables_[size_t(spec.table)];
    if (tb.refused) return 2;
    if (!parse(p, spec)) {
      tb.refused = true;
      return 2;
    }
    append(tb, spec);
    tb.idx.push_back(pos);
    return 0;
  }

  std::vector<Table>& tables() { return tables_; }
  const std::vector<int64_t>& odd() const { return odd_; }

 private:
  std::vector<TagSpec> tags_;
  std::vector<Table> tables_;
  std::vector<int64_t> odd_;
  std::vector<Value> vals_;
  std::vector<std::pair<std::string_view, std::string_view>> levels_;
  std::deque<std::string> scratch_;  // unescaped strings of the payload (a deque: views stay valid)
  size_t scratch_used_ = 0;
  const char* p_ = nullptr;
  const char* end_ = nullptr;

  static constexpr std::string_view PREFIX = "{\"type\":\"";

  int tag_of(std::string_view p) const {
    if (p.size() < PREFIX.size() + 2 || p.substr(0, PREFIX.size()) != PREFIX) return -1;
    std::string_view rest = p.substr(PREFIX.size());
    for (size_t i = 0; i < tags_.size(); ++i) {
      const std::string& tag = tags_[i].tag;
      if (rest.size() > tag.size() && rest[tag.size()] == '"' && rest.compare(0, tag.size(), tag) == 0) return int(i);
    }
    return -1;
  }

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool lit(std::string_view w) {
    if (size_t(end_ - p_) < w.size() || std::memcmp(p_, w.data(), w.size()) != 0) return false;
    p_ += w.size();
    return true;
  }

  // A UTF-8 sequence starting at p_ (a lead byte >= 0x80), as Python's strict decoder accepts it.
  bool utf8() {
    auto u = [](const char* c) { return uint8_t(*c); };
    uint8_t b = u(p_);
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) n = 1;
    else if (b == 0xE0) n = 2, lo = 0xA0;
    else if (b == 0xED) n = 2, hi = 0x9F;  // no surrogates
    else if (b >= 0xE1 && b <= 0xEF) n = 2;
    else if (b == 0xF0) n = 3, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) n = 3;
    else if (b == 0xF4) n = 3, hi = 0x8F;
    else return false;
    if (size_t(end_ - p_) <= n) return false;
    if (u(p_ + 1) < lo || u(p_ + 1) > hi) return false;
    for (size_t k = 2; k <= n; ++k)
      if (u(p_ + k) < 0x80 || u(p_ + k) > 0xBF) return false;
    p_ += n + 1;
    return true;
  }

  // A JSON string at p_ (after its opening quote). Escapes other than \u are decoded into scratch.
  bool string(std::string_view& out) {
    const char* start = p_;
    std::string* buf = nullptr;
    while (p_ < end_) {
      uint8_t c = uint8_t(*p_);
      if (c == '"') {
        if (buf == nullptr) out = std::string_view(start, size_t(p_ - start));
        else out = *buf;
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (buf == nullptr) {
          if (scratch_used_ == scratch_.size()) scratch_.emplace_back();
          buf = &scratch_[scratch_used_++];
          buf->assign(start, size_t(p_ - start));
        }
        if (end_ - p_ < 2) return false;
        char e = p_[1], d;
        switch (e) {
          case '"': d = '"'; break;
          case '\\': d = '\\'; break;
          case '/': d = '/'; break;
          case 'b': d = '\b'; break;
          case 'f': d = '\f'; break;
          case 'n': d = '\n'; break;
          case 'r': d = '\r'; break;
          case 't': d = '\t'; break;
          default: return false;  // \u (and anything invalid): the reference decides
        }
        buf->push_back(d);
        p_ += 2;
        continue;
      }
      const char* before = p_;
      if (c >= 0x80) {
        if (!utf8()) return false;
      } else {
        ++p_;
      }
      if (buf != nullptr) buf->append(before, size_t(p_ - before));
    }
    return false;
  }

  bool integer(int64_t& out) {
    bool neg = p_ < end_ && *p_ == '-';
    if (neg) ++p_;
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') return false;  // leading zero
    uint64_t v = 0;
    const uint64_t limit = neg ? uint64_t(INT64_MAX) + 1 : uint64_t(INT64_MAX);
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      uint64_t d = uint64_t(*p_ - '0');
      if (v > (limit - d) / 10) return false;  // beyond int64
      v = v * 10 + d;
      ++p_;
    }
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;  // a float
    out = neg ? int64_t(0 - v) : int64_t(v);
    return true;
  }

  bool levels(Value& v) {  // [[str, str], ...]
    v.lv_begin = levels_.size();
    if (!lit("[")) return false;
    ws();
    if (lit("]")) {
      v.lv_end = levels_.size();
      return true;
    }
    for (;;) {
      std::string_view a, b;
      ws();
      if (!lit("[")) return false;
      ws();
      if (!lit("\"") || !string(a)) return false;
      ws();
      if (!lit(",")) return false;
      ws();
      if (!lit("\"") || !string(b)) return false;
      ws();
      if (!lit("]")) return false;
      levels_.emplace_back(a, b);
      ws();
      if (lit("]")) break;
      if (!lit(",")) return false;
    }
    v.lv_end = levels_.size();
    return true;
  }

  bool value(const KeySpec& k, Value& v) {
    v.null = false;
    if (p_ < end_ && *p_ == 'n') {
      if (!k.nullable || !lit("null")) return false;
      v.null = true;
      return true;
    }
    switch (k.type) {
      case VType::INT:
        return integer(v.i) && (!k.i32 || (v.i >= INT32_MIN && v.i <= INT32_MAX));
      case VType::BOOL:
        if (lit("true")) return v.i = 1, true;
        if (lit("false")) return v.i = 0, true;
        return false;
      case VType::LEVELS:
        return levels(v);
      case VType::STR:
        if (!lit("\"") || !string(v.s)) return false;
        if (k.allowed.empty()) return true;
        for (const auto& a : k.allowed)
          if (v.s == a) return true;
        return false;
    }
    return false;
  }

  bool parse(std::string_view p, const TagSpec& spec) {
    p_ = p.data() + PREFIX.size() + spec.tag.size() + 1;  // after {"type":"<tag>"
    end_ = p.data() + p.size();
    levels_.clear();
    scratch_used_ = 0;
    const size_t n = spec.keys.size();
    if (n > 64) return false;
    uint64_t seen = 0;
    size_t hint = 0;
    for (;;) {
      ws();
      if (lit("}")) break;
      if (!lit(",")) return false;
      ws();
      std::string_view key;
      if (!lit("\"") || !string(key)) return false;
      size_t k = hint < n && spec.keys[hint].key == key ? hint : n;
      for (size_t j = 0; k == n && j < n; ++j)
        if (spec.keys[j].key == key) k = j;
      if (k == n || (seen >> k) & 1) return false;  // unknown or repeated key
      seen |= uint64_t(1) << k;
      hint = k + 1;
      ws();
      if (!lit(":")) return false;
      ws();
      if (!value(spec.keys[k], vals_[k])) return false;
    }
    ws();
    if (p_ != end_) return false;  // more than one JSON value
    return seen == (n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1);  // every key present
  }

  static void push_str(std::vector<int32_t>& off, std::string& data, std::string_view s) {
    data.append(s);
    off.push_back(int32_t(data.size()));
  }

  void append(Table& tb, const TagSpec& spec) {
    for (size_t k = 0; k < spec.keys.size(); ++k)
      if (spec.keys[k].col >= 0) put(tb.cols[size_t(spec.keys[k].col)], vals_[k]);
    if (spec.kind_col >= 0) {
      Value kv;
      kv.s = spec.kind;
      put(tb.cols[size_t(spec.kind_col)], kv);
    }
    for (int c : spec.absent) {  // a column this tag has no key for: null (an empty list for levels)
      Value v;
      v.null = tb.cols[size_t(c)].type != CType::LEVELS;
      put(tb.cols[size_t(c)], v);
    }
  }

  void put(Column& c, const Value& v) {
    switch (c.type) {
      case CType::I64:
        c.bit(c.valid, !v.null);
        c.i64.push_back(v.null ? 0 : v.i);
        break;
      case CType::I32:
        c.bit(c.valid, !v.null);
        c.i32.push_back(v.null ? 0 : int32_t(v.i));
        break;
      case CType::BOOL:
        c.bit(c.valid, !v.null);
        c.bit(c.bits, !v.null && v.i != 0);
        break;
      case CType::STR:
        c.bit(c.valid, !v.null);
        push_str(c.off, c.data, v.null ? std::string_view() : v.s);
        break;
      case CType::LEVELS:
        for (size_t i = v.lv_begin; i < v.lv_end; ++i) {
          push_str(c.p_off, c.p_data, levels_[i].first);
          push_str(c.q_off, c.q_data, levels_[i].second);
        }
        c.off.push_back(c.off.back() + int32_t(v.lv_end - v.lv_begin));
        break;
    }
    c.nulls += v.null ? 1 : 0;
    ++c.rows;
  }
};

}  // namespace tp::ingest
