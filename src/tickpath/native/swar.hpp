// Eight bytes at a time (SWAR: SIMD within a register) for the fast paths: digit runs, plain strings.
//
// Portable C++17 over uint64_t (little-endian: the first byte is the low lane), no intrinsics beyond
// __builtin_ctzll, so the build needs no -march flag. A load near the end of a frame pads with zero
// bytes, which every scanner here treats as a stop (a NUL is neither a digit nor a string byte).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "decimal.hpp"

namespace tp::swar {

constexpr uint64_t ONES = 0x0101010101010101ull;
constexpr uint64_t HIGHS = 0x8080808080808080ull;

inline uint64_t load8(const char* p, const char* end) {
  uint64_t v = 0;
  if (end - p >= 8) std::memcpy(&v, p, 8);
  else if (end > p) std::memcpy(&v, p, size_t(end - p));
  return v;
}

// 0x80 in the lane of each byte that is not an ASCII digit.
inline uint64_t nondigits(uint64_t v) {
  uint64_t t = v ^ (ONES * '0');  // digits become 0..9
  return (t | ((t & ~HIGHS) + ONES * 0x76)) & HIGHS;  // no carry between lanes: 0x7f + 0x76 < 0x100
}

// The value of the k (1..8) digits in v's low lanes (the first digit most significant).
inline uint64_t digits_value(uint64_t v, unsigned k) {
  v = (v - ONES * '0') << (8 * (8 - k));  // the digits into the high lanes, zeros (leading) below
  v = v * 10 + (v >> 8);                  // pairs
  v = (((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
       (((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
      32;
  return v;
}

// A run of ASCII digits from q: appends their value to m (m * 10^k + run) and adds their count to
// `count`; returns the first byte after the run. Stops counting past 18 digits (the caller rejects).
inline const char* digit_run(const char* q, const char* end, uint64_t& m, unsigned& count) {
  for (;;) {
    uint64_t v = load8(q, end);
    uint64_t nd = nondigits(v);
    unsigned k = nd ? unsigned(__builtin_ctzll(nd)) >> 3 : 8;
    if (k) m = m * POW10U[k] + digits_value(v, k);
    q += k;
    count += k;
    if (k < 8 || count > 18) return q;
  }
}

// A run of 1-15 digits from q read from two loads, both halves converted independently (Binance's
// ids and times have 9-13); false (nothing read) when the run is longer or q is near the end.
inline bool short_digits(const char* q, const char* end, uint64_t& m, unsigned& count) {
  if (end - q < 8) return false;
  uint64_t v0, v1 = load8(q + 8, end);
  std::memcpy(&v0, q, 8);
  uint64_t n0 = nondigits(v0);
  if (n0) {
    unsigned k = unsigned(__builtin_ctzll(n0)) >> 3;
    m = k ? digits_value(v0, k) : 0;
    count = k;
    return true;
  }
  uint64_t n1 = nondigits(v1);
  if (n1 == 0) return false;
  unsigned k = unsigned(__builtin_ctzll(n1)) >> 3;
  uint64_t high = digits_value(v0, 8);
  m = k ? high * POW10U[k] + digits_value(v1, k) : high;
  count = 8 + k;
  return true;
}

// A decimal of at most 7 characters from s, read from one load: its digits' value (the point
// dropped), how many precede the point, how many follow it. False (nothing decided) when the 8
// bytes do not hold all of it, then followed by a non-digit; the caller checks the grammar's rest
// (a digit before the point, no leading zero, the byte that ends it).
inline bool short_decimal(const char* s, const char* end, uint64_t& m, unsigned& int_digits, unsigned& scale) {
  if (end - s < 8) return false;
  uint64_t v;
  std::memcpy(&v, s, 8);
  uint64_t nd = nondigits(v);
  if (nd == 0) return false;
  unsigned i = unsigned(__builtin_ctzll(nd)) >> 3;
  int_digits = i;
  if (s[i] != '.') {
    scale = 0;
    m = i ? digits_value(v, i) : 0;
    return true;
  }
  uint64_t rest = nd & ~(0xFFull << (8 * i));
  if (rest == 0) return false;  // the fraction runs past the load
  unsigned j = unsigned(__builtin_ctzll(rest)) >> 3;
  scale = j - i - 1;
  if (j == 1) {  // "." alone: no digit at all
    m = 0;
    return true;
  }
  uint64_t low = i ? v & (~0ull >> (64 - 8 * i)) : 0;  // the digits before the point, then those after it
  uint64_t digits = low | ((v >> (8 * (i + 1))) << (8 * i));
  m = digits_value(digits, j - 1);
  return true;
}

// 0x80 in the lane of each byte a plain string cannot hold: '"', '\\', a control byte, or >= 0x80
// (the lowest such lane is exact; lanes above it may be flagged falsely).
inline uint64_t string_stops(uint64_t v) {
  uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
  uint64_t zq = (q - ONES) & ~q, zb = (b - ONES) & ~b, lt = (v - ONES * 0x20) & ~v;
  return (zq | zb | lt | v) & HIGHS;
}

// A plain string's content from q (just after its opening quote): ASCII, no escape, no control
// byte. Returns the closing quote's position, or nullptr when the string is not plain.
inline const char* plain_string(const char* q, const char* end) {
  for (;;) {
    uint64_t s = string_stops(load8(q, end));
    if (s) {
      q += __builtin_ctzll(s) >> 3;
      return q < end && *q == '"' ? q : nullptr;
    }
    q += 8;
  }
}

}  // namespace tp::swar
