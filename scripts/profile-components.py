#!/usr/bin/env python3
"""Splits a profile of `verihook serve` into the components of one delivered event.

    profile-components.py perf DIR EVENTS        DIR/perf.data (perf record -g, dwarf)
    profile-components.py callgrind DIR EVENTS   DIR/callgrind.out

perf: every sample is put in one row, the step of the event's path it belongs to (the
frame nearest the leaf that names a step: the API handler, the HTTP server, the writer's
save/claim/record, the sender, ...), and one column, what the CPU did there (JSON,
signing, SQLite, allocation, the kernel's network or scheduling, ...). Shares are of the
server's samples; with DIR/cpu (the server's CPU seconds, written by profile.sh) they are
also given in microseconds per delivered event.

callgrind: instructions per delivered event, in total and under each step's entry
function (inclusive counts, which do not drift with the machine as time does).
"""

import collections
import os
import re
import subprocess
import sys

# The step of an event's path, by the frame nearest the leaf that matches (first pattern
# of that frame wins).
STEPS = [
    ("writer: save change", r"ops::save_change|merged::save\b|insert_customer_answering|update_customer|Backend>::save_change"),
    ("writer: claim", r"ops::claim\b|Outbox for .*>::claim|Backend>::claim"),
    ("writer: record", r"ops::record\b|merged::record\b|record_outcomes|Backend>::record"),
    ("writer: commit", r"verihook_store::writer::commit"),
    ("writer: savepoints, queue", r"verihook_store::writer"),
    ("store: reads", r"verihook_store::sqlite::conn::Readers|verihook_store::database|verihook_store::postgres"),
    ("API: handler", r"verihook_server::api::"),
    ("API: HTTP server", r"verihook_server::http|hyper::server|hyper_util::server|axum::"),
    ("delivery: sign", r"verihook_receiver::|verihook_core::signature"),
    ("delivery: send", r"verihook_server::delivery::sender|hyper::client|hyper_util::client"),
    ("delivery: engine", r"verihook_server::delivery"),
    ("runtime (no frame of ours)", r"tokio::runtime|std::sys::.*thread|start_thread"),
]

# What the CPU did, by the frame nearest the leaf that matches.
KINDS = [
    ("HMAC-SHA256", r"sha2::|hmac::|digest::|ring::digest"),
    ("JSON", r"serde_json|serde::"),
    ("SQLite", r"sqlite3|rusqlite::"),
    ("PostgreSQL client", r"sqlx"),
    ("HTTP parse/write", r"httparse|hyper::proto|http::header|hyper::headers"),
    ("allocation", r"malloc|^free$|cfree|realloc|_int_free|alloc::raw_vec|__rust_alloc|__rust_dealloc"),
    ("copy", r"memcpy|memmove|memset"),
    ("tracing, metrics", r"tracing|prometheus"),
    ("kernel: network", r"tcp_|__tcp|ip_|sock|__sys_send|__sys_recv|inet_|skb|__netif|net_rx|__dev_queue|loopback"),
    ("kernel: disk, fsync", r"fsync|ext4|jbd2|blk_|virtio|iowrite|xfs_"),
    ("kernel: wake-ups, scheduling", r"futex|schedule|__switch_to|finish_task_switch|try_to_wake_up|ep_poll|epoll|pick_next|enqueue_task|dequeue_task"),
    ("kernel: other", r"^entry_SYSCALL|do_syscall|^syscall_|__x64_sys|page_fault|exc_page_fault|asm_exc"),
    ("tokio", r"tokio::"),
]


def classify(frames, table):
    for frame in frames:
        for name, pattern in table:
            if re.search(pattern, frame):
                return name
    return "other"


def perf_samples(directory):
    """(thread name, frames leaf first) of each sample."""
    out = subprocess.run(
        ["perf", "script", "-i", os.path.join(directory, "perf.data"), "-F", "comm,ip,sym",
         "--no-inline"],
        capture_output=True, text=True, check=True,
    ).stdout
    comm, frames = None, []
    for line in out.splitlines():
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif line[0].isspace():
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
        else:
            comm, frames = line.strip(), []
    if comm is not None:
        yield comm, frames


def perf(directory, events):
    cells = collections.Counter()
    steps = collections.Counter()
    kinds = collections.Counter()
    total = 0
    for _, frames in perf_samples(directory):
        step, kind = classify(frames, STEPS), classify(frames, KINDS)
        cells[(step, kind)] += 1
        steps[step] += 1
        kinds[kind] += 1
        total += 1
    cpu_path = os.path.join(directory, "cpu")
    us_per_event = None
    if os.path.exists(cpu_path):
        with open(cpu_path) as f:
            us_per_event = float(f.read()) * 1e6 / events
    print(f"{total} samples of the server; {events} events delivered")
    if us_per_event:
        print(f"server CPU per delivered event: {us_per_event:.1f} µs (under the profiler)")
    unit = (lambda n: f"{n / total * us_per_event:6.1f} µs") if us_per_event else (lambda n: "")
    print("\nby step of the path")
    for step, n in steps.most_common():
        print(f"  {step:<30}{n / total:7.1%} {unit(n)}")
    print("\nby what the CPU did")
    for kind, n in kinds.most_common():
        print(f"  {kind:<30}{n / total:7.1%} {unit(n)}")
    print("\nstep × kind (≥ 1 % of samples)")
    for (step, kind), n in cells.most_common():
        if n / total >= 0.01:
            print(f"  {step:<26}{kind:<30}{n / total:7.1%} {unit(n)}")


# Plain functions (not async state machines, whose inclusive counts fold into cycles)
# whose inclusive instructions callgrind gives per event.
CALLGRIND_FUNCTIONS = [
    ("writer: save change", "verihook_store::sqlite::ops::save_change"),
    ("writer: claim", "verihook_store::sqlite::ops::claim"),
    ("writer: record", "verihook_store::sqlite::ops::record"),
    ("writer: commit", "verihook_store::writer::commit::{{closure}}"),
    ("delivery: one attempt", "verihook_server::delivery::engine::DeliveryEngine::deliver::{{closure}}"),
    ("delivery: HTTP exchange", "verihook_server::delivery::sender::Sender::round_trip::{{closure}}"),
]


def callgrind(directory, events):
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100",
         os.path.join(directory, "callgrind.out")],
        capture_output=True, text=True, check=True,
    ).stdout
    total = None
    inclusive = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)", line)
        if not m:
            continue
        count, rest = int(m.group(1).replace(",", "")), m.group(2)
        if rest.startswith("PROGRAM TOTALS"):
            total = count
            continue
        # "file:function [object]": the function, without its object.
        function = re.sub(r"\s*\[[^\]]*\]$", "", rest.split(":", 1)[-1]).strip()
        inclusive[function] = max(inclusive.get(function, 0), count)
    print(f"{events} events delivered; instructions per event (start-up included): "
          f"{total / events:,.0f}")
    print("\ninclusive instructions per event")
    for step, function in CALLGRIND_FUNCTIONS:
        n = inclusive.get(function)
        if n is not None:
            print(f"  {step:<26}{n / events:>12,.0f}  {function}")


if __name__ == "__main__":
    mode, directory, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"perf": perf, "callgrind": callgrind}[mode](directory, max(events, 1))
