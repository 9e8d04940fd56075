// One symbol's book kept in exact sync by Binance's rules: the native twin of sync.py (BookSync).
//
// Spot: after a snapshot the first event has U <= lastUpdateId + 1 <= u, then U == previous u + 1.
// Futures (USD-M and COIN-M): the first has U <= lastUpdateId <= u, then pu == previous u.
// Every decision (buffer, drop, duplicate, gap, invalid, crossed, reset) is the reference's, in the
// same order, so both emit identical events; tests/native drive them side by side.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "../../../native/book.hpp"
#include "events.hpp"
#include "frames.hpp"

namespace tp::binance {

struct SyncStats {
  int64_t snapshots = 0, refetches = 0, ignored_snapshots = 0, resyncs = 0, gaps = 0, duplicates = 0,
          dropped_before_sync = 0, buffer_overflow = 0, crossed = 0, invalid = 0, deltas = 0;
};

// A buffered event, 64 bytes; its levels are the next nb + na entries of the book's level buffer.
struct Pending {
  int64_t U, u, pu, E, T, receipt;
  uint32_t nb, na;
  bool valid;
};

// A buffered level: the two exact decimals (16 bytes; a LevelUpdate is 48). The key is recomputed on
// replay and the spelling printed from the decimals, as it would be anyway once the frame is gone.
struct BufferedLevel {
  Decimal price, qty;
};

// The price's book key, exactly as make_update computed it (decimal.hpp's price_counts, as parsing does).
inline LevelUpdate unbuffer(const BufferedLevel& x) {
  ParsedDecimal p{x.price, 0, 0};
  price_counts(x.price.mantissa(), x.price.scale(), p);
  LevelUpdate u;
  u.price = x.price;
  u.qty = x.qty;
  u.value = to_double(p);
  u.valid = true;
  return u;
}

class BookSync {
 public:
  BookSync(uint32_t sym, bool futures, int depth, size_t max_buffer)
      : sym_(sym), futures_(futures), depth_(depth), max_buffer_(max_buffer) {}

  Book book;
  SyncStats stats;
  bool needs_snapshot = true;
  bool synced = false;
  int64_t last = NO_INT;  // u of the last applied event (lastUpdateId after a snapshot)

  size_t buffered() const { return buffer_.size(); }
  size_t buffered_levels() const { return levels_.size(); }
  int64_t seq() const { return seq_; }

  void on_depth(const Frame& f, int64_t receipt, EventLog& out) {
    // Fast path: a live full-depth book and the next contiguous event.
    if (depth_ < 0 && synced && !awaiting_first_ && f.u > last && (futures_ ? f.pu == last : f.U == last + 1) &&
        f.levels_valid) {
      apply(f.b, f.a);
      if (!book.crossed()) {
        last = f.u;
        stats.deltas++;
        out.delta(sym_, ++seq_, f.E, f.T, receipt, f.U, f.u, f.pu, f.b, f.a, -1);
        return;
      }
      awaiting_first_ = false;
      last = f.u;  // the reference records u before it checks the cross: the reset reports it
      stats.crossed++;
      reset_to(Reason::CROSSED, receipt, f.E, f.T, out);
      return;
    }
    if (synced) live(f.U, f.u, f.pu, f.E, f.T, receipt, f.b, f.a, f.levels_valid, out);
    else buffer(f.U, f.u, f.pu, f.E, f.T, receipt, f.b, f.a, f.levels_valid);
  }

  void on_snapshot(int64_t last_id, const std::vector<LevelUpdate>& bids, const std::vector<LevelUpdate>& asks,
                   bool valid, int64_t E, int64_t T, int64_t receipt, EventLog& out);
  void reset(uint32_t reason, int64_t receipt, EventLog& out) {
    if (synced) {
      reset_to(reason, receipt, NO_INT, NO_INT, out);
    } else {
      clear_buffer();
      needs_snapshot = true;
    }
  }

 private:
  uint32_t sym_;
  bool futures_;
  int depth_;  // -1: full depth
  size_t max_buffer_;
  bool awaiting_first_ = false;
  bool has_pending_ = false;
  int64_t pending_U_ = 0, pending_pu_ = NO_INT;
  int64_t seq_ = 0;
  // Buffered events and their levels in two deques (no allocation per event; blocks freed as drained):
  // a book waiting for a weight-paced snapshot holds up to max_buffer events.
  std::deque<Pending> buffer_;
  std::deque<BufferedLevel> levels_;
  std::vector<LevelUpdate> replay_b_, replay_a_;
  Window window_;
  std::vector<Level> scratch_;
  std::vector<std::pair<Decimal, Decimal>> cb_, ca_;

  void apply(const std::vector<LevelUpdate>& b, const std::vector<LevelUpdate>& a) {
    for (const auto& x : b) book.bids.set(x);
    for (const auto& x : a) book.asks.set(x);
  }
  void buffer(int64_t U, int64_t u, int64_t pu, int64_t E, int64_t T, int64_t receipt,
              const std::vector<LevelUpdate>& b, const std::vector<LevelUpdate>& a, bool valid) {
    if (buffer_.size() >= max_buffer_) {
      const Pending& old = buffer_.front();
      levels_.erase(levels_.begin(), levels_.begin() + std::ptrdiff_t(old.nb + old.na));
      buffer_.pop_front();
      stats.buffer_overflow++;
    }
    if (!valid) {  // its levels are never applied (live() resets on it first): keep none
      buffer_.push_back(Pending{U, u, pu, E, T, receipt, 0, 0, false});
      return;
    }
    buffer_.push_back(Pending{U, u, pu, E, T, receipt, uint32_t(b.size()), uint32_t(a.size()), true});
    for (const auto& x : b) levels_.push_back(BufferedLevel{x.price, x.qty});
    for (const auto& x : a) levels_.push_back(BufferedLevel{x.price, x.qty});
  }
  void clear_buffer() {
    // Swapped out, not cleared: a deque keeps its blocks after clear(), and a book that buffered for a
    // long snapshot wait would hold them for good.
    std::deque<Pending>().swap(buffer_);
    std::deque<BufferedLevel>().swap(levels_);
  }
  void reset_to(uint32_t reason, int64_t receipt, int64_t E, int64_t T, EventLog& out) {
    out.reset(sym_, ++seq_, E, T, receipt, reason, last);
    stats.resyncs++;
    book.clear();
    window_.clear();
    has_pending_ = false;
    clear_buffer();
    synced = false;
    awaiting_first_ = false;
    needs_snapshot = true;
  }
  void live(int64_t U, int64_t u, int64_t pu, int64_t E, int64_t T, int64_t receipt,
            const std::vector<LevelUpdate>& b, const std::vector<LevelUpdate>& a, bool valid, EventLog& out);
  void drop_before_sync(int64_t last_id);
  void replay_buffer(EventLog& out);
};

inline void BookSync::live(int64_t U, int64_t u, int64_t pu, int64_t E, int64_t T, int64_t receipt,
                           const std::vector<LevelUpdate>& b, const std::vector<LevelUpdate>& a, bool valid,
                           EventLog& out) {
  if (awaiting_first_) {
    bool bridged;
    if (futures_) {
      if (u < last) {
        stats.dropped_before_sync++;
        return;
      }
      bridged = U <= last;
    } else {
      if (u <= last) {
        stats.dropped_before_sync++;
        return;
      }
      bridged = U <= last + 1;
    }
    if (!bridged) {  // the snapshot turned out older than the stream: start over
      stats.gaps++;
      reset_to(Reason::SNAPSHOT_TOO_OLD, receipt, E, T, out);
      buffer(U, u, pu, E, T, receipt, b, a, valid);
      return;
    }
  } else if (u <= last) {
    stats.duplicates++;
    return;
  } else if (futures_ ? pu != last : U != last + 1) {
    stats.gaps++;
    reset_to(Reason::GAP, receipt, E, T, out);
    buffer(U, u, pu, E, T, receipt, b, a, valid);
    return;
  }
  if (!valid) {  // the event is lost, so everything after it would be a gap: resync now
    stats.invalid++;
    reset_to(Reason::INVALID_UPDATE, receipt, E, T, out);
    return;
  }
  apply(b, a);
  awaiting_first_ = false;
  last = u;
  if (book.crossed()) {
    stats.crossed++;
    reset_to(Reason::CROSSED, receipt, E, T, out);
    return;
  }
  if (depth_ < 0) {
    stats.deltas++;
    out.delta(sym_, ++seq_, E, T, receipt, U, u, pu, b, a, -1);
    return;
  }
  if (!has_pending_) {
    has_pending_ = true;
    pending_U_ = U;
    pending_pu_ = pu;
  }
  cb_.clear();
  ca_.clear();
  Window::diff(window_.bids, book.bids, size_t(depth_), cb_, scratch_);
  Window::diff(window_.asks, book.asks, size_t(depth_), ca_, scratch_);
  if (cb_.empty() && ca_.empty()) return;  // nothing visible changed: fold into the next delta's range
  has_pending_ = false;
  stats.deltas++;
  out.delta_pairs(sym_, ++seq_, E, T, receipt, pending_U_, u, pending_pu_, cb_, ca_, depth_);
}

inline void BookSync::on_snapshot(int64_t last_id, const std::vector<LevelUpdate>& bids,
                                  const std::vector<LevelUpdate>& asks, bool valid, int64_t E, int64_t T,
                                  int64_t receipt, EventLog& out) {
  if (!needs_snapshot) {
    stats.ignored_snapshots++;
    return;
  }
  drop_before_sync(last_id);
  if (!buffer_.empty() && buffer_.front().U > (futures_ ? last_id : last_id + 1)) {
    stats.refetches++;  // the snapshot is older than the first buffered event
    return;
  }
  if (!valid) {
    stats.invalid++;
    stats.refetches++;
    book.clear();
    return;
  }
  book.bids.load(bids);
  book.asks.load(asks);
  if (book.crossed()) {
    stats.crossed++;
    stats.refetches++;
    book.clear();
    return;
  }
  stats.snapshots++;
  needs_snapshot = false;
  synced = true;
  awaiting_first_ = true;
  last = last_id;
  has_pending_ = false;
  size_t n = depth_ < 0 ? SIZE_MAX : size_t(depth_);
  if (depth_ >= 0) {
    Window::take(book.bids, n, window_.bids);
    Window::take(book.asks, n, window_.asks);
    out.snapshot(sym_, ++seq_, E, T, receipt, last_id, window_.bids, window_.asks, depth_);
  } else {
    Window::take(book.bids, n, scratch_);
    std::vector<Level> a;
    Window::take(book.asks, n, a);
    out.snapshot(sym_, ++seq_, E, T, receipt, last_id, scratch_, a, -1);
  }
  replay_buffer(out);
}

// The buffered events a snapshot of last_id already contains (futures: u < lastUpdateId; spot:
// u <= lastUpdateId) are dropped, with their levels; the rest stay buffered, in order.
inline void BookSync::drop_before_sync(int64_t last_id) {
  std::deque<Pending> kept;
  std::deque<BufferedLevel> kept_levels;
  auto lv = levels_.begin();
  for (const auto& m : buffer_) {
    auto end = lv + std::ptrdiff_t(m.nb + m.na);
    if (futures_ ? m.u < last_id : m.u <= last_id) {
      stats.dropped_before_sync++;
    } else {
      kept.push_back(m);
      kept_levels.insert(kept_levels.end(), lv, end);
    }
    lv = end;
  }
  buffer_.swap(kept);
  levels_.swap(kept_levels);
}

// After a snapshot was applied: the buffered events in order, each as it would have been live; one
// that resets the book (a gap, an invalid or crossing event) puts the rest back in the buffer.
inline void BookSync::replay_buffer(EventLog& out) {
  std::deque<Pending> replay;
  std::deque<BufferedLevel> replay_levels;
  replay.swap(buffer_);
  replay_levels.swap(levels_);
  auto at = replay_levels.begin();
  for (const auto& m : replay) {
    replay_b_.clear();
    replay_a_.clear();
    for (uint32_t i = 0; i < m.nb; ++i) replay_b_.push_back(unbuffer(*at++));
    for (uint32_t i = 0; i < m.na; ++i) replay_a_.push_back(unbuffer(*at++));
    if (synced) live(m.U, m.u, m.pu, m.E, m.T, m.receipt, replay_b_, replay_a_, m.valid, out);
    else buffer(m.U, m.u, m.pu, m.E, m.T, m.receipt, replay_b_, replay_a_, m.valid);
  }
}

}  // namespace tp::binance
