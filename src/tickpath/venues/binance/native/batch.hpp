// Many frames in one call: the batch entry's C++ half (module.cpp holds the Python half).
//
// Frames run through Core::on_frame in order, exactly as N single calls would, until one needs the
// caller: a rejected frame (its ParseError), a frame handed back (HANDOFF) or a book that now waits for
// a snapshot. The batch stops right after that frame, so the caller handles it and continues with the
// next: the per-frame results, counters and events are those of single calls, in the same order.
#pragma once
#include <time.h>

#include <cstddef>
#include <cstdint>

#include "core.hpp"

namespace tp::binance {

struct FrameView {
  const char* p;
  size_t n;
  bool unencodable;  // a str that has no UTF-8 form (lone surrogates): malformed, as on_frame says
};

struct BatchResult {
  size_t done = 0;      // frames consumed, the stopping one included
  int code = 0;         // 0: none stopped the batch; else the stopping frame's result (| WANTS_SNAPSHOT)
  int64_t events = 0;   // events appended by the consumed frames
};

// feeder results: events | WANTS_SNAPSHOT when a book waits for a snapshot
constexpr int WANTS_SNAPSHOT_FLAG = 1 << 24;

// The receipt time of each frame: one for all (the read that delivered them), one per frame, or read
// here from CLOCK_REALTIME per frame (the system clock through the vDSO, as time.time_ns reads it).
struct Receipts {
  const int64_t* each = nullptr;  // per frame, when set
  int64_t all = 0;
  bool realtime = false;
  int64_t at(size_t i) const {
    if (realtime) {
      timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
    }
    return each != nullptr ? each[i] : all;
  }
};

inline BatchResult on_frames(Core& core, const FrameView* frames, size_t n, const Receipts& receipts) {
  BatchResult out;
  for (size_t i = 0; i < n; ++i) {
    const FrameView& f = frames[i];
    if (i + 1 < n) {  // the next frame's first lines, fetched while this one is decoded
      const FrameView& next = frames[i + 1];
      for (size_t off = 0; off < next.n && off < 512; off += 64) __builtin_prefetch(next.p + off);
    }
    int r;
    if (f.unencodable) {
      core.stats.frames++;
      core.stats.malformed[0]++;
      core.wants_snapshot = -1;
      r = BAD_JSON;
    } else {
      r = core.on_frame(f.p, f.n, receipts.at(i));
    }
    out.done = i + 1;
    if (r < 0) {
      out.code = r;
      return out;
    }
    out.events += r;
    if (core.wants_snapshot >= 0) {
      out.code = r | WANTS_SNAPSHOT_FLAG;
      return out;
    }
  }
  return out;
}

}  // namespace tp::binance
