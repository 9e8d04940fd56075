// Normalized events as compact native records, turned into Python objects or Arrow columns on demand.
#pragma once
#include <cstdint>
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
  uint32_t off = 0, nb = 0, na = 0;  // l2: levels[off..off+nb) bids then na asks; trade/ticker: strs[off..]
};

struct EventLog {
  std::vector<Ev> events;
  std::vector<std::pair<Decimal, Decimal>> levels;
  std::vector<uint32_t> str_off;  // start of each kept string in `chars` (one extra end offset per string)
  std::string chars;
  std::vector<std::string> reasons{"gap", "snapshot_too_old", "invalid_update", "crossed"};

  void clear() {
    events.clear();
    levels.clear();
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
    Ev& e = push(EvKind::DELTA, sym, seq, E, T, receipt);
    e.x1 = U, e.x2 = u, e.x3 = pu, e.depth = depth;
    e.off = uint32_t(levels.size()), e.nb = uint32_t(b.size()), e.na = uint32_t(a.size());
    for (const auto& x : b) levels.emplace_back(x.price, x.qty);
    for (const auto& x : a) levels.emplace_back(x.price, x.qty);
  }
  void delta_pairs(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, int64_t U, int64_t u, int64_t pu,
                   const std::vector<std::pair<Decimal, Decimal>>& b, const std::vector<std::pair<Decimal, Decimal>>& a,
                   int32_t depth) {
    Ev& e = push(EvKind::DELTA, sym, seq, E, T, receipt);
    e.x1 = U, e.x2 = u, e.x3 = pu, e.depth = depth;
    e.off = uint32_t(levels.size()), e.nb = uint32_t(b.size()), e.na = uint32_t(a.size());
    levels.insert(levels.end(), b.begin(), b.end());
    levels.insert(levels.end(), a.begin(), a.end());
  }
  void snapshot(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, int64_t last,
                const std::vector<Level>& b, const std::vector<Level>& a, int32_t depth) {
    Ev& e = push(EvKind::SNAPSHOT, sym, seq, E, T, receipt);
    e.x1 = last, e.depth = depth;
    e.off = uint32_t(levels.size()), e.nb = uint32_t(b.size()), e.na = uint32_t(a.size());
    for (const auto& x : b) levels.emplace_back(x.price, x.qty);
    for (const auto& x : a) levels.emplace_back(x.price, x.qty);
  }
  void reset(uint32_t sym, int64_t seq, int64_t E, int64_t T, int64_t receipt, uint32_t reason, int64_t last_good) {
    Ev& e = push(EvKind::RESET, sym, seq, E, T, receipt);
    e.reason = reason;
    e.x1 = last_good;
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
