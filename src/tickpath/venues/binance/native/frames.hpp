// Binance market-data frames decoded from the received bytes: the native twin of parse.py.
//
// The same frames are accepted and rejected, with the same reason, as by the pure-Python reference
// (msgspec structs in schemas.py): typed fields in document order, unknown fields skipped, the last of
// a repeated field kept, required fields checked at the end of each object, ids within int64. Prices
// and quantities of depth levels are parsed into exact decimals as they are read; the strings of a
// trade or ticker are kept as sent (views into the frame, or unescaped copies).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../../native/json.hpp"
#include "fast.hpp"
#include "frame.hpp"

namespace tp::binance {

using json::Error;
using json::Reader;
using json::Str;

// The stream kind of a stream name: btcusdt@depth@100ms -> depth, x@kline_1m -> kline (parse.stream_kind).
// All-market names map by parse._ALL_MARKET (!miniTicker@arr -> miniTickerArr); others as spelled.
inline std::string_view stream_kind(std::string_view name) {
  if (!name.empty() && name[0] == '!') {
    std::string_view all = name.substr(1);
    static constexpr std::string_view ALL_MARKET[][2] = {
        {"bookTicker", "bookTicker"},         {"miniTicker@arr", "miniTickerArr"},
        {"ticker@arr", "tickerArr"},          {"markPrice@arr", "markPriceArr"},
        {"markPrice@arr@1s", "markPriceArr"}, {"forceOrder@arr", "forceOrder"},
    };
    for (const auto& m : ALL_MARKET)
      if (all == m[0]) return m[1];
    return all;
  }
  size_t at = name.find('@');
  std::string_view rest = at == std::string_view::npos ? std::string_view() : name.substr(at + 1);
  std::string_view kind = rest.substr(0, rest.find('@'));
  if (kind.substr(0, 6) == "kline_") return "kline";
  return kind;
}

// The low-rate channels' kinds (parse._ENVELOPED beyond the four the core decodes). A combined-stream
// frame of one is handed back whole: the reference judges it by its own decoder (well-formedness of
// every key and string included), so the core does not judge it at all.
inline bool is_channel_kind(std::string_view k) {
  static constexpr std::string_view KINDS[] = {"kline",      "ticker",    "miniTicker",    "markPrice",
                                               "forceOrder", "tickerArr", "miniTickerArr", "markPriceArr"};
  for (auto c : KINDS)
    if (k == c) return true;
  return false;
}

inline Kind kind_of_stream(std::string_view k) {
  if (k == "depth") return Kind::DEPTH;
  if (k == "aggTrade") return Kind::AGG_TRADE;
  if (k == "trade") return Kind::TRADE;
  if (k == "bookTicker") return Kind::BOOK_TICKER;
  // kline, like every other low-rate channel, is UNKNOWN here: read whole as JSON, then handed back
  return Kind::UNKNOWN;
}

inline Kind kind_of_event(std::string_view e) {  // parse._EVENT_KIND
  if (e == "depthUpdate") return Kind::DEPTH;
  if (e == "aggTrade") return Kind::AGG_TRADE;
  if (e == "trade") return Kind::TRADE;
  if (e == "bookTicker") return Kind::BOOK_TICKER;
  return Kind::UNKNOWN;  // kline included: see kind_of_stream
}

class Decoder {
 public:
  // Frames the fast path (fast.hpp) decoded whole: one increment per hit, read by tests and benchmarks
  // (Core.fast_hits) to show which frames took it; the general reader's decisions never depend on it.
  int64_t fast_hits = 0;

  // Decodes one frame into `f`; returns OK, MALFORMED or SCHEMA, or sets f.kind = UNKNOWN (OK).
  Error decode(const char* p, size_t n, Frame& f) {
    f.reset();
    static constexpr char PREFIX[] = "{\"stream\":\"";
    constexpr size_t PL = sizeof(PREFIX) - 1;
    if (n >= PL && std::memcmp(p, PREFIX, PL) == 0) {
      if (fast::enveloped(p, n, PL, f)) {
        ++fast_hits;
        return Error::OK;
      }
      f.reset();  // what the fast path read is forgotten: the general reader starts from nothing
      const char* q = static_cast<const char*>(std::memchr(p + PL, '"', n - PL));
      // No closing quote: the reference takes raw[PL:-1] (found by make fuzz, an over-read here when n == PL).
      size_t len = q ? size_t(q - p - PL) : (n > PL ? n - PL - 1 : 0);
      std::string_view name(p + PL, len);
      std::string_view kind = stream_kind(name);
      Kind k = kind_of_stream(kind);
      if (k != Kind::UNKNOWN) return enveloped(p, n, k, f);
      if (is_channel_kind(kind)) {  // a kline, ticker, ...: the processor decodes it (HANDOFF)
        f.kind = Kind::UNKNOWN;
        return Error::OK;
      }
    }
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    if (i < n && p[i] == '[') {  // a raw all-market array (/ws/!miniTicker@arr): not the core's
      f.kind = Kind::UNKNOWN;
      return Error::OK;
    }
    static constexpr char RAW[] = "{\"e\":\"";
    if (n >= sizeof(RAW) - 1 && std::memcmp(p, RAW, sizeof(RAW) - 1) == 0) {
      if (fast::raw(p, n, f)) {
        ++fast_hits;
        return Error::OK;
      }
      f.reset();
    }
    return general(p, n, f);
  }

  // A REST depth snapshot: {"lastUpdateId", "bids", "asks", "E"?, "T"?}.
  Error snapshot(const char* p, size_t n, int64_t& last, std::vector<LevelUpdate>& bids, std::vector<LevelUpdate>& asks,
                 int64_t& E, int64_t& T, bool& valid);

 private:
  Str key_;
  std::string key_scratch_;

  // {"stream": ..., "data": <kind>} in one pass; only `data` is typed.
  Error enveloped(const char* p, size_t n, Kind k, Frame& f) {
    Reader r(p, n);
    bool have_data = false, first = true;
    if (!r.begin_object()) return r.error;
    while (r.next_key(key_, key_scratch_, first)) {
      if (key_.view == "data") {
        f.reset();
        if (!payload(r, k, f)) return r.error;
        have_data = true;
      } else if (!r.skip()) {
        return r.error;
      }
    }
    if (r.error) return r.error;
    if (!have_data) return Error::SCHEMA;  // checked at the object's end, before what follows it
    return r.at_end() ? Error::OK : Error::MALFORMED;
  }

  Error general(const char* p, size_t n, Frame& f);
  bool payload(Reader& r, Kind k, Frame& f);
  bool depth(Reader& r, Frame& f);
  bool trade(Reader& r, Frame& f, bool agg);
  bool ticker(Reader& r, Frame& f);
  bool control(Reader& r, Frame& f);
  bool levels(Reader& r, std::vector<LevelUpdate>& out, bool& valid);
  // The tag field `e`: msgspec reads a value of another type to its end before it rejects it.
  bool tag(Reader& r, std::string_view want) {
    if (r.peek() != '"') return r.skip() && r.fail(Error::SCHEMA);
    Str v;
    if (!r.string(v, f_scratch_)) return false;
    return v.view == want || r.fail(Error::SCHEMA);
  }
  bool kept(Reader& r, Frame& f, int slot, std::string_view& out) {
    Str v;
    if (!r.string(v, f.scratch)) return false;
    if (v.escaped) {
      f.own[slot].assign(v.view);
      out = f.own[slot];
    } else {
      out = v.view;
    }
    return true;
  }
  bool opt_int(Reader& r, int64_t& out) {
    if (r.peek() == 'n') {
      if (!r.null()) return r.fail(Error::MALFORMED);
      out = NO_INT;
      return true;
    }
    return r.int64(out);
  }
  std::string f_scratch_;
};

inline bool Decoder::payload(Reader& r, Kind k, Frame& f) {
  switch (k) {
    case Kind::DEPTH: return depth(r, f);
    case Kind::AGG_TRADE: return trade(r, f, true);
    case Kind::TRADE: return trade(r, f, false);
    case Kind::BOOK_TICKER: return ticker(r, f);
    default: return r.fail(Error::SCHEMA);
  }
}

inline bool Decoder::levels(Reader& r, std::vector<LevelUpdate>& out, bool& valid) {
  out.clear();
  if (!r.begin_array()) return false;
  bool first = true;
  std::string s1, s2;
  while (r.next_element(first)) {
    std::string_view fp, fq;
    if (r.decimal_pair(fp, fq)) {
      LevelUpdate& u = out.emplace_back();
      if (make_update(fp.data(), fp.size(), fq.data(), fq.size(), u)) {
        u.ps = fp.data(), u.pn = uint8_t(fp.size()), u.qs = fq.data(), u.qn = uint8_t(fq.size());
      } else {
        valid = false;
      }
      continue;
    }
    if (!r.begin_array()) return false;
    Str p, q;
    bool inner = true;
    if (!r.next_element(inner)) return r.error ? false : r.fail(Error::SCHEMA);
    if (!r.string(p, s1)) return false;
    if (!r.next_element(inner)) return r.error ? false : r.fail(Error::SCHEMA);
    if (!r.string(q, s2)) return false;
    if (r.next_element(inner)) {  // a third element: too long (as msgspec: a trailing comma is not JSON)
      char c = r.peek();
      return r.fail(c == ']' || c == '\0' ? Error::MALFORMED : Error::SCHEMA);
    }
    if (r.error) return false;
    LevelUpdate u;
    if (!make_update(p.view.data(), p.view.size(), q.view.data(), q.view.size(), u)) valid = false;
    out.push_back(u);
  }
  return r.error == Error::OK;
}

inline bool Decoder::depth(Reader& r, Frame& f) {
  if (!r.begin_object()) return false;
  bool first = true, hE = false, hs = false, hU = false, hu = false, hb = false, ha = false;
  bool bv = true, av = true;
  while (r.next_key(key_, key_scratch_, first)) {
    std::string_view k = key_.view;
    bool ok;
    // One switch on the key's first byte instead of a string comparison per field.
    // ("pu" is 'P': a one-letter key "p" is not a depth field, found by make fuzz.)
    switch (k.size() == 1 ? (k[0] == 'P' ? '\0' : k[0]) : k == "pu" ? 'P' : '\0') {
      case 'e': ok = tag(r, "depthUpdate"); break;
      case 'E': ok = r.int64(f.E), hE = true; break;
      case 's': ok = kept(r, f, 0, f.s), hs = true; break;
      case 'U': ok = r.int64(f.U), hU = true; break;
      case 'u': ok = r.int64(f.u), hu = true; break;
      case 'b': bv = true, ok = levels(r, f.b, bv), hb = true; break;
      case 'a': av = true, ok = levels(r, f.a, av), ha = true; break;
      case 'T': ok = opt_int(r, f.T); break;
      case 'P': ok = opt_int(r, f.pu); break;
      default: ok = r.skip();
    }
    if (!ok) return false;
  }
  if (r.error) return false;
  if (!(hE && hs && hU && hu && hb && ha)) return r.fail(Error::SCHEMA);
  f.levels_valid = bv && av;
  f.kind = Kind::DEPTH;
  return true;
}

inline bool Decoder::trade(Reader& r, Frame& f, bool agg) {
  if (!r.begin_object()) return false;
  bool first = true, hE = false, hs = false, hid = false, hp = false, hq = false, hf = !agg, hl = !agg, hT = false,
       hm = false;
  const char* idkey = agg ? "a" : "t";
  while (r.next_key(key_, key_scratch_, first)) {
    std::string_view k = key_.view;
    bool ok;
    if (k == "e") ok = tag(r, agg ? "aggTrade" : "trade");
    else if (k == "E") ok = r.int64(f.E), hE = true;
    else if (k == "s") ok = kept(r, f, 0, f.s), hs = true;
    else if (k == idkey) ok = r.int64(f.id), hid = true;
    else if (k == "p") ok = kept(r, f, 1, f.str[0]), hp = true;
    else if (k == "q") ok = kept(r, f, 2, f.str[1]), hq = true;
    else if (agg && k == "f") ok = r.int64(f.f), hf = true;
    else if (agg && k == "l") ok = r.int64(f.l), hl = true;
    else if (k == "T") ok = r.int64(f.T), hT = true;
    else if (k == "m") ok = r.boolean(f.m), hm = true;
    else ok = r.skip();
    if (!ok) return false;
  }
  if (r.error) return false;
  if (!(hE && hs && hid && hp && hq && hf && hl && hT && hm)) return r.fail(Error::SCHEMA);
  f.kind = agg ? Kind::AGG_TRADE : Kind::TRADE;
  return true;
}

inline bool Decoder::ticker(Reader& r, Frame& f) {
  if (!r.begin_object()) return false;
  bool first = true, hu = false, hs = false, h[4] = {false, false, false, false};
  static const char* NAMES[4] = {"b", "B", "a", "A"};
  while (r.next_key(key_, key_scratch_, first)) {
    std::string_view k = key_.view;
    bool ok = true, done = false;
    for (int i = 0; i < 4; ++i)
      if (k == NAMES[i]) {
        ok = kept(r, f, 1 + i, f.str[i]);
        h[i] = done = true;
        break;
      }
    if (!done) {
      if (k == "u") ok = r.int64(f.id), hu = true;
      else if (k == "s") ok = kept(r, f, 0, f.s), hs = true;
      else if (k == "E") ok = opt_int(r, f.E);
      else if (k == "T") ok = opt_int(r, f.T);
      else ok = r.skip();
    }
    if (!ok) return false;
  }
  if (r.error) return false;
  if (!(hu && hs && h[0] && h[1] && h[2] && h[3])) return r.fail(Error::SCHEMA);
  f.kind = Kind::BOOK_TICKER;
  return true;
}

// An `id` of int | str | null: an integer of any size, a string, or null.
inline bool id_value(Reader& r, std::string& scratch) {
  char c = r.peek();
  if (c == '"') {
    Str v;
    return r.string(v, scratch);
  }
  if (c == 'n') return r.null() || r.fail(Error::MALFORMED);
  if (c == '-' || (c >= '0' && c <= '9')) {
    const char* before = r.pos();
    if (!r.skip()) return false;
    for (const char* q = before; q < r.pos(); ++q)
      if (*q == '.' || *q == 'e' || *q == 'E') return r.fail(Error::SCHEMA);
    return true;
  }
  return r.mismatch();
}

inline bool Decoder::control(Reader& r, Frame& f) {
  if (!r.begin_object()) return false;
  bool first = true;
  while (r.next_key(key_, key_scratch_, first)) {
    bool ok = key_.view == "id" ? id_value(r, f.scratch) : r.skip();
    if (!ok) return false;
  }
  if (r.error) return false;
  f.kind = Kind::CONTROL;
  return true;
}

// Anything but the fast path: the envelope's stream/data/e/id read first, then the payload (parse._decode_general).
inline Error Decoder::general(const char* p, size_t n, Frame& f) {
  Reader r(p, n);
  bool first = true, has_stream = false, has_e = false, has_id = false;
  std::string stream, e;
  const char* data = nullptr;
  const char* data_end = nullptr;
  if (!r.begin_object()) return r.error;
  while (r.next_key(key_, key_scratch_, first)) {
    std::string_view k = key_.view;
    bool ok;
    if (k == "stream" || k == "e") {
      bool& has = k == "stream" ? has_stream : has_e;
      std::string& dst = k == "stream" ? stream : e;
      if (r.peek() == 'n') {
        ok = r.null() || r.fail(Error::MALFORMED);
        has = false;
      } else {
        Str v;
        ok = r.string(v, f.scratch);
        if (ok) dst.assign(v.view), has = true;
      }
    } else if (k == "data") {
      r.peek();
      data = r.pos();
      ok = r.skip();
      data_end = r.pos();
    } else if (k == "id") {
      bool is_null = r.peek() == 'n';
      ok = id_value(r, f.scratch);
      has_id = !is_null;
    } else {
      ok = r.skip();
    }
    if (!ok) return r.error;
  }
  if (r.error) return r.error;
  if (!r.at_end()) return Error::MALFORMED;
  Kind k;
  const char* body = p;
  const char* body_end = p + n;
  if (has_stream && data != nullptr) {
    std::string_view kind = stream_kind(stream);
    k = kind_of_stream(kind);
    if (k == Kind::UNKNOWN) f.unknown_kind.assign(kind);
    body = data;
    body_end = data_end;
  } else if (has_e) {
    k = kind_of_event(e);
    if (k == Kind::UNKNOWN) f.unknown_kind.assign(e);
  } else if (has_id) {
    k = Kind::CONTROL;
  } else {
    k = Kind::BOOK_TICKER;  // a raw spot bookTicker is the one payload without `e`
  }
  if (k == Kind::UNKNOWN) {
    f.kind = Kind::UNKNOWN;
    return Error::OK;
  }
  Reader pr(body, size_t(body_end - body));
  bool ok = k == Kind::CONTROL ? control(pr, f) : payload(pr, k, f);
  if (!ok) return pr.error;
  if (!pr.at_end()) return Error::MALFORMED;
  return Error::OK;
}

inline Error Decoder::snapshot(const char* p, size_t n, int64_t& last, std::vector<LevelUpdate>& bids,
                               std::vector<LevelUpdate>& asks, int64_t& E, int64_t& T, bool& valid) {
  Reader r(p, n);
  bool first = true, hl = false, hb = false, ha = false, bv = true, av = true;
  E = T = NO_INT;
  if (!r.begin_object()) return r.error;
  while (r.next_key(key_, key_scratch_, first)) {
    std::string_view k = key_.view;
    bool ok;
    if (k == "lastUpdateId") ok = r.int64(last), hl = true;
    else if (k == "bids") bv = true, ok = levels(r, bids, bv), hb = true;
    else if (k == "asks") av = true, ok = levels(r, asks, av), ha = true;
    else if (k == "E") ok = opt_int(r, E);
    else if (k == "T") ok = opt_int(r, T);
    else ok = r.skip();
    if (!ok) return r.error;
  }
  if (r.error) return r.error;
  if (!(hl && hb && ha)) return Error::SCHEMA;
  if (!r.at_end()) return Error::MALFORMED;
  valid = bv && av;
  return Error::OK;
}

}  // namespace tp::binance
