#!/usr/bin/env python3
"""Turn bench/run's raw per-run numbers (TSV) into the Markdown report.

    report.py RAW.tsv META.env > latest.md

RAW.tsv columns: group, metric, contender, round, value (one row per measured run).
META.env: KEY=VALUE lines (machine, sizes, tools) written by bench/run.
"""
import statistics
import sys
from collections import defaultdict

raw_path, meta_path = sys.argv[1], sys.argv[2]
meta = {}
for line in open(meta_path):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        meta[k] = v

vals = defaultdict(list)  # (group, metric, contender) -> [values, in round order]
for line in open(raw_path):
    if line.startswith("group\t") or not line.strip():
        continue
    g, m, c, _r, v = line.rstrip("\n").split("\t")
    vals[(g, m, c)].append(float(v))

GATEWAYS = ["portcullis", "nginx"]
WITH_DIRECT = GATEWAYS + ["registry-direct"]
SMALL = ["portcullis", "nginx", "portcullis-auth-off", "portcullis-redis", "registry-direct"]


def agg(g, m, c, how="median"):
    v = vals.get((g, m, c))
    if not v:
        return None
    return {"max": max, "first": lambda x: x[0], "last": lambda x: x[-1]}.get(how, statistics.median)(v)


def runs(g, m, c, digits=1):
    v = vals.get((g, m, c), [])
    return " / ".join(f"{x:,.{digits}f}" for x in v) if v else "n/a"


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def ratio(x, ref):
    return "n/a" if x is None or not ref else f"{x / ref:.2f}x"


out = []
p = out.append
n_idle = meta.get("IDLE_CONNS")
size = meta.get("BLOB_MIB")
load = meta.get("LOAD_SECONDS")
conns = meta.get("CONNS")


def peak_transfers(c):
    peaks = [agg(g, f"{m}_peak_rss_mib", c, "max") for g, m in
             (("get", "h1"), ("get", "h2"), ("upload", "put"), ("upload", "patch"))]
    return max([x for x in peaks if x is not None], default=None)


def target_rows():
    """(what, measured, goal, met) for every target of the benchmark."""
    rows = []

    def vs(what, g, m, goal, other="nginx", lower=False):
        a, b = agg(g, m, "portcullis"), agg(g, m, other)
        if a is None or not b:
            rows.append((what, "n/a", f"{goal}", None))
            return
        r = a / b
        met = r <= goal if lower else r >= goal
        rows.append((what, f"{r:.2f}x {other}", f"{'<=' if lower else '>='} {goal}x", met))

    vs("Blob GET, HTTP/1.1", "get", "h1_mibs", 1.6)
    vs("Blob GET, HTTP/2", "get", "h2_mibs", 1.5)
    vs("Upload, monolithic PUT", "upload", "put_mibs", 1.3)
    vs("Upload, chunked PATCH", "upload", "patch_mibs", 1.3)
    vs("Authenticated GET /v2/", "small", "rps", 100)
    vs("Authenticated HEAD manifest", "small", "head_rps", 100)
    vs("GET /v2/ vs Portcullis with auth off", "small", "rps", 0.9, "portcullis-auth-off")
    vs("HEAD manifest vs Portcullis with auth off", "small", "head_rps", 0.9, "portcullis-auth-off")
    vs("TLS full handshakes/s", "tls", "conn_per_s", 1.0)
    vs("TLS resumed handshakes/s", "tls", "resumed_per_s", 1.0)
    for how, label in (("first", "1st set"), ("max", "worst set")):
        a, b = agg("mem", "conns_mib", "portcullis", how), agg("mem", "conns_mib", "nginx", how)
        if a is not None and b:
            rows.append((f"RSS with {n_idle} idle TLS connections ({label})",
                         f"{a:.1f} vs {b:.1f} MiB ({a / b:.2f}x)", "<= 1.00x", a <= b))
    start, peak = agg("mem", "start_mib", "portcullis"), peak_transfers("portcullis")
    if start is not None and peak is not None:
        rows.append((f"RSS flat during {size} MiB transfers", f"peak {peak:.1f} MiB (start {start:.1f})",
                     "peak < start + 64 MiB", peak < start + 64))
    return rows


def transfer_row(g, prefix, c, label):
    """One row of a blob-transfer table: throughput, and the gateway's CPU and peak RSS
    (n/a for registry-direct, which has no gateway process), each against nginx."""
    t, ref_t = agg(g, f"{prefix}_mibs", c), agg(g, f"{prefix}_mibs", "nginx")
    cpu, ref_c = agg(g, f"{prefix}_cpu_s_per_gib", c), agg(g, f"{prefix}_cpu_s_per_gib", "nginx")
    rss = agg(g, f"{prefix}_peak_rss_mib", c, "max")
    return (f"| {c} | {label} | {fmt(t)} | {ratio(t, ref_t)} | {runs(g, prefix + '_mibs', c)} | "
            f"{fmt(cpu, 2)} | {ratio(cpu, ref_c)} | {fmt(rss)} |")


rounds = meta.get("ROUNDS", "?")
p(f"# Portcullis vs nginx vs registry direct ({meta.get('MODE', '?')} run)")
p("")
p(f"Machine: {meta.get('NPROC')} CPUs, {meta.get('CPU')}, {meta.get('MEM_GIB')} GiB RAM; "
  f"{meta.get('DATE')}; {meta.get('KERNEL')}.")
p(f"Versions: {meta.get('PORTCULLIS')}; {meta.get('NGINX')}; {meta.get('REGISTRY')}; "
  f"{meta.get('CURL')}; {meta.get('WRK')}; {meta.get('OHA')}; {meta.get('OPENSSL')}.")
p(f"Everything (registry, gateways, clients) runs on this one machine over loopback. "
  f"Medians of {rounds} run(s) per contender, contenders alternating run by run; "
  f"\"vs nginx\" = this contender's number / nginx's number in the same run. "
  f"Measuring took {meta.get('MEASURE_SECONDS')} s (after build and set-up). Same ECDSA P-256 "
  "certificate chain and the same htpasswd (one user, bcrypt cost 10) for both gateways. "
  "Raw per-run numbers: `latest.tsv`; chart: `latest.png`.")
p("")
p("## Targets")
p("")
p("| target | measured (Portcullis) | goal | met |")
p("|---|---|---|---|")
for what, measured, goal, met in target_rows():
    p(f"| {what} | {measured} | {goal} | {'n/a' if met is None else ('yes' if met else '**no**')} |")
p("")

p(f"## a. Blob GET over TLS ({size} MiB random blob, one `curl` download)")
p("")
p("| contender | protocol | MiB/s | vs nginx | each run | gateway CPU s/GiB | vs nginx | peak RSS MiB |")
p("|---|---|---:|---:|---:|---:|---:|---:|")
for proto, label in (("h1", "HTTP/1.1"), ("h2", "HTTP/2")):
    for c in WITH_DIRECT:
        if c == "registry-direct" and proto == "h2":
            continue
        p(transfer_row("get", proto, c, "HTTP/1.1, plain HTTP" if c == "registry-direct" else label))
p("")
p("Gateway CPU = user+system time of the gateway (nginx: master and workers summed) from "
  "`/proc/PID/stat` around the transfer, per GiB moved; the registry's and curl's CPU are not "
  "counted. The registry does not speak HTTP/2 without TLS (h2c), so it has no HTTP/2 row.")
p("")

p(f"## b. Blob upload over TLS, HTTP/1.1 ({size} MiB)")
p("")
p("| contender | method | MiB/s | vs nginx | each run | gateway CPU s/GiB | vs nginx | peak RSS MiB |")
p("|---|---|---:|---:|---:|---:|---:|---:|")
for m, label in (("put", "monolithic PUT"), ("patch", "chunked PATCH + closing PUT")):
    for c in WITH_DIRECT:
        p(transfer_row("upload", m, c, label))
p("")
p("Time = the data-carrying request(s) only (PUT with `?digest=` and Content-Length; or one "
  "PATCH with Transfer-Encoding: chunked plus the closing PUT), from curl's `time_total`; the "
  "opening POST is not timed; `Expect: 100-continue` off. registry-direct is plain HTTP. The "
  "registry itself (hashing and writing the blob) is the ceiling here: compare each gateway "
  "with registry-direct, and the gateways' CPU per GiB.")
p("")

p(f"## c. Small authenticated requests with keep-alive ({conns} connections, {load} s)")
p("")
p("| contender | GET /v2/ req/s | vs nginx | p50 ms | p99 ms | HEAD manifest req/s | vs nginx | p50 ms | p99 ms |")
p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
ref_g, ref_h = agg("small", "rps", "nginx"), agg("small", "head_rps", "nginx")
for c in SMALL:
    g, h = agg("small", "rps", c), agg("small", "head_rps", c)
    p(f"| {c} | {fmt(g)} | {ratio(g, ref_g)} | {fmt(agg('small', 'p50_ms', c), 2)} | {fmt(agg('small', 'p99_ms', c), 2)} | "
      f"{fmt(h)} | {ratio(h, ref_h)} | {fmt(agg('small', 'head_p50_ms', c), 2)} | {fmt(agg('small', 'head_p99_ms', c), 2)} |")
p("")
p("`GET /v2/`: `wrk -t2 -c{0} -d{1}s`; `HEAD /v2/bench/blob/manifests/v1` (OCI manifest by tag): "
  "`oha -m HEAD -c{0} -z {1}s` (wrk waits for a body after HEAD). nginx runs bcrypt (cost 10) on "
  "every request. Portcullis keeps a verified user/password for 60 s (`[auth.cache]`), and "
  "answers an allowed `GET /v2/` itself while its health check sees the registry up and "
  "without auth of its own; the HEAD goes to the registry. portcullis-auth-off: the same "
  "gateway with `auth.allow_unauthenticated = true`. registry-direct: plain HTTP, no auth."
  .format(conns, load))
p("")

p("## d. New TLS connections per second")
p("")
p("| contender | full handshakes/s | vs nginx | each run | resumed/s | vs nginx | each run |")
p("|---|---:|---:|---:|---:|---:|---:|")
ref_f, ref_r = agg("tls", "conn_per_s", "nginx"), agg("tls", "resumed_per_s", "nginx")
for c in GATEWAYS:
    f, r = agg("tls", "conn_per_s", c), agg("tls", "resumed_per_s", c)
    p(f"| {c} | {fmt(f)} | {ratio(f, ref_f)} | {runs('tls', 'conn_per_s', c)} | {fmt(r)} | {ratio(r, ref_r)} | {runs('tls', 'resumed_per_s', c)} |")
p("")
p(f"`openssl s_time -new -time {meta.get('STIME_SECONDS')}` (a full handshake per connection, "
  f"negotiated {meta.get('TLS_NEGOTIATED', '?')}) and `s_time -reuse -tls1_2` (session "
  "resumption; s_time reads nothing after the handshake, so it never receives TLS 1.3 tickets "
  "and can only resume TLS 1.2). No HTTP request. Number = connections / wall-clock time of the "
  "s_time run. The single-threaded client shares the cores with the server.")
p("")

p("## f. Shared state: memory vs Redis (same run)")
p("")
p("| request | memory req/s | Redis req/s | Redis / memory | memory p50 ms | Redis p50 ms | Redis calls |")
p("|---|---:|---:|---:|---:|---:|---|")
for what, m, p50, calls in (("GET /v2/ (cached credentials)", "rps", "p50_ms", "none (not a pull)"),
                             ("HEAD manifest (cached credentials)", "head_rps", "head_p50_ms", None),
                             ("GET manifest, counted by a pull limit", "pull_rps", "pull_p50_ms", "pull")):
    a, b = agg("small", m, "portcullis"), agg("small", m, "portcullis-redis")
    if calls is None:
        calls = f"{fmt(agg('small', 'head_redis_calls', 'portcullis-redis'), 0)} during the whole run"
    elif calls == "pull":
        calls = f"{fmt(agg('small', 'pull_redis_calls_per_request', 'portcullis-redis'), 3)} per request"
    p(f"| {what} | {fmt(a)} | {fmt(b)} | {ratio(b, a)} | {fmt(agg('small', p50, 'portcullis'), 2)} | "
      f"{fmt(agg('small', p50, 'portcullis-redis'), 2)} | {calls} |")
p("")
p(f"portcullis-redis: the same gateway and config with `[state] backend = \"redis\"` "
  f"({meta.get('REDIS', 'redis')} on loopback). Both have the same pull limit (never reached). "
  "Requests with cached credentials make no Redis call (the failed-login counters are only "
  "asked when a password is checked); a counted manifest GET makes one (an atomic script).")
p("")

p("## e. Memory (resident set size, MiB)")
p("")
p(f"| contender | at start | before 1st set | with {n_idle} idle TLS connections, each set | "
  "per connection KiB (1st set) | 2 s after closing, each set | peak during transfers |")
p("|---|---:|---:|---|---:|---|---:|")
for c in GATEWAYS:
    idle, conns1 = agg("mem", "idle_mib", c, "first"), agg("mem", "conns_mib", c, "first")
    per = None if idle is None or conns1 is None else (conns1 - idle) * 1024 / float(n_idle)
    p(f"| {c} | {fmt(agg('mem', 'start_mib', c))} | {fmt(idle)} | {runs('mem', 'conns_mib', c)} | {fmt(per)} | "
      f"{runs('mem', 'after_mib', c)} | {fmt(peak_transfers(c))} |")
p("")
p("VmRSS from `/proc/PID/status` (nginx: master + workers summed). At start = after the sanity "
  f"checks. A set = `bench/idle_tls.py` opens {n_idle} TLS connections (full handshakes, ALPN "
  "http/1.1) and sends nothing; RSS is read 1 s later, then they are closed. Sets follow each "
  "other in the same processes, so later sets show whether memory is reused. Peak = highest "
  "100 ms sample during any blob GET or upload.")
p("")
print("\n".join(out))
