// The fast path for the frames Binance sends most, in the shape it sends them.
//
// depthUpdate, bookTicker and aggTrade payloads, raw or in the combined-stream envelope, with their
// keys in Binance's order, no blanks, no escapes, ASCII strings, non-negative ids and levels that are
// valid decimals. Each expected key is compared with one load; the moment anything differs (another
// order, a blank, an escape, an unknown or repeated key, a null, a sign, an invalid level, a
// truncation) the fast path gives up and the general reader (frames.hpp) decodes the frame from its
// start. It never rejects a frame itself, so every accept/reject decision and reason stays the
// general reader's, and a frame it accepts decodes to exactly what the general reader makes of it
// (tests/native/test_fast_path.py holds the two, and the pure reference, to that).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "../../../native/book.hpp"
#include "../../../native/swar.hpp"
#include "frame.hpp"

namespace tp::binance::fast {

struct Cursor {
  const char* p;
  const char* end;

  template <size_t N>
  bool lit(const char (&s)[N]) {  // a fixed spelling: a few loads and compares once inlined
    constexpr size_t L = N - 1;
    if (size_t(end - p) < L || std::memcmp(p, s, L) != 0) return false;
    p += L;
    return true;
  }
  bool ch(char c) { return p < end && *p == c ? (++p, true) : false; }
  bool done() const { return p == end; }

  // 0 or [1-9][0-9]{0,17}: within int64 by construction (the general reader takes the rest).
  __attribute__((always_inline)) bool id(int64_t& out) {
    uint64_t m = 0;
    unsigned n = 0;
    const char* q = swar::short_digits(p, end, m, n) ? p + n : swar::digit_run(p, end, m, n);
    if (n == 0 || n > 18 || (n > 1 && *p == '0')) return false;
    out = int64_t(m);
    p = q;
    return true;
  }
  // A plain string value (opening quote included): a view into the frame.
  bool str(std::string_view& out) {
    if (!ch('"')) return false;
    const char* q = swar::plain_string(p, end);
    if (q == nullptr) return false;
    out = std::string_view(p, size_t(q - p));
    p = q + 1;
    return true;
  }
  bool boolean(bool& out) {
    if (lit("false")) return out = false, true;
    if (lit("true")) return out = true, true;
    return false;
  }
  // A decimal by decimal.hpp's grammar, up to its closing quote (not consumed): (mantissa, scale) and
  // its spelling's digit counts. False when it does not match (the general reader then judges it).
  __attribute__((always_inline)) bool decimal(uint64_t& m, unsigned& int_digits, unsigned& scale) {
    const char* s = p;
    if (swar::short_decimal(s, end, m, int_digits, scale)) {  // up to 7 characters: one load
      if (int_digits == 0 || (int_digits > 1 && *s == '0') || s[int_digits + scale + (scale > 0)] != '"') return false;
      p = s + int_digits + scale + (scale > 0);
      return true;
    }
    m = 0;
    int_digits = 0;
    const char* q = swar::digit_run(s, end, m, int_digits);
    if (int_digits == 0 || (int_digits > 1 && *s == '0')) return false;
    scale = 0;
    if (q < end && *q == '.') {
      const char* f = q + 1;
      q = swar::digit_run(f, end, m, scale);
      if (scale == 0) return false;
    }
    if (int_digits + scale > unsigned(MAX_DIGITS) || q >= end || *q != '"') return false;
    p = q;
    return true;
  }
  // One level ["<price>","<qty>"] that make_update accepts, as the general reader stores it.
  bool level(LevelUpdate& u) {
    if (!lit("[\"")) return false;
    const char* ps = p;
    uint64_t pm, qm;
    unsigned pi, psc, qi, qsc;
    if (!decimal(pm, pi, psc) || pm == 0) return false;
    const char* pe = p;
    if (!lit("\",\"")) return false;
    const char* qs = p;
    if (!decimal(qm, qi, qsc)) return false;
    const char* qe = p;
    if (!lit("\"]")) return false;
    // The price's key as parse_decimal_t counts it (decimal.hpp's price_counts).
    ParsedDecimal pd;
    pd.d.packed = (pm << 5) | psc;
    price_counts(pm, int(psc), pd);
    if (pd.significant > MAX_PRICE_SIGNIFICANT) return false;
    u.price = pd.d;
    u.qty.packed = (qm << 5) | qsc;
    u.value = to_double(pd);
    u.ps = ps, u.pn = uint8_t(pe - ps), u.qs = qs, u.qn = uint8_t(qe - qs);
    u.valid = true;
    return true;
  }
  bool levels(std::vector<LevelUpdate>& out) {
    out.clear();
    if (!ch('[')) return false;
    if (ch(']')) return true;
    do {
      if (!level(out.emplace_back())) return false;
    } while (ch(','));
    return ch(']');
  }
};

// After `"E":` of a depthUpdate: E, T?, s, U, u, pu?, b, a and the payload's closing brace.
inline bool depth_body(Cursor& c, Frame& f) {
  if (!c.id(f.E)) return false;
  if (c.lit(",\"T\":") && !c.id(f.T)) return false;
  if (!c.lit(",\"s\":") || !c.str(f.s) || !c.lit(",\"U\":") || !c.id(f.U) || !c.lit(",\"u\":") || !c.id(f.u))
    return false;
  if (c.lit(",\"pu\":") && !c.id(f.pu)) return false;
  if (!c.lit(",\"b\":") || !c.levels(f.b) || !c.lit(",\"a\":") || !c.levels(f.a) || !c.ch('}')) return false;
  f.kind = Kind::DEPTH;
  return true;
}

// After `{` of a bookTicker payload: ("e":"bookTicker",)? u, s, b, B, a, A, (T, E)? and its brace.
inline bool ticker_body(Cursor& c, Frame& f) {
  c.lit("\"e\":\"bookTicker\",");
  if (!c.lit("\"u\":") || !c.id(f.id) || !c.lit(",\"s\":") || !c.str(f.s)) return false;
  if (!c.lit(",\"b\":") || !c.str(f.str[0]) || !c.lit(",\"B\":") || !c.str(f.str[1]) || !c.lit(",\"a\":") ||
      !c.str(f.str[2]) || !c.lit(",\"A\":") || !c.str(f.str[3]))
    return false;
  if (c.lit(",\"T\":") && (!c.id(f.T) || !c.lit(",\"E\":") || !c.id(f.E))) return false;
  if (!c.ch('}')) return false;
  f.kind = Kind::BOOK_TICKER;
  return true;
}

// After `"E":` of an aggTrade: E, then a and s in either order (USD-M, spot), p, q, f, l, T, m,
// spot's "M" (ignored, as the reference ignores it) and the brace.
inline bool agg_body(Cursor& c, Frame& f) {
  if (!c.id(f.E)) return false;
  if (c.lit(",\"a\":")) {
    if (!c.id(f.id) || !c.lit(",\"s\":") || !c.str(f.s)) return false;
  } else if (!c.lit(",\"s\":") || !c.str(f.s) || !c.lit(",\"a\":") || !c.id(f.id)) {
    return false;
  }
  if (!c.lit(",\"p\":") || !c.str(f.str[0]) || !c.lit(",\"q\":") || !c.str(f.str[1]) || !c.lit(",\"f\":") ||
      !c.id(f.f) || !c.lit(",\"l\":") || !c.id(f.l) || !c.lit(",\"T\":") || !c.id(f.T) || !c.lit(",\"m\":") ||
      !c.boolean(f.m))
    return false;
  bool ignored;
  if (c.lit(",\"M\":") && !c.boolean(ignored)) return false;
  if (!c.ch('}')) return false;
  f.kind = Kind::AGG_TRADE;
  return true;
}

// A payload of kind k from c (at its `{`); true when it was read whole.
inline bool payload(Cursor& c, Kind k, Frame& f) {
  switch (k) {
    case Kind::DEPTH: return c.lit("{\"e\":\"depthUpdate\",\"E\":") && depth_body(c, f);
    case Kind::AGG_TRADE: return c.lit("{\"e\":\"aggTrade\",\"E\":") && agg_body(c, f);
    case Kind::BOOK_TICKER: return c.ch('{') && ticker_body(c, f);
    default: return false;
  }
}

// The kind of a plain stream name "<symbol>@depth[@<speed>]", "<symbol>@bookTicker" or
// "<symbol>@aggTrade" (as parse.stream_kind names it), and its closing quote; Kind::NONE for any
// other name, which the general classification (frames.hpp) then decides.
inline Kind stream_of(const char* name, const char* end, const char*& close) {
  close = swar::plain_string(name, end);
  if (close == nullptr || close == name || *name == '!') return Kind::NONE;
  const char* at = static_cast<const char*>(std::memchr(name, '@', size_t(close - name)));
  if (at == nullptr) return Kind::NONE;
  std::string_view rest(at + 1, size_t(close - at - 1));
  if (rest == "depth" || rest.substr(0, 6) == "depth@") return Kind::DEPTH;
  if (rest == "bookTicker") return Kind::BOOK_TICKER;
  if (rest == "aggTrade") return Kind::AGG_TRADE;
  return Kind::NONE;
}

// {"stream":"<name>","data":<payload>} (the caller has seen `{"stream":"`, PL bytes): a name
// stream_of knows and its payload in Binance's shape.
inline bool enveloped(const char* p, size_t n, size_t PL, Frame& f) {
  Cursor c{p + PL, p + n};
  const char* close;
  Kind k = stream_of(c.p, c.end, close);
  if (k == Kind::NONE) return false;
  c.p = close;
  return c.lit("\",\"data\":") && payload(c, k, f) && c.ch('}') && c.done();
}

// A raw (non-enveloped) depthUpdate or aggTrade, as /ws/<stream> sends it.
inline bool raw(const char* p, size_t n, Frame& f) {
  Cursor c{p, p + n};
  if (n > 8 && p[6] == 'd') return payload(c, Kind::DEPTH, f) && c.done();
  if (n > 8 && p[6] == 'a') return payload(c, Kind::AGG_TRADE, f) && c.done();
  return false;
}

}  // namespace tp::binance::fast
