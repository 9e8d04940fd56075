// Python binding of the native Binance core: tickpath.venues.binance._core.
//
// The hot call, Core.on_frame(frame, receipt_ns), takes bytes or str and returns an int without
// building a Python object; events stay in native records until take_events() (Python objects, for
// object sinks and tests) or take_columns() (column buffers for Arrow) asks for them.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch.hpp"
#include "columns.hpp"
#include "core.hpp"

namespace py = pybind11;
using namespace tp;
using namespace tp::binance;

namespace {

std::string_view view_of(py::handle obj) {
  PyObject* o = obj.ptr();
  if (PyBytes_Check(o)) return std::string_view(PyBytes_AS_STRING(o), size_t(PyBytes_GET_SIZE(o)));
  if (PyUnicode_Check(o)) {
    Py_ssize_t n;
    const char* p = PyUnicode_AsUTF8AndSize(o, &n);
    if (p == nullptr) throw py::error_already_set();  // lone surrogates: not encodable
    return std::string_view(p, size_t(n));
  }
  if (PyByteArray_Check(o)) return std::string_view(PyByteArray_AS_STRING(o), size_t(PyByteArray_GET_SIZE(o)));
  throw py::type_error("a frame is bytes or str");
}

template <typename T>
py::bytes raw(const std::vector<T>& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

py::tuple i64(const I64Col& c) {  // (values, validity bitmap or None)
  return py::make_tuple(raw(c.values), c.nulls ? py::object(raw(c.valid)) : py::object(py::none()));
}

py::tuple str(const StrCol& c) {
  std::string_view b = c.bytes();
  return py::make_tuple(raw(c.offsets), py::bytes(b.data(), b.size()));
}

// A new bytes object of n bytes, filled by the caller through `out` (no intermediate copy).
py::bytes new_bytes(size_t n, char*& out) {
  PyObject* o = PyBytes_FromStringAndSize(nullptr, Py_ssize_t(n));
  if (o == nullptr) throw py::error_already_set();
  out = PyBytes_AS_STRING(o);
  return py::reinterpret_steal<py::bytes>(o);
}

// A string column of names[idx[i]] (idx < 0: null) as (offsets, data, validity or None): the symbol,
// kind, reason and side columns made here rather than by pyarrow's take per batch, written straight
// into the bytes objects.
template <typename Idx>
py::tuple lookup(const std::vector<Idx>& idx, const std::vector<std::string>& names) {
  size_t n = idx.size();
  char* offsets_p;
  py::bytes offsets = new_bytes((n + 1) * sizeof(int32_t), offsets_p);
  int32_t total = 0;
  bool nulls = false;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(offsets_p + i * sizeof(int32_t), &total, sizeof(int32_t));
    if (int64_t(idx[i]) < 0) nulls = true;
    else total += int32_t(names[size_t(idx[i])].size());
  }
  std::memcpy(offsets_p + n * sizeof(int32_t), &total, sizeof(int32_t));
  char* data_p;
  py::bytes data = new_bytes(size_t(total), data_p);
  for (size_t i = 0; i < n; ++i)
    if (int64_t(idx[i]) >= 0) {
      const std::string& s = names[size_t(idx[i])];
      copy_short(data_p, s.data(), s.size());
      data_p += s.size();
    }
  if (!nulls) return py::make_tuple(offsets, data, py::none());
  std::vector<uint8_t> valid((n + 7) / 8, 0);
  for (size_t i = 0; i < n; ++i)
    if (int64_t(idx[i]) >= 0) valid[i / 8] |= uint8_t(1u << (i & 7));
  return py::make_tuple(offsets, data, raw(valid));
}

// A string column of n copies of one name (the session, the venue), no nulls.
py::tuple constant(size_t n, const std::string& name) {
  char* offsets_p;
  py::bytes offsets = new_bytes((n + 1) * sizeof(int32_t), offsets_p);
  for (size_t i = 0; i <= n; ++i) {
    int32_t at = int32_t(i * name.size());
    std::memcpy(offsets_p + i * sizeof(int32_t), &at, sizeof(int32_t));
  }
  char* data_p;
  py::bytes data = new_bytes(n * name.size(), data_p);
  for (size_t i = 0; i < n; ++i) copy_short(data_p + i * name.size(), name.data(), name.size());
  return py::make_tuple(offsets, data, py::none());
}

py::tuple i32(const I64Col& c) {  // an int64 column narrowed (top-N depth), validity kept
  std::vector<int32_t> v(c.values.begin(), c.values.end());
  return py::make_tuple(raw(v), c.nulls ? py::object(raw(c.valid)) : py::object(py::none()));
}

py::dict common(const Common& c, const std::vector<std::string>& symbols, const std::string& session,
                const std::string& venue) {
  py::dict d;
  size_t n = c.sym.size();
  d["symbol"] = lookup(c.sym, symbols), d["session"] = constant(n, session), d["venue"] = constant(n, venue);
  d["seq"] = i64(c.seq), d["event_time_ms"] = i64(c.E);
  d["transaction_time_ms"] = i64(c.T), d["receipt_ns"] = i64(c.receipt);
  return d;
}

py::tuple levels_col(const LevelsCol& c, const LevelStrings& s) {
  return py::make_tuple(raw(c.offsets), str(s.price), str(s.qty));
}

py::object opt(int64_t v) { return v == NO_INT ? py::none() : py::object(py::int_(v)); }

py::str dec(Decimal d) {
  std::string s = decimal_str(d);
  return py::str(s);
}

class PyCore {
 public:
  PyCore(bool futures, std::vector<std::string> symbols, bool restricted, int depth, size_t max_buffer,
         std::string session, std::string venue, py::tuple classes)
      : core_(futures, symbols, restricted, depth, max_buffer),
        session_(session),
        venue_(venue),
        delta_(classes[0]),
        snapshot_(classes[1]),
        reset_(classes[2]),
        trade_(classes[3]),
        ticker_(classes[4]) {}

  // Set while a batch runs without the GIL: any other call on this core from another thread is refused
  // (the core is not thread-safe; the GIL is released so that other threads run, not this core twice).
  bool busy = false;
  void check_idle() const {
    if (busy) throw std::runtime_error("the native core is in use by another thread (a batch is running)");
  }
  Core& core() { return core_; }
  // The batch entry's buffers, kept between calls: a call allocates nothing once they have grown.
  std::vector<FrameView> batch_views;
  std::vector<int64_t> batch_each;
  std::vector<PyObject*> batch_refs;
  Columns cols_;  // take_columns' buffers, kept between takes

  int on_frame(py::handle frame, int64_t receipt) {
    check_idle();
    std::string_view v;
    try {
      v = view_of(frame);
    } catch (py::error_already_set&) {
      PyErr_Clear();
      FrameView bad{nullptr, 0, true};
      return on_frames(core_, &bad, 1, Receipts{}).code;
    }
    return core_.on_frame(v.data(), v.size(), receipt);
  }
  int on_snapshot(const std::string& symbol, py::handle body, int64_t receipt, bool create) {
    check_idle();
    std::string_view v = view_of(body);
    return core_.on_snapshot(symbol, v.data(), v.size(), receipt, create);
  }
  int reset(const std::string& symbol, const std::string& reason, int64_t receipt) {
    check_idle();
    return core_.reset(symbol, reason, receipt);
  }
  size_t pending() const { return core_.log.size(); }
  py::object last_event_ms() const { return opt(core_.last_E); }
  py::object wants_snapshot() const {
    return core_.wants_snapshot < 0 ? py::none() : py::object(py::str(core_.name(uint32_t(core_.wants_snapshot))));
  }
  bool wants_snapshot_now() const { return core_.wants_snapshot >= 0; }
  std::string unknown_kind() const { return core_.frame.unknown_kind; }
  int64_t last_receipt_ns() const { return core_.last_receipt; }
  int64_t fast_hits() const { return core_.fast_hits(); }

  py::list take_events() {
    check_idle();
    const EventLog& log = core_.log;
    py::list out(log.size());
    for (size_t i = 0; i < log.size(); ++i) out[i] = event(log, log.events[i]);
    core_.log.clear();
    return out;
  }

  // The pending events as Arrow-layout buffers per table (see processor.columns_to_tables); clears them.
  py::dict take_columns() {
    check_idle();
    Columns& cols = cols_;
    cols.clear();
    to_columns(core_.log, cols);
    py::dict out;
    std::vector<std::string> symbols = symbol_names();
    std::string session(session_), venue(venue_);
    static const std::vector<std::string> KINDS{"delta", "snapshot", "reset"}, SIDES{"buy", "sell"};
    if (cols.l2.rows()) {
      const L2Cols& t = cols.l2;
      py::dict d = common(t.c, symbols, session, venue);
      d["rows"] = t.rows(), d["kind"] = lookup(t.kind, KINDS), d["first_update_id"] = i64(t.first);
      d["final_update_id"] = i64(t.final_), d["prev_final_update_id"] = i64(t.prev), d["depth"] = i32(t.depth);
      d["reason"] = lookup(t.reason, core_.log.reasons), d["last_good_update_id"] = i64(t.last_good);
      d["bids"] = levels_col(t.bids, core_.log.bids), d["asks"] = levels_col(t.asks, core_.log.asks);
      out["l2"] = d;
    }
    if (cols.trades.rows()) {
      const TradeCols& t = cols.trades;
      py::dict d = common(t.c, symbols, session, venue);
      d["rows"] = t.rows(), d["trade_id"] = i64(t.id), d["first_trade_id"] = i64(t.first);
      d["last_trade_id"] = i64(t.last), d["price"] = str(t.price), d["qty"] = str(t.qty);
      d["side"] = lookup(t.sell, SIDES);
      out["trades"] = d;
    }
    if (cols.tickers.rows()) {
      const TickerCols& t = cols.tickers;
      py::dict d = common(t.c, symbols, session, venue);
      d["rows"] = t.rows(), d["update_id"] = i64(t.update_id), d["bid_price"] = str(t.bp);
      d["bid_qty"] = str(t.bq), d["ask_price"] = str(t.ap), d["ask_qty"] = str(t.aq);
      out["tickers"] = d;
    }
    core_.log.clear();  // after the level strings were copied out
    return out;
  }
  std::vector<std::string> symbol_names() const {
    std::vector<std::string> out;
    for (uint32_t i = 0; i < core_.symbol_count(); ++i) out.push_back(core_.name(i));
    return out;
  }
  std::vector<std::string> reasons() const { return core_.log.reasons; }

  py::dict stats() const {
    const CoreStats& s = core_.stats;
    py::dict d;
    d["frames"] = s.frames, d["depth"] = s.depth, d["trades"] = s.trades, d["tickers"] = s.tickers;
    d["klines"] = s.klines, d["control"] = s.control, d["unexpected_symbol"] = s.unexpected_symbol;
    d["duplicates"] = s.duplicates, d["snapshots_bad"] = s.snapshots_bad;
    d["malformed_json"] = s.malformed[0], d["schema"] = s.malformed[1], d["unknown_event"] = s.malformed[2];
    return d;
  }
  py::object book_stats(const std::string& symbol) {
    BookSync* bs = core_.book(symbol);
    if (bs == nullptr) return py::none();
    const SyncStats& s = bs->stats;
    py::dict d;
    d["snapshots"] = s.snapshots, d["refetches"] = s.refetches, d["ignored_snapshots"] = s.ignored_snapshots;
    d["resyncs"] = s.resyncs, d["gaps"] = s.gaps, d["duplicates"] = s.duplicates;
    d["dropped_before_sync"] = s.dropped_before_sync, d["buffer_overflow"] = s.buffer_overflow;
    d["crossed"] = s.crossed, d["invalid"] = s.invalid, d["deltas"] = s.deltas;
    return d;
  }
  // (synced, needs_snapshot, last_update_id, buffered, seq) of a symbol's book, or None.
  py::object book_state(const std::string& symbol) {
    BookSync* bs = core_.book(symbol);
    if (bs == nullptr) return py::none();
    return py::make_tuple(bs->synced, bs->needs_snapshot, opt(bs->last), bs->buffered(), bs->seq());
  }
  py::object book_top(const std::string& symbol, int n) {
    BookSync* bs = core_.book(symbol);
    if (bs == nullptr) return py::none();
    return py::make_tuple(side(bs->book.bids, n), side(bs->book.asks, n));
  }
  std::vector<std::string> symbols() const { return core_.book_symbols(); }

 private:
  Core core_;
  py::str session_, venue_;
  py::object delta_, snapshot_, reset_, trade_, ticker_;

  static py::list side(const Side& s, int n) {
    size_t k = n < 0 ? s.size() : std::min(s.size(), size_t(n));
    py::list out(k);
    for (size_t i = 0; i < k; ++i) {
      Level l = s.at(s.size() - 1 - i);
      out[i] = py::make_tuple(dec(l.price), dec(l.qty));
    }
    return out;
  }
  static py::list levels(const LevelStrings& side, uint32_t off, uint32_t n) {
    py::list out(n);
    for (uint32_t i = 0; i < n; ++i) {
      std::string_view p = side.price.at(off + i), q = side.qty.at(off + i);
      out[i] = py::make_tuple(py::str(p.data(), p.size()), py::str(q.data(), q.size()));
    }
    return out;
  }
  py::object event(const EventLog& log, const Ev& e) {
    py::dict kw;
    kw["session"] = session_, kw["venue"] = venue_, kw["symbol"] = py::str(core_.name(e.sym));
    kw["seq"] = e.seq, kw["event_time_ms"] = opt(e.E), kw["transaction_time_ms"] = opt(e.T);
    kw["receipt_ns"] = e.receipt;
    switch (e.kind) {
      case EvKind::DELTA:
        kw["first_update_id"] = e.x1, kw["final_update_id"] = e.x2, kw["prev_final_update_id"] = opt(e.x3);
        kw["bids"] = levels(log.bids, e.off, e.nb), kw["asks"] = levels(log.asks, e.off2, e.na);
        if (e.depth >= 0) kw["depth"] = e.depth;
        return delta_(**kw);
      case EvKind::SNAPSHOT:
        kw["last_update_id"] = e.x1;
        kw["bids"] = levels(log.bids, e.off, e.nb), kw["asks"] = levels(log.asks, e.off2, e.na);
        kw["depth"] = e.depth >= 0 ? py::object(py::int_(e.depth)) : py::none();
        return snapshot_(**kw);
      case EvKind::RESET:
        kw["reason"] = py::str(log.reasons[e.reason]), kw["last_good_update_id"] = opt(e.x1);
        return reset_(**kw);
      case EvKind::TRADE:
        kw["trade_id"] = e.x1;
        if (e.agg) kw["first_trade_id"] = opt(e.x2), kw["last_trade_id"] = opt(e.x3);
        kw["price"] = py::str(std::string(log.str(e, 0))), kw["qty"] = py::str(std::string(log.str(e, 1)));
        kw["side"] = py::str(e.side_sell ? "sell" : "buy");
        return trade_(**kw);
      case EvKind::TICKER:
        kw["update_id"] = e.x1;
        kw["bid_price"] = py::str(std::string(log.str(e, 0))), kw["bid_qty"] = py::str(std::string(log.str(e, 1)));
        kw["ask_price"] = py::str(std::string(log.str(e, 2))), kw["ask_qty"] = py::str(std::string(log.str(e, 3)));
        return ticker_(**kw);
    }
    return py::none();
  }
};

// Core.feeder() returns feed(frame, receipt_ns) -> int: Core.on_frame bound to its core as a plain
// METH_FASTCALL builtin, without pybind11's dispatcher (overload resolution and argument casting
// cost ~70 ns a call, as much as decoding a small frame). Its `self` is a capsule holding the core's
// pointer; the capsule keeps the Python core object alive.
constexpr const char* FEEDER = "tickpath.core.feeder";
constexpr long WANTS_SNAPSHOT = WANTS_SNAPSHOT_FLAG;  // feeder results: events | WANTS_SNAPSHOT when a book waits

PyObject* feeder_call(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "feed(frame, receipt_ns)");
    return nullptr;
  }
  auto* core = static_cast<PyCore*>(PyCapsule_GetPointer(self, FEEDER));
  if (core == nullptr) return nullptr;
  long long receipt = PyLong_AsLongLong(args[1]);
  if (receipt == -1 && PyErr_Occurred()) return nullptr;
  if (core->busy) {
    PyErr_SetString(PyExc_RuntimeError, "the native core is in use by another thread (a batch is running)");
    return nullptr;
  }
  try {
    int n = core->on_frame(py::handle(args[0]), receipt);
    // The snapshot request rides on the result (one bit), saving a property call per frame.
    return PyLong_FromLong(n >= 0 && core->wants_snapshot_now() ? n | WANTS_SNAPSHOT : n);
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (std::exception& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
    return nullptr;
  }
}

PyMethodDef FEEDER_DEF = {"feed", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(feeder_call)),
                          METH_FASTCALL, "feed(frame, receipt_ns) -> int: as Core.on_frame."};

// Core.batcher() returns feed_many(frames, receipt_ns, start) -> (done, code, events): frames[start:]
// (a list or tuple of bytes or str) through the core as by feed() one at a time, stopping after the
// first frame that needs the caller (see batch.hpp); `code` is that frame's feed() result, 0 when
// none stopped the batch. receipt_ns: one int for every frame (the read that delivered them), a list
// of ints (one per frame of `frames`), or None to read CLOCK_REALTIME per frame here. The C++ work
// runs without the GIL (when the batch is long enough to be worth the release, and holds no
// bytearray, which another thread could resize); each frame is referenced meanwhile.
constexpr const char* BATCHER = "tickpath.core.batcher";
constexpr size_t GIL_RELEASE_MIN = 4;  // frames: below this a release and re-acquire costs more than it frees

struct Held {  // strong references to a batch's frames for as long as it runs (in a reused vector)
  std::vector<PyObject*>& refs;
  explicit Held(std::vector<PyObject*>& r) : refs(r) { refs.clear(); }
  ~Held() {
    for (PyObject* o : refs) Py_DECREF(o);
    refs.clear();
  }
};

// The receipt times of frames [start, end): one for all, CLOCK_REALTIME, or a chunk of a per-frame list.
// An int item is read without running Python code; any other is converted by its __index__, which may
// change the list (or the frames' list): the list's size is read again before each item and checked
// once more at the end, and the caller checks the frames' (see batcher_call).
bool batch_receipts(PyObject* arg, size_t start, size_t end, size_t total, std::vector<int64_t>& each,
                    Receipts& out) {
  if (arg == Py_None) {
    out.realtime = true;
    return true;
  }
  if (PyLong_Check(arg)) {  // an int (or a subclass: its value is read, no __index__ runs)
    out.all = PyLong_AsLongLong(arg);
    return !(out.all == -1 && PyErr_Occurred());
  }
  PyObject* seq = PySequence_Fast(arg, "receipt_ns: an int, a list of ints or None");
  if (seq == nullptr) return false;
  bool ok = size_t(PySequence_Fast_GET_SIZE(seq)) == total;
  if (!ok) PyErr_SetString(PyExc_ValueError, "receipt_ns: one per frame");
  each.clear();
  for (size_t i = start; ok && i < end; ++i) {
    if (size_t(PySequence_Fast_GET_SIZE(seq)) <= i) {  // shrunk by an item's __index__
      PyErr_SetString(PyExc_ValueError, "receipt_ns changed size during feed_many");
      ok = false;
      break;
    }
    PyObject* item = PySequence_Fast_GET_ITEM(seq, Py_ssize_t(i));
    long long v;
    if (PyLong_Check(item)) {
      v = PyLong_AsLongLong(item);
    } else {  // Python code runs: the item is held while it does (it may drop the list's reference)
      Py_INCREF(item);
      v = PyLong_AsLongLong(item);
      Py_DECREF(item);
    }
    ok = !(v == -1 && PyErr_Occurred());
    each.push_back(v);
  }
  if (ok && size_t(PySequence_Fast_GET_SIZE(seq)) != total) {
    PyErr_SetString(PyExc_ValueError, "receipt_ns changed size during feed_many");
    ok = false;
  }
  Py_DECREF(seq);
  out.each = each.data();
  return ok;
}

// The frames' bytes as views (their objects held in `held`); false with a Python error for a non-frame.
bool batch_views(PyObject* const* items, size_t n, std::vector<FrameView>& views, Held& held, bool& movable) {
  for (size_t i = 0; i < n; ++i) {
    PyObject* o = items[i];
    // The frames' objects are scattered on the heap and cold: their headers are fetched ahead.
    if (i + 8 < n) __builtin_prefetch(items[i + 8]);
    FrameView v{nullptr, 0, false};
    if (PyBytes_Check(o)) {
      v.p = PyBytes_AS_STRING(o), v.n = size_t(PyBytes_GET_SIZE(o));
    } else if (PyUnicode_Check(o)) {
      Py_ssize_t len;
      v.p = PyUnicode_AsUTF8AndSize(o, &len);
      if (v.p == nullptr) PyErr_Clear(), v.unencodable = true;
      else v.n = size_t(len);
    } else if (PyByteArray_Check(o)) {
      v.p = PyByteArray_AS_STRING(o), v.n = size_t(PyByteArray_GET_SIZE(o));
      movable = false;
    } else {
      PyErr_SetString(PyExc_TypeError, "a frame is bytes or str");
      return false;
    }
    Py_INCREF(o);
    held.refs.push_back(o);
    views.push_back(v);
  }
  return true;
}

// The frames' list still has the size the batch started with (Python code run by the batch may change it).
bool same_size(PyObject* seq, size_t total) {
  if (size_t(PySequence_Fast_GET_SIZE(seq)) == total) return true;
  PyErr_SetString(PyExc_ValueError, "frames changed size during feed_many");
  return false;
}

// One chunk of a batch through the core, without the GIL when worth it; false with a Python error.
// The caller holds the core busy for the whole call.
bool run_chunk(PyCore* core, const std::vector<FrameView>& views, bool movable, const Receipts& receipts,
               BatchResult& r) {
  bool nomem = false;
  if (movable && views.size() >= GIL_RELEASE_MIN) {
    Py_BEGIN_ALLOW_THREADS
    try {
      r = on_frames(core->core(), views.data(), views.size(), receipts);
    } catch (std::bad_alloc&) {  // nothing may unwind past the GIL's re-acquire
      nomem = true;
    }
    Py_END_ALLOW_THREADS
  } else {
    try {
      r = on_frames(core->core(), views.data(), views.size(), receipts);
    } catch (std::bad_alloc&) {
      nomem = true;
    }
  }
  if (nomem) PyErr_NoMemory();
  return !nomem;
}

// Frames are viewed, referenced and timed a chunk at a time: a batch that stops early (a handed-back
// frame) has prepared no more than one chunk beyond it, so a list with many stops stays linear. The
// first chunk of a call is short and each next one twice as long: a stream with a frame to hand back
// every few dozen (the capture mix's klines) prepared 256 frames per stop for a few dozen run.
constexpr size_t BATCH_CHUNK = 256, FIRST_CHUNK = 16;

PyObject* batcher_call(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "feed_many(frames, receipt_ns, start)");
    return nullptr;
  }
  auto* core = static_cast<PyCore*>(PyCapsule_GetPointer(self, BATCHER));
  if (core == nullptr) return nullptr;
  if (core->busy) {
    PyErr_SetString(PyExc_RuntimeError, "the native core is in use by another thread (a batch is running)");
    return nullptr;
  }
  Py_ssize_t start_arg = PyLong_AsSsize_t(args[2]);  // an int only: runs no Python code
  if (start_arg == -1 && PyErr_Occurred()) return nullptr;
  PyObject* seq = PySequence_Fast(args[0], "frames: a list or tuple");
  if (seq == nullptr) return nullptr;
  size_t total = size_t(PySequence_Fast_GET_SIZE(seq));
  size_t at = start_arg < 0 ? 0 : std::min(size_t(start_arg), total);
  // Busy from here to the end, not only while the GIL is released: the core's reused buffers below
  // must not be re-entered by Python code this call may run (a receipt's __index__, a finalizer).
  core->busy = true;
  struct Busy {
    bool& b;
    ~Busy() { b = false; }
  } busy{core->busy};
  std::vector<int64_t>& each = core->batch_each;
  std::vector<FrameView>& views = core->batch_views;
  BatchResult all;
  bool ok = true;
  size_t chunk = FIRST_CHUNK;
  while (ok && at < total && all.code == 0) {
    size_t end = std::min(total, at + chunk);
    chunk = std::min(chunk * 2, BATCH_CHUNK);
    Held held(core->batch_refs);
    views.clear();
    Receipts receipts;
    bool movable = true;
    BatchResult r;
    // The receipts first: converting them may run Python code (an item's __index__, a finalizer),
    // which may change the frames' list. Its size is checked after, and its items read only then: from
    // the view to the end of the chunk no Python code runs, and each viewed frame is held.
    ok = batch_receipts(args[1], at, end, total, each, receipts) && same_size(seq, total) &&
         batch_views(PySequence_Fast_ITEMS(seq) + at, end - at, views, held, movable) &&
         run_chunk(core, views, movable, receipts, r);
    all.done += r.done, all.code = r.code, all.events += r.events;
    at += r.done;
  }
  Py_DECREF(seq);
  if (!ok) return nullptr;
  return Py_BuildValue("(nin)", Py_ssize_t(all.done), all.code, Py_ssize_t(all.events));
}

PyMethodDef BATCHER_DEF = {"feed_many", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(batcher_call)),
                           METH_FASTCALL, "feed_many(frames, receipt_ns, start) -> (done, code, events)."};

void release_owner(PyObject* capsule) { Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(capsule))); }

py::object make_builtin(py::object owner, PyMethodDef* def, const char* name) {
  PyCore* core = py::cast<PyCore*>(owner);
  PyObject* capsule = PyCapsule_New(core, name, release_owner);
  if (capsule == nullptr) throw py::error_already_set();
  Py_INCREF(owner.ptr());
  PyCapsule_SetContext(capsule, owner.ptr());
  PyObject* fn = PyCFunction_NewEx(def, capsule, nullptr);
  Py_DECREF(capsule);
  if (fn == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(fn);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Native Binance frame decoder, L2 books and sync rules (see tickpath.venues.binance.processor).";
  m.attr("BAD_JSON") = BAD_JSON;
  m.attr("BAD_SCHEMA") = BAD_SCHEMA;
  m.attr("BAD_UNKNOWN") = BAD_UNKNOWN;
  m.attr("HANDOFF") = HANDOFF;
  m.attr("WANTS_SNAPSHOT") = WANTS_SNAPSHOT;
  py::class_<PyCore>(m, "Core")
      .def(py::init<bool, std::vector<std::string>, bool, int, size_t, std::string, std::string, py::tuple>(),
           py::arg("futures"), py::arg("symbols"), py::arg("restricted"), py::arg("depth"), py::arg("max_buffer"),
           py::arg("session"), py::arg("venue"), py::arg("classes"))
      .def("on_frame", &PyCore::on_frame, py::arg("frame"), py::arg("receipt_ns"))
      .def("on_snapshot", &PyCore::on_snapshot, py::arg("symbol"), py::arg("body"), py::arg("receipt_ns"),
           py::arg("create"))
      .def("reset", &PyCore::reset, py::arg("symbol"), py::arg("reason"), py::arg("receipt_ns"))
      .def("pending", &PyCore::pending)
      .def("take_events", &PyCore::take_events)
      .def("take_columns", &PyCore::take_columns)
      .def("feeder", [](py::object self) { return make_builtin(self, &FEEDER_DEF, FEEDER); })
      .def("batcher", [](py::object self) { return make_builtin(self, &BATCHER_DEF, BATCHER); })
      .def("symbol_names", &PyCore::symbol_names)
      .def("reasons", &PyCore::reasons)
      .def("stats", &PyCore::stats)
      .def("fast_hits", &PyCore::fast_hits)
      .def("book_stats", &PyCore::book_stats)
      .def("book_state", &PyCore::book_state)
      .def("book_top", &PyCore::book_top, py::arg("symbol"), py::arg("n") = -1)
      .def("symbols", &PyCore::symbols)
      .def_property_readonly("last_event_ms", &PyCore::last_event_ms)
      .def_property_readonly("wants_snapshot", &PyCore::wants_snapshot)
      .def_property_readonly("unknown_kind", &PyCore::unknown_kind)
      .def_property_readonly("last_receipt_ns", &PyCore::last_receipt_ns);
}
