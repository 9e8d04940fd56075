// Native event records to Arrow-layout column buffers (tickpath.tables.SCHEMAS), with no Python
// object per row: offsets, values and validity bitmaps that pyarrow wraps without a copy.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "events.hpp"

namespace tp::binance {

struct I64Col {  // a nullable int64 column; NO_INT is null
  std::vector<int64_t> values;
  std::vector<uint8_t> valid;  // LSB-first bitmap
  size_t nulls = 0;
  void push(int64_t v) {
    size_t i = values.size();
    if ((i & 7) == 0) valid.push_back(0);
    if (v == NO_INT) {
      ++nulls;
      values.push_back(0);
    } else {
      valid.back() |= uint8_t(1u << (i & 7));
      values.push_back(v);
    }
  }
  void clear() {
    values.clear();
    valid.clear();
    nulls = 0;
  }
};

struct Common {
  std::vector<int32_t> sym;  // index into the core's symbol names
  I64Col seq, E, T, receipt;
  void push(const Ev& e) {
    sym.push_back(int32_t(e.sym));
    seq.push(e.seq);
    E.push(e.E);
    T.push(e.T);
    receipt.push(e.receipt);
  }
  void clear() {
    sym.clear();
    for (I64Col* c : {&seq, &E, &T, &receipt}) c->clear();
  }
};

struct LevelsCol {  // list<struct<price: string, qty: string>>: the list offsets; the children are the log's
  std::vector<int32_t> offsets{0};
  void push(uint32_t n) { offsets.push_back(offsets.back() + int32_t(n)); }
  void clear() { offsets.resize(1); }
};

struct L2Cols {
  Common c;
  std::vector<uint8_t> kind;  // 0 delta, 1 snapshot, 2 reset
  I64Col first, final_, prev, depth, last_good;
  std::vector<int32_t> reason;  // -1: null
  LevelsCol bids, asks;
  size_t rows() const { return kind.size(); }
  void clear() {
    c.clear();
    kind.clear();
    for (I64Col* x : {&first, &final_, &prev, &depth, &last_good}) x->clear();
    reason.clear();
    bids.clear();
    asks.clear();
  }
};

struct TradeCols {
  Common c;
  I64Col id, first, last;
  StrCol price, qty;
  std::vector<uint8_t> sell;
  size_t rows() const { return sell.size(); }
  void clear() {
    c.clear();
    for (I64Col* x : {&id, &first, &last}) x->clear();
    price.clear();
    qty.clear();
    sell.clear();
  }
};

struct TickerCols {
  Common c;
  I64Col update_id;
  StrCol bp, bq, ap, aq;
  size_t rows() const { return update_id.values.size(); }
  void clear() {
    c.clear();
    update_id.clear();
    for (StrCol* x : {&bp, &bq, &ap, &aq}) x->clear();
  }
};

struct Columns {  // kept by the binding between takes: cleared, its buffers keep their room
  L2Cols l2;
  TradeCols trades;
  TickerCols tickers;
  void clear() {
    l2.clear();
    trades.clear();
    tickers.clear();
  }
};

inline void to_columns(const EventLog& log, Columns& out) {
  for (const Ev& e : log.events) {
    switch (e.kind) {
      case EvKind::DELTA:
      case EvKind::SNAPSHOT:
      case EvKind::RESET: {
        L2Cols& t = out.l2;
        t.c.push(e);
        bool delta = e.kind == EvKind::DELTA, snap = e.kind == EvKind::SNAPSHOT;
        t.kind.push_back(delta ? 0 : snap ? 1 : 2);
        t.first.push(delta ? e.x1 : NO_INT);
        t.final_.push(delta ? e.x2 : snap ? e.x1 : NO_INT);
        t.prev.push(delta ? e.x3 : NO_INT);
        t.depth.push(e.kind != EvKind::RESET && e.depth >= 0 ? e.depth : NO_INT);
        t.reason.push_back(e.kind == EvKind::RESET ? int32_t(e.reason) : -1);
        t.last_good.push(e.kind == EvKind::RESET ? e.x1 : NO_INT);
        t.bids.push(e.nb);
        t.asks.push(e.na);
        break;
      }
      case EvKind::TRADE: {
        TradeCols& t = out.trades;
        t.c.push(e);
        t.id.push(e.x1);
        t.first.push(e.agg ? e.x2 : NO_INT);
        t.last.push(e.agg ? e.x3 : NO_INT);
        t.price.push(log.str(e, 0));
        t.qty.push(log.str(e, 1));
        t.sell.push_back(e.side_sell ? 1 : 0);
        break;
      }
      case EvKind::TICKER: {
        TickerCols& t = out.tickers;
        t.c.push(e);
        t.update_id.push(e.x1);
        t.bp.push(log.str(e, 0));
        t.bq.push(log.str(e, 1));
        t.ap.push(log.str(e, 2));
        t.aq.push(log.str(e, 3));
        break;
      }
    }
  }
}

}  // namespace tp::binance
