// Normalized events as compact native records, turned into Python objects or Arrow columns on demand.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../../../native/book.hpp"

namespace tp::binance {

constexpr int64_t NO_INT = INT64_MIN;  // an optional int that is absent or null

enum class EvKind : uint8_t { DELTA, SNAPSHOT, RESET, TRADE, TICKER };

namespace Reason {  // the reasons BookSync itself gives; the engine may register more (EventLog::reason_id)
constexpr uint32_t GAP = 0, SNAPSHOT_TOO_OLD = 1, INVALID_UPDATE = 2, CROSSED = 3;
}

struct Ev {
  EvKind kind;
  bool side_sell = false;  // trade: the taker sold
  bool agg = false;        // trade: from @aggTrade (first/last ids set)
  int32_t depth = -1;      // l2: top-N depth, -1 for full depth
  uint32_t sym = 0;
  uint32_t reason = 0;   // reset
  int64_t seq = 0, E = 0, T = 0, receipt = 0;
  int64_t x1 = 0, x2 = 0, x3 = 0;  // delta: U u pu; snapshot: lastUpdateId; reset: last good; trade: id f l; ticker: u
  // l2: bid levels [off, off + nb) and ask levels [off2, off2 + na) of the log's sides; trade/ticker: strs[off..]
  uint32_t off = 0, off2 = 0, nb = 0, na = 0;
};

// Copies n bytes with a few overlapping word moves, never past either end (the level strings are
// 1-18 bytes: a call to memcpy, or std::string::append's checks, cost more than the copy).
inline void copy_short(char* dst, const char* src, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    std::memcpy(&a, src, 8), std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8), std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    std::memcpy(&a, src, 4), std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4), std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0 && n < 4) {
    dst[0] = src[0], dst[n / 2] = src[n / 2], dst[n - 1] = src[n - 1];
  } else if (n > 16) {
    std::memcpy(dst, src, n);
  }
}

struct StrCol {  // a string column: int32 offsets + UTF-8 data (Arrow's layout)
  std::vector<int32_t> offsets{0};
  void push(std::string_view s) {
    char* at = room(s.size());
    copy_short(at, s.data(), s.size());
    used_ += s.size();
    offsets.push_back(int32_t(used_));
  }
  void push(Decimal d) {
    used_ += format_decimal(room(DECIMAL_CHARS), d);
    offsets.push_back(int32_t(used_));
  }
  size_t size() const { return offsets.size() - 1; }
  std::string_view bytes() const { return std::string_view(buf_.data(), used_); }  // the data buffer
  std::string_view at(size_t i) const {
    return bytes().substr(size_t(offsets[i]), size_t(offsets[i + 1] - offsets[i]));
  }
  void clear() {
    offsets.resize(1);
    used_ = 0;
  }

 private:
  std::string buf_;  // [0, used_) is the data; the rest is room grown ahead (kept across clear())
  size_t used_ = 0;
  char* room(size_t n) {
    if (buf_.size() - used_ < n) buf_.resize(std::max(buf_.size() * 2, used_ + n + 256));
    return buf_.data() + used_;
  }
};

// One side's levels of every pending l2 event, in event order, as the strings they are stored as: the
// children of the l2 table's list<struct<price, qty>> column, ready as they are.
struct LevelStrings {
  StrCol price, qty;
  size_t size() const { return price.size(); }
  void clear() {
    price.clear();
    qty.clear();
  }
  // A level as sent: its spelling straight from the frame when the decoder kept it (the common case), else
  // printed from the exact decimal (the same string: decimal.hpp keeps the spelling).
  void push(const LevelUpdate& u) {
    if (u.ps != nullptr) {
      price.push(std::string_view(u.ps, u.pn));
      qty.push(std::string_view(u.qs, u.qn));
    } else {
      price.push(u.price);
      qty.push(u.qty);
    }
  }
  void push(Decimal p, Decimal q) {
    price.push(p);
    qty.push(q);
  }
};

struct EventLog {
  std::vector<Ev> events;
  LevelStrings bids, asks;
  std::vector<uint32_t> str_off;  // start of each kept string in `chars` (one extra end offset per string)
  std::string chars;
  std::vector<std::string> reasons{"gap", "snapshot_too_old", "invalid_update", "crossed"};

  void clear() {
    events.clear();
    bids.clear();
    asks.clear();
    str_off.clear();
    chars.clear();
  }
  size_t size() const { return events.size(); }

  uint32_t reason_id(std::string_view r) {
    for (size_t i = 0; i < reasons.size(); ++i)
      if (reasons[i] == r) return uint32_t(i);
    reasons.emplace_back(r);
    return uint32_t(reasons.size() - 1);
  }

  Ev& push(EvKind k, uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt) {
    Ev& e = events.emplace_back();
    e.kind = k;
    e.sym = sym;
    e.seq = seq;
    e.E = E;
    e.T = T;
    e.receipt = receipt;
    return e;
  }
  void delta(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, int64_t U, int64_t u, int64_t pu,
             const std::vector<LevelUpdate>& b, const std::vector<LevelUpdate>& a, int32_t depth) {
    Ev& e = l2(EvKind::DELTA, sym, seq, E, T, receipt, b.size(), a.size());
    e.x1 = U, e.x2 = u, e.x3 = pu, e.depth = depth;
    for (const auto& x : b) bids.push(x);
    for (const auto& x : a) asks.push(x);
  }
  void delta_pairs(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, int64_t U, int64_t u, int64_t pu,
                   const std::vector<std::pair<Decimal, Decimal>>& b, const std::vector<std::pair<Decimal, Decimal>>& a,
                   int32_t depth) {
    Ev& e = l2(EvKind::DELTA, sym, seq, E, T, receipt, b.size(), a.size());
    e.x1 = U, e.x2 = u, e.x3 = pu, e.depth = depth;
    for (const auto& x : b) bids.push(x.first, x.second);
    for (const auto& x : a) asks.push(x.first, x.second);
  }
  void snapshot(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, int64_t last,
                const std::vector<Level>& b, const std::vector<Level>& a, int32_t depth) {
    Ev& e = l2(EvKind::SNAPSHOT, sym, seq, E, T, receipt, b.size(), a.size());
    e.x1 = last, e.depth = depth;
    for (const auto& x : b) bids.push(x.price, x.qty);
    for (const auto& x : a) asks.push(x.price, x.qty);
  }
  void reset(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, uint32_t reason, int64_t last_good) {
    Ev& e = l2(EvKind::RESET, sym, seq, E, T, receipt, 0, 0);
    e.reason = reason;
    e.x1 = last_good;
  }
  Ev& l2(EvKind k, uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, size_t nb, size_t na) {
    Ev& e = push(k, sym, seq, E, T, receipt);
    e.off = uint32_t(bids.size()), e.off2 = uint32_t(asks.size()), e.nb = uint32_t(nb), e.na = uint32_t(na);
    return e;
  }
  void strings(Ev& e, std::initializer_list<std::string_view> ss) {
    e.off = uint32_t(str_off.size());
    for (auto s : ss) {
      str_off.push_back(uint32_t(chars.size()));
      chars.append(s);
    }
    str_off.push_back(uint32_t(chars.size()));
    e.nb = uint32_t(ss.size());
  }
  std::string_view str(const Ev& e, uint32_t i) const {
    uint32_t a = str_off[e.off + i], b = str_off[e.off + i + 1];
    return std::string_view(chars).substr(a, b - a);
  }
};

}  // namespace tp::binance
