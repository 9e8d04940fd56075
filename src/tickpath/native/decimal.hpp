// Exact decimal strings as one 64-bit word: the spelling is kept, so a level prints as it was sent.
//
// The accepted grammar is the one Binance uses for prices and quantities, and the one the pure-Python
// reference (tickpath.book.orderbook.check_decimal) enforces: (0|[1-9][0-9]*)(\.[0-9]+)?, at most
// MAX_DIGITS digits. Such a string is reproduced exactly from (mantissa, scale), trailing zeros
// included, so the book can store 8 bytes instead of a string.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tp {

constexpr int MAX_DIGITS = 17;         // 10^17 < 2^57: the mantissa and a 5-bit scale fit in 64 bits
constexpr int MAX_PRICE_SIGNIFICANT = 15;  // a double keys such a price exactly (see book.hpp)

struct Decimal {
  uint64_t packed = 0;  // mantissa << 5 | scale
  uint64_t mantissa() const { return packed >> 5; }
  int scale() const { return int(packed & 31); }
  bool is_zero() const { return mantissa() == 0; }
  bool operator==(const Decimal& o) const { return packed == o.packed; }
  bool operator!=(const Decimal& o) const { return packed != o.packed; }
};

constexpr uint64_t POW10U[] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                               100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
                               10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
                               100000000000000000ull, 1000000000000000000ull};

struct ParsedDecimal {
  Decimal d;
  // As the reference counts them (orderbook._check_price): leading zeros never count, and with a
  // point, the zeros at the end of all the digits do not either.
  int significant;
  int fraction_zeros;  // zeros at the end of the fraction: removed before converting to double
};

// Decimal digits of m > 0: from its bit length, without a loop (a loop was a quarter of the parse).
inline int digits10(uint64_t m) {
  int t = ((64 - __builtin_clzll(m)) * 1233) >> 12;  // floor(log10(2^bits)), one off at most
  return t - (m < POW10U[t]) + 1;
}

// What the book key needs of a decimal of mantissa m and scale `scale`, as the reference counts it from
// the spelling (orderbook._check_price): with a point, the zeros ending all the digits (the fraction's
// and, past its point, the integer's) are not significant, and those in the fraction are removed
// before converting to double. m's trailing zeros are the spelling's: a spelling adds only leading ones.
// The one place this rule lives: parse_decimal_t, the fast path's levels and a buffered level's replay.
inline void price_counts(uint64_t m, int scale, ParsedDecimal& out) {
  if (m == 0) {
    out.significant = 0;
    out.fraction_zeros = 0;
    return;
  }
  int trailing = 0;
  if (scale > 0)
    for (uint64_t t = m; t % 10 == 0; t /= 10) ++trailing;  // by a constant: a multiply, not a divide
  out.significant = digits10(m) - trailing;
  out.fraction_zeros = trailing < scale ? trailing : scale;
}

// Parses s[0..n) by the grammar above; false when it does not match. `Full` also counts what the book
// key needs (significant digits, the fraction's trailing zeros); a quantity needs neither.
template <bool Full>
inline bool parse_decimal_t(const char* s, size_t n, ParsedDecimal& out) {
  if (n == 0 || n > size_t(MAX_DIGITS) + 1) return false;
  size_t i = 0;
  uint64_t m = 0;
  unsigned c;
  while (i < n && (c = unsigned(s[i] - '0')) < 10) m = m * 10 + c, ++i;
  size_t int_digits = i;
  if (int_digits == 0 || (s[0] == '0' && int_digits > 1)) return false;  // no digit, or a leading zero
  int scale = 0;
  if (i < n) {
    if (s[i] != '.') return false;
    size_t f = ++i;
    while (i < n && (c = unsigned(s[i] - '0')) < 10) m = m * 10 + c, ++i;
    scale = int(i - f);
    if (scale == 0 || i != n) return false;
  }
  if (int_digits + size_t(scale) > size_t(MAX_DIGITS)) return false;
  out.d.packed = (m << 5) | uint64_t(scale);
  if (Full) price_counts(m, scale, out);
  return true;
}

inline bool parse_decimal(const char* s, size_t n, ParsedDecimal& out) { return parse_decimal_t<true>(s, n, out); }

inline bool parse_decimal(const char* s, size_t n, Decimal& out) {
  ParsedDecimal p;
  if (!parse_decimal_t<false>(s, n, p)) return false;
  out = p.d;
  return true;
}

// The book's key for a decimal: the value as a double, m * 10^-scale with the fraction's trailing
// zeros removed first, so every spelling of one value ("7.611", "7.6110") gets the same key. With at
// most 15 significant digits two different values differ by more than 4 ulps, so a multiplication
// by 10^-scale (error < 1 ulp) keeps them apart and in order: exact keys without a division.
inline double to_double(const ParsedDecimal& p) {
  static constexpr double INV_POW10[] = {1e0,   1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,
                                         1e-8,  1e-9,  1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15,
                                         1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22};
  uint64_t m = p.d.mantissa();
  for (int i = 0; i < p.fraction_zeros; ++i) m /= 10;  // by a constant: a multiply, not a divide
  int s = p.d.scale() - p.fraction_zeros;
  return s == 0 ? double(m) : double(m) * INV_POW10[s];
}

constexpr size_t DECIMAL_CHARS = 24;  // room for a spelling: at most MAX_DIGITS digits, a point, a leading zero

// Writes d's spelling to out (room for DECIMAL_CHARS); returns its length.
inline size_t format_decimal(char* out, Decimal d) {
  char buf[DECIMAL_CHARS];
  uint64_t m = d.mantissa();
  int s = d.scale();
  int n = 0;
  do {
    buf[n++] = char('0' + m % 10);
    m /= 10;
  } while (m || n <= s);  // at least one digit before the point
  size_t len = 0;
  for (int i = n - 1; i >= 0; --i) {
    out[len++] = buf[i];
    if (i == s && s > 0) out[len++] = '.';
  }
  return len;
}

inline void append_decimal(std::string& out, Decimal d) {
  char buf[DECIMAL_CHARS];
  out.append(buf, format_decimal(buf, d));
}

inline std::string decimal_str(Decimal d) {
  std::string s;
  append_decimal(s, d);
  return s;
}

}  // namespace tp
