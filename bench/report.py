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

vals = defaultdict(list)  # (group, metric, contender) -> [values]
for line in open(raw_path):
    if line.startswith("group\t") or not line.strip():
        continue
    g, m, c, _r, v = line.rstrip("\n").split("\t")
    vals[(g, m, c)].append(float(v))

CONTENDERS = ["portcullis", "nginx", "registry-direct"]


def agg(g, m, c, how="median"):
    v = vals.get((g, m, c))
    if not v:
        return None
    return max(v) if how == "max" else statistics.median(v)


def rounds_of(g, m, c):
    return vals.get((g, m, c), [])


def runs(g, m, c, digits=1):
    v = rounds_of(g, m, c)
    return " / ".join(f"{x:,.{digits}f}" for x in v) if v else "n/a"


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def ratio(x, ref):
    if x is None or ref is None or ref == 0:
        return "n/a"
    return f"{x / ref:.2f}x"


out = []
p = out.append
rounds = meta.get("ROUNDS", "?")
p(f"# Portcullis vs nginx vs registry direct ({meta.get('MODE', '?')} run)")
p("")
p(f"Machine: {meta.get('NPROC')} CPUs, {meta.get('CPU')}, {meta.get('MEM_GIB')} GiB RAM; "
  f"{meta.get('DATE')}; {meta.get('KERNEL')}.")
p(f"Versions: {meta.get('PORTCULLIS')}; {meta.get('NGINX')}; {meta.get('REGISTRY')}; "
  f"{meta.get('CURL')}; {meta.get('OPENSSL')}.")
p(f"Everything (registry, gateways, clients) runs on this one machine over loopback. "
  f"Medians of {rounds} run(s) per contender, contenders alternating run by run; "
  f"\"vs nginx\" = this contender's number / nginx's number in the same row group "
  f"(higher is better for throughput and rates, lower for CPU, latency and memory).")
p(f"Measuring took {meta.get('MEASURE_SECONDS')} s (after build and set-up).")
p("Same ECDSA P-256 certificate chain (leaf + intermediate, `portcullis certs`) and the same "
  "htpasswd (one user, bcrypt cost 10) for both gateways. Raw per-run numbers: "
  "`bench/results/latest.tsv`.")
p("")

# a. Blob GET
size = meta.get("BLOB_MIB")
p(f"## a. Blob GET over TLS ({size} MiB random blob, one `curl` download)")
p("")
p("| contender | protocol | MiB/s | vs nginx | MiB/s, each run | gateway CPU s/GiB | vs nginx | peak gateway RSS MiB |")
p("|---|---|---:|---:|---:|---:|---:|---:|")
for proto, label in (("h1", "HTTP/1.1"), ("h2", "HTTP/2")):
    ref_t = agg("get", f"{proto}_mibs", "nginx")
    ref_c = agg("get", f"{proto}_cpu_s_per_gib", "nginx")
    for c in CONTENDERS:
        t = agg("get", f"{proto}_mibs", c)
        cpu = agg("get", f"{proto}_cpu_s_per_gib", c)
        rss = agg("get", f"{proto}_peak_rss_mib", c, "max")
        if c == "registry-direct":
            lab = "HTTP/1.1, plain HTTP" if proto == "h1" else "HTTP/2 (h2c)"
            if t is None:
                p(f"| {c} | {lab} | n/a | n/a | n/a | n/a | n/a | n/a |")
                continue
            p(f"| {c} | {lab} | {fmt(t)} | {ratio(t, ref_t)} | {runs('get', proto + '_mibs', c)} | n/a (no gateway) | n/a | n/a |")
            continue
        p(f"| {c} | {label} | {fmt(t)} | {ratio(t, ref_t)} | {runs('get', proto + '_mibs', c)} | {fmt(cpu, 2)} | {ratio(cpu, ref_c)} | {fmt(rss)} |")
p("")
p("Gateway CPU = user+system time of the gateway process (nginx: sum of its workers and "
  "master) from `/proc/PID/stat` before and after the download, per GiB moved. The registry's "
  "and curl's CPU are not counted. registry-direct has no HTTP/2 without TLS (the registry "
  "does not speak h2c), hence n/a.")
p("")

# b. Upload
p(f"## b. Blob upload over TLS, HTTP/1.1 ({size} MiB)")
p("")
p("| contender | method | MiB/s | vs nginx | each run |")
p("|---|---|---:|---:|---:|")
for m, label in (("put_mibs", "monolithic PUT ?digest= (Content-Length)"),
                 ("patch_mibs", "chunked PATCH (Transfer-Encoding: chunked) + closing PUT")):
    ref = agg("upload", m, "nginx")
    for c in CONTENDERS:
        t = agg("upload", m, c)
        p(f"| {c} | {label} | {fmt(t)} | {ratio(t, ref)} | {runs('upload', m, c)} |")
p("")
p("Time = the data-carrying request(s) only (PUT; or PATCH + closing PUT), from curl's "
  "`time_total`; the opening POST is not timed. curl's `Expect: 100-continue` is turned off. "
  "registry-direct is plain HTTP (no TLS).")
p("")

# c. Small requests
p(f"## c. Authenticated `GET /v2/` with keep-alive (wrk -t2 -c16 -d{meta.get('WRK_SECONDS')}s)")
p("")
p("| contender | requests/s | vs nginx | p50 ms | p99 ms | p99 ms, each run |")
p("|---|---:|---:|---:|---:|---:|")
ref = agg("small", "rps", "nginx")
for c in CONTENDERS:
    p(f"| {c} | {fmt(agg('small', 'rps', c))} | {ratio(agg('small', 'rps', c), ref)} | "
      f"{fmt(agg('small', 'p50_ms', c), 2)} | {fmt(agg('small', 'p99_ms', c), 2)} | {runs('small', 'p99_ms', c, 2)} |")
p("")
p("nginx runs bcrypt (cost 10) on every request; Portcullis caches a verified "
  "user/password for 60 s (`[auth.cache]`, its default), so after the first request it does "
  "no bcrypt. registry-direct: plain HTTP, no auth. `bench/auth` adds Portcullis with auth off "
  "for reference.")
p("")

# d. Handshakes
p(f"## d. New TLS connections per second (full handshakes)")
p("")
p("| contender | handshakes/s | vs nginx | each run |")
p("|---|---:|---:|---:|")
ref = agg("tls", "conn_per_s", "nginx")
for c in CONTENDERS:
    t = agg("tls", "conn_per_s", c)
    p(f"| {c} | {fmt(t)} | {ratio(t, ref)} | {runs('tls', 'conn_per_s', c)} |" if c != "registry-direct" else f"| {c} | n/a (no TLS) | n/a | n/a |")
p("")
p(f"`openssl s_time -connect 127.0.0.1:PORT -new -time {meta.get('STIME_SECONDS')}` "
  f"(one client process, a new full handshake per connection, no session reuse, no HTTP "
  f"request; negotiated {meta.get('TLS_NEGOTIATED', 'TLS 1.3')}); number = s_time's connection "
  f"count / the wall-clock time of the s_time run (s_time itself reports whole seconds only). The single-threaded client shares the 2 cores with the "
  f"server, so this is a floor for both.")
p("")

# e. Memory
p("## e. Memory (resident set size, MiB)")
p("")
n_idle = meta.get("IDLE_CONNS")


def first(g, m, c):
    v = rounds_of(g, m, c)
    return v[0] if v else None


p(f"| contender | at start | idle before 1st set | with {n_idle} idle TLS connections (1st set) | "
  f"per connection KiB | 2 s after closing them | with {n_idle}, each set in turn | peak during blob GET | vs nginx (1st set) |")
p("|---|---:|---:|---:|---:|---:|---|---:|---:|")
ref = first("mem", "conns_mib", "nginx")
for c in CONTENDERS:
    if c == "registry-direct":
        p(f"| {c} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
        continue
    idle = first("mem", "idle_mib", c)
    conns = first("mem", "conns_mib", c)
    per = None if idle is None or conns is None else (conns - idle) * 1024 / float(n_idle)
    peak = max([x for x in (agg("get", "h1_peak_rss_mib", c, "max"), agg("get", "h2_peak_rss_mib", c, "max")) if x is not None], default=None)
    p(f"| {c} | {fmt(agg('mem', 'start_mib', c))} | {fmt(idle)} | {fmt(conns)} | {fmt(per)} | "
      f"{fmt(first('mem', 'after_mib', c))} | {runs('mem', 'conns_mib', c)} | {fmt(peak)} | {ratio(conns, ref)} |")
p("")
p("VmRSS from `/proc/PID/status` (nginx: master + workers summed). At start = after the "
  "sanity checks, before any measurement. A set = a Python client (`bench/idle_tls.py`) opens "
  f"{n_idle} TLS connections, completes the handshakes (ALPN http/1.1), sends nothing; the RSS "
  "is read 1 s later while they are held, then they are closed. The sets are not independent "
  "(memory a process keeps after the first set shows up in the next), so the table uses the "
  "first set (after groups a-d) rather than a median, and lists every set's reading to show "
  "whether memory is given back. Per connection = (with - idle before) / N, first set. Peak = "
  "highest 100 ms sample during any blob GET. registry-direct: not a gateway.")
p("")
print("\n".join(out))
