// A decoded frame: what the general reader (frames.hpp) and the fast path (fast.hpp) fill in.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../../native/book.hpp"
#include "events.hpp"

namespace tp::binance {

enum class Kind : uint8_t { NONE, DEPTH, AGG_TRADE, TRADE, BOOK_TICKER, CONTROL, UNKNOWN };

struct Frame {
  Kind kind = Kind::NONE;
  int64_t E = NO_INT, T = NO_INT;
  std::string_view s;
  // depth
  int64_t U = 0, u = 0, pu = NO_INT;
  std::vector<LevelUpdate> b, a;
  bool levels_valid = true;
  // trades (id is `a` of an aggTrade, `t` of a trade) and tickers (`u`, and b B a A as strings)
  int64_t id = 0, f = NO_INT, l = NO_INT;
  bool m = false;
  std::string_view str[4];  // trade: p q; ticker: b B a A
  std::string own[5];       // unescaped copies: [0] symbol, [1..4] str[0..3]
  std::string scratch;
  std::string unknown_kind;  // the kind named by an unknown stream or event type

  void reset() {
    kind = Kind::NONE;
    E = T = pu = f = l = NO_INT;
    b.clear();
    a.clear();
    levels_valid = true;
  }
};

}  // namespace tp::binance
