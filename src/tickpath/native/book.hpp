// The L2 book in native memory: the same model as tickpath.book.orderbook (the pure-Python reference).
//
// A side is one vector of 24-byte levels sorted by rank (the price as a double, negated for asks), so the
// best level is the last element on both sides: updates cluster near the touch, and inserting or
// erasing near the end of a vector moves few bytes. A double keys a price of at most 15 significant
// digits exactly, and two spellings of one price share a key; the level keeps the latest spelling.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "decimal.hpp"

namespace tp {

struct Level {
  double rank;
  Decimal price;
  Decimal qty;
};

struct LevelUpdate {  // one [price, qty] pair as sent, already parsed
  Decimal price;
  Decimal qty;
  double value;  // the price as a double (0 when invalid)
  // The pair's spelling in the frame (valid while the frame is), or null: an event then prints the decimals.
  const char* ps = nullptr;
  const char* qs = nullptr;
  uint8_t pn = 0, qn = 0;
  bool valid;
};

// Validates a price/qty pair by the reference's rules: price > 0 with at most 15 significant digits,
// quantity >= 0, both by the decimal grammar.
inline bool make_update(const char* p, size_t pn, const char* q, size_t qn, LevelUpdate& out) {
  out.valid = false;
  ParsedDecimal price;
  if (!parse_decimal(p, pn, price) || !parse_decimal(q, qn, out.qty)) return false;
  if (price.d.is_zero() || price.significant > MAX_PRICE_SIGNIFICANT) return false;
  out.price = price.d;
  out.value = to_double(price);
  out.valid = true;
  return true;
}

class Side {
 public:
  explicit Side(double sign) : sign_(sign) {}
  std::vector<Level> levels;  // ascending rank: best last

  size_t size() const { return levels.size(); }
  void clear() { levels.clear(); }
  double sign() const { return sign_; }

  void set(const LevelUpdate& u) {
    double r = sign_ * u.value;
    auto it = find(r);
    if (u.qty.is_zero()) {
      if (it != levels.end() && it->rank == r) levels.erase(it);
      return;
    }
    if (it != levels.end() && it->rank == r) {
      it->price = u.price;
      it->qty = u.qty;
    } else {
      levels.insert(it, Level{r, u.price, u.qty});
    }
  }
  // A snapshot: replace everything; zero quantities are skipped, a repeated price keeps the last.
  void load(const std::vector<LevelUpdate>& ups) {
    levels.clear();
    levels.reserve(ups.size());
    for (const auto& u : ups)
      if (!u.qty.is_zero()) levels.push_back(Level{sign_ * u.value, u.price, u.qty});
    std::stable_sort(levels.begin(), levels.end(), [](const Level& a, const Level& b) { return a.rank < b.rank; });
    // Duplicates: keep the last occurrence (the reference builds a dict in order).
    std::vector<Level> out;
    out.reserve(levels.size());
    for (const auto& l : levels) {
      if (!out.empty() && out.back().rank == l.rank) out.back() = l;
      else out.push_back(l);
    }
    levels.swap(out);
    levels.shrink_to_fit();
  }
  const Level* best() const { return levels.empty() ? nullptr : &levels.back(); }

 private:
  double sign_;
  // The first level whose rank is >= r. Most updates land near the best level (the end): the last
  // few levels are scanned first, then a binary search over the rest.
  std::vector<Level>::iterator find(double r) {
    size_t n = levels.size();
    size_t lo = n > 8 ? n - 8 : 0;
    if (n == 0 || levels[n - 1].rank < r) return levels.end();
    if (levels[lo].rank < r) {
      size_t i = n - 1;
      while (levels[i - 1].rank >= r) --i;
      return levels.begin() + std::ptrdiff_t(i);
    }
    // Branch-free binary search: updates land anywhere in the book, so a branch per step would be
    // mispredicted half the time (it was half of the book's cost, measured).
    const Level* base = levels.data();
    size_t len = lo;
    while (len > 1) {
      size_t half = len / 2;
      base = base[half - 1].rank < r ? base + half : base;
      len -= half;
    }
    if (len == 1 && base->rank < r) ++base;
    return levels.begin() + (base - levels.data());
  }
};

struct Book {
  Side bids{1.0};
  Side asks{-1.0};
  void clear() {
    bids.clear();
    asks.clear();
  }
  bool crossed() const {
    return !bids.levels.empty() && !asks.levels.empty() && bids.levels.back().rank >= -asks.levels.back().rank;
  }
};

// The last published best N levels of a side, and the changes that bring a consumer's copy up to date
// (tickpath.book.topn.TopNWindow): deletes of levels that left first (in published order), then the
// levels that are new or changed, best first.
class Window {
 public:
  std::vector<Level> bids, asks;  // best first
  void clear() {
    bids.clear();
    asks.clear();
  }
  static void take(const Side& side, size_t n, std::vector<Level>& out) {
    out.clear();
    const auto& lv = side.levels;
    for (size_t i = 0; i < n && i < lv.size(); ++i) out.push_back(lv[lv.size() - 1 - i]);
  }
  // Appends (price, qty) changes of one side to `changes`; updates `old` to the new window.
  static void diff(std::vector<Level>& old, const Side& side, size_t n, std::vector<std::pair<Decimal, Decimal>>& changes,
                   std::vector<Level>& scratch) {
    take(side, n, scratch);
    // Both windows are sorted best first (rank descending): one merge walk each way.
    size_t j = 0;
    for (const auto& o : old) {
      while (j < scratch.size() && scratch[j].rank > o.rank) ++j;
      if (j >= scratch.size() || scratch[j].rank != o.rank) changes.emplace_back(o.price, Decimal{0});
    }
    j = 0;
    for (const auto& c : scratch) {
      while (j < old.size() && old[j].rank > c.rank) ++j;
      const Level* prev = (j < old.size() && old[j].rank == c.rank) ? &old[j] : nullptr;
      if (prev == nullptr || prev->qty != c.qty || prev->price != c.price) changes.emplace_back(c.price, c.qty);
    }
    old.swap(scratch);
  }
};

}  // namespace tp
