"""One benchmark run: publish on server A, receive on server B, one monotonic clock.

Design, and why:

* One I/O thread drives both connections, so receiving and pacing share one loop and never
  contend for the GIL. Between sends it either busy-polls both sockets (``poll(0)``, pacing by
  the monotonic clock: no wake-up on the path of a message, one core at 100%) or sleeps in
  ``select`` with a timeout that ends just before the next intended send time (``select``
  takes microseconds and the thread asks for 1 ns timer slack; event-loop timers, uvloop and
  asyncio alike, only have millisecond resolution). The event loop just supervises (progress,
  cancellation) and stays asleep without a progress callback.
* Open loop: message ``i`` has the intended send time ``t0 + i / rate`` written into its payload
  together with ``i``. When the publisher falls behind (a pause, a slow write) it sends every
  overdue message at once, so the delay shows up in the latency from the intended time; the
  latency from the actual send time is reported too, and the difference is the coordinated
  omission a closed-loop tool would hide.
* Interest first: the subscriber's SUB must cross the route from B to A before the first
  measured message, so probes are published on A until one arrives at B.
* Bounded end: after the last send the run waits at most ``drain_timeout`` for stragglers, then
  counts what is missing as lost. A broken subscriber connection ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import secrets
import select
import ssl
import struct
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from itertools import chain, repeat

from tickpath.busbench.config import BenchConfig
from tickpath.busbench.netns import in_namespace
from tickpath.busbench.results import BenchResult, RunCounters, analyse, due_until
from tickpath.busbench.wire import CRLF, HEADER, PROBE_SEQ, MsgParser, NatsConn, pub_header
from tickpath.errors import ConnectionFailedError, TickpathError
from tickpath.logs import log_event
from tickpath.nats.url import redact
from tickpath.tlsclient import client_context

log = logging.getLogger(__name__)

Progress = Callable[[int, int, int], None]  # (sent, received, total)
PR_SET_TIMERSLACK = 29
PROBE_INTERVAL_NS = 20_000_000
PROGRESS_INTERVAL = 0.5  # seconds between progress callbacks during a run


def _tight_timer_slack() -> None:
    """Ask Linux for 1 ns timer slack on this thread (default 50 µs) so waits end on time."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


class _Frames:
    """The run's PUB frames, packed in C: one struct per batch length packs k whole frames
    (header, seq, intended time, zero filler, CRLF; pad bytes are written as zeros, which is the
    filler we want). The next single message is packed ahead, while waiting for its time, so it
    leaves the moment it is due: packing right then measured ~15 µs of send lag at 1k msg/s."""

    def __init__(self, header: bytes, size: int, max_batch: int, t0: int, offsets: array[int]) -> None:
        self._header = header
        self._t0 = t0
        self._offsets = offsets
        self._fmt = f"{len(header)}sQq{size - HEADER.size}x2s"
        self._batch = bytearray(max_batch * (len(header) + size + 2))
        self._one = struct.Struct("<" + self._fmt)
        self._layouts: dict[int, struct.Struct] = {1: self._one}
        self._single = bytearray(self._one.size)
        self._single_view = memoryview(self._single)
        self._ready = -1

    def prepare(self, i: int) -> None:
        """Pack message ``i`` alone, ahead of its send time."""
        if self._ready != i:
            self._one.pack_into(self._single, 0, self._header, i, self._t0 + self._offsets[i], CRLF)
            self._ready = i

    def frames(self, i: int, end: int) -> memoryview:
        """The frames of messages ``i`` to ``end - 1``, ready to write."""
        k = end - i
        if k == 1 and self._ready == i:
            return self._single_view
        layout = self._layouts.get(k)
        if layout is None:
            layout = self._layouts[k] = struct.Struct("<" + self._fmt * k)
        header, t0 = self._header, self._t0
        layout.pack_into(
            self._batch,
            0,
            *chain.from_iterable(
                zip(
                    repeat(header, k),
                    range(i, end),
                    map(t0.__add__, self._offsets[i:end]),
                    repeat(CRLF, k),
                    strict=True,
                )
            ),
        )
        return memoryview(self._batch)[: layout.size]


class _Run:
    """State of one run, owned by its I/O thread (the event loop only reads counters)."""

    def __init__(self, cfg: BenchConfig, subject: str) -> None:
        self.cfg = cfg
        self.subject = subject.encode()
        self.total = cfg.total
        self.sent_ns = array("q", bytes(8 * self.total))
        self.recv_ns = array("q", bytes(8 * self.total))
        self.counters = RunCounters()
        # Intended send times relative to t0, computed before the run (ns, integer).
        interval = cfg.interval_ns
        self.offsets = array("q", (int(seq * interval) for seq in range(self.total)))
        self.sent = 0
        self.t0 = 0
        self.stop = threading.Event()
        self.done = threading.Event()
        self.pub_error: str | None = None
        self.sub_error: str | None = None
        self.sub_alive = True  # until the subscriber's connection breaks or closes
        self.fatal: BaseException | None = None

    # -- subscriber ------------------------------------------------------------------------
    def on_frames(self, frames: Iterable[tuple[int, int]], recv_ns: int) -> None:
        """Account a chunk's messages: first receipt wins, duplicates and reordering counted."""
        c = self.counters
        recv = self.recv_ns
        total = self.total
        received, dups, reordered, max_seq = 0, 0, 0, c.max_seq
        for seq, _intended in frames:
            if seq >= total:
                if seq == PROBE_SEQ:
                    c.probes += 1
                else:
                    c.unexpected += 1
            elif recv[seq]:
                dups += 1
            else:
                recv[seq] = recv_ns
                received += 1
                if seq < max_seq:
                    reordered += 1
                else:
                    max_seq = seq
        c.received += received
        c.duplicates += dups
        c.reordered += reordered
        c.max_seq = max_seq

    def io_loop(self, pub: NatsConn, sub: NatsConn) -> None:
        """Thread body: probe for interest, then the schedule, then the bounded drain."""
        _tight_timer_slack()
        try:
            self._io(pub, sub)
        except (OSError, TickpathError) as exc:
            self.fatal = exc
        finally:
            self.done.set()

    def _io(self, pub: NatsConn, sub: NatsConn) -> None:
        assert sub.sock is not None and pub.sock is not None
        sub.sock.setblocking(False)
        parser = MsgParser(self.on_frames, sub.send)
        parser.expect(self.subject, self.cfg.size)
        if sub.leftover:
            parser.feed(sub.leftover, time.monotonic_ns())
        receive = self._receiver(pub, sub, parser)
        if self._await_interest(pub, receive):
            self._schedule(pub, receive)
            self._drain(receive)

    def _receiver(self, pub: NatsConn, sub: NatsConn, parser: MsgParser) -> Callable[[float], None]:
        """``receive(timeout)``: wait up to ``timeout`` s for the subscriber, feed what it sent to
        ``parser`` and answer the publisher's PINGs. A closure, as it runs between every two sends."""
        ss, ps = sub.sock, pub.sock
        assert ss is not None and ps is not None
        mono = time.monotonic_ns
        is_tls = isinstance(ss, ssl.SSLSocket)
        # A poll object for zero-timeout polls (the busy path): no fd lists built per call.
        # ``select`` stays for timed waits because it takes microseconds, poll only milliseconds.
        poller = select.poll()
        poller.register(ss, select.POLLIN)
        poller.register(ps, select.POLLIN)
        ss_fd = ss.fileno()
        # One receive buffer for the run: recv(256 KiB) allocates that much per call, which
        # measured 22 µs per receive here against 2 µs for recv_into, all inside the latency.
        rbuf = bytearray(1 << 18)
        rview = memoryview(rbuf)

        def receive(timeout: float) -> None:
            if is_tls and self.sub_alive and ss.pending() > 0:  # type: ignore[attr-defined]
                sub_ready, pub_ready = True, False  # decrypted bytes buffered: poll would not see them
            elif timeout <= 0:
                events = poller.poll(0)
                if not events:
                    return
                sub_ready = any(fd == ss_fd for fd, _ in events)
                pub_ready = any(fd != ss_fd for fd, _ in events)
            else:
                readable = select.select([ss, ps] if self.sub_alive else [ps], [], [], timeout)[0]
                sub_ready, pub_ready = ss in readable, ps in readable
            if pub_ready:
                pub.answer_pings()
            if self.sub_alive and sub_ready:
                try:
                    n = ss.recv_into(rbuf)
                except (BlockingIOError, ssl.SSLWantReadError):
                    return
                except OSError as exc:
                    n, self.sub_error = 0, f"subscriber connection to {sub.addr} broke: {exc}"
                if not n:
                    self.sub_alive = False
                    poller.unregister(ss)
                    self.sub_error = self.sub_error or f"subscriber connection to {sub.addr} closed by the server"
                    return
                parser.feed(rview[:n], mono())

        return receive

    def _await_interest(self, pub: NatsConn, receive: Callable[[float], None]) -> bool:
        """Probe on A until one arrives at B (False: stopped first); raises if none arrives in time."""
        cfg, mono = self.cfg, time.monotonic_ns
        probe = pub_header(self.subject, cfg.size) + HEADER.pack(PROBE_SEQ, 0) + bytes(cfg.size - HEADER.size) + CRLF
        deadline = mono() + int(cfg.interest_timeout * 1e9)
        next_probe = 0
        while self.counters.probes == 0:
            if self.stop.is_set():
                return False
            now = mono()
            if not self.sub_alive or now > deadline:
                raise ConnectionFailedError(
                    self.sub_error
                    or f"interest from {redact(cfg.sub_url)} did not reach "
                    f"{redact(cfg.pub_url)} within {cfg.interest_timeout:g} s: are the servers routed?"
                )
            if now >= next_probe:
                pub.send(probe)
                next_probe = now + PROBE_INTERVAL_NS
            receive((next_probe - now) / 1e9)
        return True

    def _schedule(self, pub: NatsConn, receive: Callable[[float], None]) -> None:
        """The open-loop schedule, starting 5 ms ahead so the first send is not already late."""
        cfg, mono = self.cfg, time.monotonic_ns
        interval, total, offsets, sent_ns = cfg.interval_ns, self.total, self.offsets, self.sent_ns
        pause_seq = cfg.warmup_count + cfg.pause_at if cfg.pause_at is not None else -1
        paused_until = 0
        # Timer wake-ups are tens of microseconds late on VMs, so the loop wakes ``lead`` early
        # and polls the last stretch: the send leaves on time. ``spin`` also polls after each
        # send until its echo arrives (or spin expires), saving the receive-side wake-up; both
        # cost CPU in proportion to their length x rate.
        spin = int(cfg.spin_us * 1e3)
        # Polling ahead of a send takes at most a quarter of each interval (CPU for the servers).
        lead = max(spin, min(int(cfg.lead_us * 1e3), int(interval / 4)))
        spin_until = 0
        # Busy-polling never sleeps between sends: no timer or socket wake-up (tens of µs on a
        # VM) lies on the path of a message, at the price of one core at 100% for the run.
        busy = cfg.busy
        self.t0 = t0 = mono() + 5_000_000
        packer = _Frames(pub_header(self.subject, cfg.size), cfg.size, cfg.max_batch, t0, offsets)
        i = 0
        while i < total and not self.stop.is_set():
            now = mono()
            if i == pause_seq:
                # A stalled publisher: nothing is sent, but receiving goes on.
                pause_seq, paused_until = -1, now + int(cfg.pause_ms * 1e6)
            if now < paused_until:
                receive((paused_until - now) / 1e9)
                continue
            due = due_until(t0, now, interval, total)
            if due <= i:
                packer.prepare(i)
                wait = t0 + offsets[i] - now
                if busy or wait <= lead or (now < spin_until and self.counters.received < self.sent):
                    receive(0)  # spin: about to send, or a reply is due any microsecond
                else:
                    self.counters.sleeps += 1
                    receive((wait - lead) / 1e9)
                continue
            end = min(due, i + cfg.max_batch)
            if 0 <= pause_seq - i < end - i:
                end = pause_seq  # the stall begins inside this batch
            k = end - i
            frames = packer.frames(i, end)
            ts = mono()
            try:
                pub.send(frames)
            except TickpathError as exc:
                self.pub_error = str(exc)
                break
            sent_ns[i:end] = array("q", (ts,)) * k
            spin_until = ts + spin
            self.sent = i = end
            if due > end or k > 1:
                receive(0)  # catching up: still drain the subscriber between batches

    def _drain(self, receive: Callable[[float], None]) -> None:
        """Wait at most ``drain_timeout`` for the stragglers."""
        deadline = time.monotonic_ns() + int(self.cfg.drain_timeout * 1e9)
        while self.sub_alive and self.counters.received < self.sent and not self.stop.is_set():
            now = time.monotonic_ns()
            if now > deadline:
                break
            receive(0 if self.cfg.busy else min(0.05, (deadline - now) / 1e9))


def _connect(url: str, cfg: BenchConfig, name: str) -> NatsConn:
    ctx = None
    if cfg.tls is not None:
        ctx = client_context(cfg.tls.ca, cfg.tls.cert, cfg.tls.key, verify_host=cfg.tls.verify_host)
    conn = NatsConn(url, ssl_context=ctx, credentials=cfg.credentials, name=name)
    conn.connect()
    return conn


async def run(cfg: BenchConfig, *, progress: Progress | None = None) -> BenchResult:
    """Run one benchmark and return its figures (losses included; never raises for losses)."""
    subject = cfg.subject or f"tickpath.busbench.{secrets.token_hex(6)}"
    run_ = _Run(cfg, subject)
    conns: list[NatsConn] = []
    thread = None
    gc_was_enabled = gc.isenabled()
    try:
        sub = await in_namespace(cfg.netns, lambda: _connect(cfg.sub_url, cfg, "busbench-sub"))
        conns.append(sub)
        pub = await in_namespace(cfg.netns, lambda: _connect(cfg.pub_url, cfg, "busbench-pub"))
        conns.insert(0, pub)
        rtt_sub = await asyncio.to_thread(sub.rtt_ns, 5)
        rtt_pub = await asyncio.to_thread(pub.rtt_ns, 5)
        await asyncio.to_thread(sub.subscribe, subject)
        thread = threading.Thread(target=run_.io_loop, args=(pub, sub), name="busbench-io", daemon=True)
        # The hot path allocates only short-lived objects; a cyclic collection of everything
        # else in the process would show up as a latency spike, so collect before, not during.
        gc.collect()
        gc.disable()
        thread.start()
        log_event(
            log,
            logging.INFO,
            "busbench_started",
            pub=redact(cfg.pub_url),
            sub=redact(cfg.sub_url),
            size=cfg.size,
            rate=cfg.rate,
            total=run_.total,
        )
        await _supervise(run_, progress)
    finally:
        if gc_was_enabled:
            gc.enable()
        await _stop(run_, thread, conns)
    if run_.fatal is not None:
        if isinstance(run_.fatal, TickpathError):
            raise run_.fatal
        raise ConnectionFailedError(f"busbench I/O failed: {run_.fatal}") from run_.fatal
    result = _result(run_, rtt_pub=rtt_pub, rtt_sub=rtt_sub, tls=cfg.tls is not None or pub.addr.tls)
    log_event(
        log,
        logging.INFO,
        "busbench_finished",
        lost=result.lost,
        achieved_rate=round(result.achieved_rate),
        p50_us=result.intended.percentile(50) / 1e3,
    )
    return result


async def _supervise(run_: _Run, progress: Progress | None) -> None:
    """Wait for the I/O thread to finish, reporting progress if asked to."""
    # The event loop's wake-ups take the GIL from the I/O thread, and at 1k msg/s each one
    # that lands on a message shows in its latency: without progress, wake only at the end;
    # with it, a few times a second.
    if progress is None:
        await asyncio.to_thread(run_.done.wait)
        return
    while not run_.done.is_set():
        progress(run_.sent, run_.counters.received, run_.total)
        await asyncio.sleep(PROGRESS_INTERVAL)
    progress(run_.sent, run_.counters.received, run_.total)


async def _stop(run_: _Run, thread: threading.Thread | None, conns: list[NatsConn]) -> None:
    """Stop the I/O thread and close the connections, whatever state the run is in."""
    run_.stop.set()
    if thread is not None:
        await asyncio.to_thread(thread.join, 2.0)
    for conn in conns:  # also wakes the I/O thread if it is stuck in a send
        with contextlib.suppress(OSError):
            conn.close()
    if thread is not None:
        await asyncio.to_thread(thread.join, 2.0)


def _result(run_: _Run, *, rtt_pub: list[int], rtt_sub: list[int], tls: bool) -> BenchResult:
    """The figures of a finished run, from its timestamps and counters."""
    cfg = run_.cfg
    figures = analyse(
        t0=run_.t0,
        interval_ns=cfg.interval_ns,
        warmup=cfg.warmup_count,
        sent_ns=run_.sent_ns,
        recv_ns=run_.recv_ns,
        keep_samples=cfg.keep_samples,
    )
    c = run_.counters
    achieved = figures["achieved_rate"]
    return BenchResult(
        size=cfg.size,
        rate=cfg.rate,
        pub=redact(cfg.pub_url),
        sub=redact(cfg.sub_url),
        subject=run_.subject.decode(),
        warmup=cfg.warmup_count,
        measured=figures["measured"],
        sent=figures["sent"],
        received=figures["received"],
        lost=figures["lost"],
        warmup_lost=figures["warmup_lost"],
        unsent=figures["unsent"],
        duplicates=c.duplicates,
        reordered=c.reordered,
        achieved_rate=achieved,
        sustained=achieved >= cfg.min_rate_ratio * cfg.rate,
        duration_s=figures["duration_s"],
        intended=figures["intended"],
        actual=figures["actual"],
        send_lag=figures["send_lag"],
        rtt_pub_ns=rtt_pub,
        rtt_sub_ns=rtt_sub,
        tls=tls,
        errors=[e for e in (run_.pub_error, run_.sub_error) if e],
        samples=figures["samples"],
        wait_mode=cfg.wait_mode,
        sleeps=c.sleeps,
    )
