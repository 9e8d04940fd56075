// The venue's one entry in native code: frame bytes + receipt time in, normalized events out, with the
// engine's de-duplication (trades by id, tickers by update id) and one BookSync per symbol.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events.hpp"
#include "frames.hpp"
#include "sync.hpp"

namespace tp::binance {

struct CoreStats {
  int64_t frames = 0, depth = 0, trades = 0, tickers = 0, klines = 0, control = 0, unexpected_symbol = 0,
          duplicates = 0, snapshots_bad = 0;
  int64_t malformed[3] = {0, 0, 0};  // malformed_json, schema, unknown_event
};

// on_frame results below zero: why a frame was rejected.
constexpr int BAD_JSON = -1, BAD_SCHEMA = -2, BAD_UNKNOWN = -3;
// A valid frame of a stream the core does not normalize (klines, 24 h tickers, mark price, liquidations,
// the all-market arrays, anything unknown): the processor decodes it in Python (channels.py), which
// also counts it, so the reference and the core count the same frames the same way.
constexpr int HANDOFF = -4;

class Core {
 public:
  Core(bool futures, const std::vector<std::string>& symbols, bool restricted, int depth, size_t max_buffer)
      : futures_(futures), restricted_(restricted), depth_(depth), max_buffer_(max_buffer) {
    // A book waiting for its snapshot keeps at least one event (the oldest is dropped for the newest);
    // none would leave nothing to drop. The processors refuse it first (a ConfigError); this guards
    // every other caller.
    if (max_buffer < 1) throw std::invalid_argument("max_buffer must be at least 1, got 0");
    for (const auto& s : symbols) book_for(sym_id(s));
  }

  EventLog log;
  CoreStats stats;
  Frame frame;           // the last decoded frame
  int64_t last_E = NO_INT;  // event time of the last frame that produced events (for latency)
  int32_t wants_snapshot = -1;  // symbol id whose book needs a snapshot after the last frame
  int64_t last_receipt = 0;     // receipt time of the last frame (a batch may read the clock itself)

  // Returns the number of events appended to `log`, or BAD_* when the frame was rejected.
  int on_frame(const char* p, size_t n, int64_t receipt) {
    stats.frames++;
    wants_snapshot = -1;
    last_receipt = receipt;
    json::Error err = decoder_.decode(p, n, frame);
    if (err != json::OK) {
      stats.malformed[err == json::MALFORMED ? 0 : 1]++;
      return err == json::MALFORMED ? BAD_JSON : BAD_SCHEMA;
    }
    size_t before = log.size();
    switch (frame.kind) {
      case Kind::DEPTH: {
        stats.depth++;
        uint32_t sym = sym_id(frame.s);
        BookSync* bs = sym < books_.size() ? books_[sym].get() : nullptr;
        if (bs == nullptr) {
          if (restricted_) {
            stats.unexpected_symbol++;
            return 0;
          }
          bs = book_for(sym);
        }
        bs->on_depth(frame, receipt, log);
        if (bs->needs_snapshot) wants_snapshot = int32_t(sym);
        last_E = frame.E;
        break;
      }
      case Kind::AGG_TRADE:
      case Kind::TRADE: {
        stats.trades++;
        uint32_t sym = sym_id(frame.s);
        int64_t& lastid = per_sym_[sym].last_trade;
        if (frame.id <= lastid) {
          stats.duplicates++;
          return 0;
        }
        lastid = frame.id;
        bool agg = frame.kind == Kind::AGG_TRADE;
        Ev& e = log.push(EvKind::TRADE, sym, ++per_sym_[sym].trade_seq, frame.E, frame.T, receipt);
        e.x1 = frame.id, e.x2 = agg ? frame.f : NO_INT, e.x3 = agg ? frame.l : NO_INT;
        e.agg = agg;
        e.side_sell = frame.m;
        log.strings(e, {frame.str[0], frame.str[1]});
        last_E = frame.E;
        break;
      }
      case Kind::BOOK_TICKER: {
        stats.tickers++;
        uint32_t sym = sym_id(frame.s);
        int64_t& lastu = per_sym_[sym].last_ticker;
        if (frame.id <= lastu) {
          stats.duplicates++;
          return 0;
        }
        lastu = frame.id;
        Ev& e = log.push(EvKind::TICKER, sym, ++per_sym_[sym].ticker_seq, frame.E, frame.T, receipt);
        e.x1 = frame.id;
        log.strings(e, {frame.str[0], frame.str[1], frame.str[2], frame.str[3]});
        last_E = frame.E;
        break;
      }
      case Kind::CONTROL: stats.control++; return 0;
      default: return HANDOFF;  // UNKNOWN (klines, every low-rate channel): the Python side decodes and counts it
    }
    return int(log.size() - before);
  }

  // A REST snapshot body for `symbol`: returns events appended, or BAD_* for an undecodable body.
  int on_snapshot(std::string_view symbol, const char* p, size_t n, int64_t receipt, bool create) {
    int64_t last = 0, E, T;
    bool valid = true;
    json::Error err = decoder_.snapshot(p, n, last, snap_b_, snap_a_, E, T, valid);
    wants_snapshot = -1;
    if (err != json::OK) {
      stats.snapshots_bad++;
      return err == json::MALFORMED ? BAD_JSON : BAD_SCHEMA;
    }
    uint32_t sym = sym_id(symbol);
    BookSync* bs = sym < books_.size() ? books_[sym].get() : nullptr;
    if (bs == nullptr) {
      if (!create) return 0;
      bs = book_for(sym);
    }
    size_t before = log.size();
    bs->on_snapshot(last, snap_b_, snap_a_, valid, E, T, receipt, log);
    if (bs->needs_snapshot) wants_snapshot = int32_t(sym);
    return int(log.size() - before);
  }

  int reset(std::string_view symbol, std::string_view reason, int64_t receipt) {
    BookSync* bs = book(symbol);
    if (bs == nullptr) return 0;
    size_t before = log.size();
    bs->reset(log.reason_id(reason), receipt, log);
    return int(log.size() - before);
  }

  BookSync* book(std::string_view symbol) {
    auto it = ids_.find(symbol);
    if (it == ids_.end() || it->second >= books_.size()) return nullptr;
    return books_[it->second].get();
  }
  int64_t fast_hits() const { return decoder_.fast_hits; }  // frames the fast path decoded (frames.hpp)
  const std::string& name(uint32_t sym) const { return names_[sym]; }
  uint32_t symbol_count() const { return uint32_t(names_.size()); }
  std::vector<std::string> book_symbols() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < books_.size(); ++i)
      if (books_[i]) out.push_back(names_[i]);
    return out;
  }

 private:
  struct PerSym {
    int64_t last_trade = -1, last_ticker = -1, trade_seq = 0, ticker_seq = 0;
  };
  bool futures_, restricted_;
  int depth_;
  size_t max_buffer_;
  Decoder decoder_;
  std::deque<std::string> names_;  // stable storage: ids_ keys view into it
  std::unordered_map<std::string_view, uint32_t> ids_;
  std::vector<std::unique_ptr<BookSync>> books_;
  std::vector<PerSym> per_sym_;
  std::vector<LevelUpdate> snap_b_, snap_a_;

  uint32_t sym_id(std::string_view s) {
    auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
    uint32_t id = uint32_t(names_.size());
    names_.emplace_back(s);
    ids_.emplace(std::string_view(names_.back()), id);
    per_sym_.emplace_back();
    return id;
  }
  BookSync* book_for(uint32_t sym) {
    if (books_.size() <= sym) books_.resize(sym + 1);
    if (!books_[sym]) books_[sym] = std::make_unique<BookSync>(sym, futures_, depth_, max_buffer_);
    return books_[sym].get();
  }
};

}  // namespace tp::binance
