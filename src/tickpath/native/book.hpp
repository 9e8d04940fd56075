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

  size_t size() const { return ranks_.size(); }
  void clear() {
    ranks_.clear();
    vals_.clear();
  }
  double sign() const { return sign_; }
  // The i-th level from the worst (index size() - 1 is the best).
  Level at(size_t i) const { return Level{ranks_[i], vals_[i].price, vals_[i].qty}; }
  double best_rank() const { return ranks_.back(); }

  void set(const LevelUpdate& u) {
    double r = sign_ * u.value;
    size_t i = find(r);
    bool found = i < ranks_.size() && ranks_[i] == r;
    if (u.qty.is_zero()) {
      if (found) {
        ranks_.erase(ranks_.begin() + std::ptrdiff_t(i));
        vals_.erase(vals_.begin() + std::ptrdiff_t(i));
      }
      return;
    }
    if (found) {
      vals_[i] = PQ{u.price, u.qty};
    } else {
      ranks_.insert(ranks_.begin() + std::ptrdiff_t(i), r);
      vals_.insert(vals_.begin() + std::ptrdiff_t(i), PQ{u.price, u.qty});
    }
  }
  // A snapshot: replace everything; zero quantities are skipped, a repeated price keeps the last.
  void load(const std::vector<LevelUpdate>& ups) {
    std::vector<Level> levels;
    levels.reserve(ups.size());
    for (const auto& u : ups)
      if (!u.qty.is_zero()) levels.push_back(Level{sign_ * u.value, u.price, u.qty});
    std::stable_sort(levels.begin(), levels.end(), [](const Level& a, const Level& b) { return a.rank < b.rank; });
    // Duplicates: keep the last occurrence (the reference builds a dict in order).
    clear();
    ranks_.reserve(levels.size());
    vals_.reserve(levels.size());
    for (const auto& l : levels) {
      if (!ranks_.empty() && ranks_.back() == l.rank) {
        vals_.back() = PQ{l.price, l.qty};
      } else {
        ranks_.push_back(l.rank);
        vals_.push_back(PQ{l.price, l.qty});
      }
    }
    ranks_.shrink_to_fit();
    vals_.shrink_to_fit();
  }

 private:
  struct PQ {
    Decimal price, qty;
  };
  double sign_;
  // Ranks apart from the decimals (ascending: best last): a search reads 8 bytes a level, so a side of
  // 1,000 levels is 8 kB of cache lines, not 24 (the search's loads were most of the book's time).
  std::vector<double> ranks_;
  std::vector<PQ> vals_;

  // The first index whose rank is >= r, searched from the best level (the end): updates cluster near
  // the touch (in the USD-M capture 70 % land within 32 levels of it, 97 % within 128, of ~860), so a
  // gallop back from the end (1, 2, 4, ... levels) brackets the answer in log2(distance) steps, then a
  // branch-free binary search inside the bracket (a branch per step would be mispredicted half the time).
  size_t find(double r) const {
    size_t n = ranks_.size();
    const double* rk = ranks_.data();
    if (n == 0 || rk[n - 1] < r) return n;
    size_t hi = n - 1, lo = 0, step = 1;  // rk[hi] >= r throughout
    while (step <= hi) {
      size_t probe = hi - step;
      if (rk[probe] < r) {
        lo = probe + 1;
        break;
      }
      hi = probe;
      step <<= 1;
    }
    const double* base = rk + lo;
    size_t len = hi - lo + 1;
    while (len > 1) {
      size_t half = len / 2;
      base = base[half - 1] < r ? base + half : base;
      len -= half;
    }
    if (*base < r) ++base;
    return size_t(base - rk);
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
    return bids.size() && asks.size() && bids.best_rank() >= -asks.best_rank();
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
    size_t k = side.size();
    for (size_t i = 0; i < n && i < k; ++i) out.push_back(side.at(k - 1 - i));
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
