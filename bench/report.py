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

PEERS = ["nginx", "caddy", "haproxy"]
GATEWAYS = ["portcullis"] + PEERS
WITH_DIRECT = GATEWAYS + ["registry-direct"]
SMALL = GATEWAYS + ["portcullis-auth-off", "portcullis-redis", "registry-direct"]
# Metrics where lower is better (their "best peer" is the lowest).
LOWER = ("cpu_s_per_gib", "rss", "_ms", "slowest_s", "_mib", "cpu_ms_per_conn")


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


def lower_is_better(m):
    return any(k in m for k in LOWER) and not m.endswith("_mibs")


def best_peer(g, m, how="median"):
    """(value, name) of the best of nginx, Caddy and HAProxy for a metric in this run."""
    got = [(agg(g, m, c, how), c) for c in PEERS]
    got = [(v, c) for v, c in got if v is not None and v > 0]
    if not got:
        return None, None
    return (min if lower_is_better(m) else max)(got)


def vs_best(g, m, c, how="median"):
    ref, _ = best_peer(g, m, how)
    return ratio(agg(g, m, c, how), ref)


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
    """(what, measured, goal, met) for every target of the benchmark: against the best of
    nginx, Caddy and HAProxy in this run, or against the registry direct."""
    rows = []

    def vs(what, g, m, goal, other=None, how="median", other_m=None):
        a = agg(g, m, "portcullis", how)
        if other is None:
            b, name = best_peer(g, m, how)
        else:
            b, name = agg(g, other_m or m, other, how), other
        if a is None or not b:
            rows.append((what, "n/a", f"{goal}", None))
            return
        r = a / b
        lower = lower_is_better(m)
        met = r <= goal if lower else r >= goal
        rows.append((what, f"{r:.2f}x {name}", f"{'<=' if lower else '>='} {goal}x", met))

    vs("Blob GET, HTTP/1.1", "get", "h1_mibs", 1.2)
    vs("Blob GET, HTTP/1.1, gateway CPU per GiB", "get", "h1_cpu_s_per_gib", 0.8)
    vs("Blob GET, HTTP/2", "get", "h2_mibs", 1.2)
    vs("Blob GET, HTTP/2, gateway CPU per GiB", "get", "h2_cpu_s_per_gib", 0.8)
    vs(f"{meta.get('PAR_CLIENTS')} parallel pulls, aggregate", "par", "par_mibs", 1.2)
    vs(f"{meta.get('PAR_CLIENTS')} parallel pulls, gateway CPU per GiB", "par", "par_cpu_s_per_gib", 0.8)
    vs("Upload, monolithic PUT, vs registry direct", "upload", "put_mibs", 0.95, "registry-direct")
    vs("Upload, chunked PATCH, vs registry direct", "upload", "patch_mibs", 0.95, "registry-direct")
    vs("Upload, PUT over HTTP/2, vs registry direct (HTTP/1.1)", "upload", "put_h2_mibs", 0.95,
       "registry-direct", other_m="put_mibs")
    vs("Upload PUT, gateway CPU per GiB", "upload", "put_cpu_s_per_gib", 1.0)
    vs("Upload PUT over HTTP/2, gateway CPU per GiB", "upload", "put_h2_cpu_s_per_gib", 1.0)
    vs("Authenticated HEAD manifest, vs registry direct", "small", "head_rps", 0.95, "registry-direct")
    vs("Authenticated HEAD manifest, registry on its own CPU, vs registry direct", "small",
       "head_pinned_rps", 0.95, "registry-direct")
    vs("GET /v2/ vs Portcullis with auth off", "small", "rps", 0.9, "portcullis-auth-off")
    vs("HEAD manifest vs Portcullis with auth off", "small", "head_rps", 0.9, "portcullis-auth-off")
    vs("TLS full handshakes/s", "tls", "conn_per_s", 1.2)
    vs("TLS full handshake, gateway CPU per handshake", "tls", "new_cpu_ms_per_conn", 1.0)
    vs(f"RSS with {n_idle} idle TLS connections (1st set), vs HAProxy", "mem", "conns_mib", 1.0, "haproxy", "first")
    first, worst = agg("mem", "conns_mib", "portcullis", "first"), agg("mem", "conns_mib", "portcullis", "max")
    if first is not None:
        rows.append((f"RSS with {n_idle} idle TLS connections flat across sets", f"worst {worst:.1f} vs 1st {first:.1f} MiB",
                     "worst <= 1.1x 1st", worst <= first * 1.1))
    vs(f"RSS growth during {meta.get('PAR_CLIENTS')} parallel pulls, vs HAProxy", "par", "par_rss_growth_mib", 1.0, "haproxy", "max")
    start, peak = agg("mem", "start_mib", "portcullis"), peak_transfers("portcullis")
    if start is not None and peak is not None:
        rows.append((f"RSS flat during {size} MiB transfers", f"peak {peak:.1f} MiB (start {start:.1f})",
                     "peak < start + 64 MiB", peak < start + 64))
    return rows


def transfer_row(g, prefix, c, label):
    """One row of a blob-transfer table: throughput, and the gateway's CPU and peak RSS
    (n/a for registry-direct, which has no gateway process), each against the best peer."""
    t, cpu = agg(g, f"{prefix}_mibs", c), agg(g, f"{prefix}_cpu_s_per_gib", c)
    rss = agg(g, f"{prefix}_peak_rss_mib", c, "max")
    return (f"| {c} | {label} | {fmt(t)} | {vs_best(g, prefix + '_mibs', c)} | {runs(g, prefix + '_mibs', c)} | "
            f"{fmt(cpu, 2)} | {vs_best(g, prefix + '_cpu_s_per_gib', c)} | {fmt(rss)} |")


rounds = meta.get("ROUNDS", "?")
p(f"# Portcullis vs nginx, Caddy and HAProxy vs registry direct ({meta.get('MODE', '?')} run)")
p("")
p(f"Machine: {meta.get('NPROC')} CPUs, {meta.get('CPU')}, {meta.get('MEM_GIB')} GiB RAM; "
  f"{meta.get('DATE')}; {meta.get('KERNEL')}.")
p(f"Versions: {meta.get('PORTCULLIS')}; {meta.get('NGINX')}; {meta.get('REGISTRY')}; "
  f"{meta.get('CURL')}; {meta.get('WRK')}; {meta.get('OHA')}; {meta.get('OPENSSL')}.")
p(f"Everything (registry, gateways, clients) runs on this one machine over loopback. "
  f"Medians of {rounds} run(s) per contender, contenders alternating run by run; "
  f"\"vs best peer\" = this contender's number / the best of nginx, Caddy and HAProxy for that "
  f"number in the same run (the highest, or the lowest for CPU, memory and latency). "
  f"Measuring took {meta.get('MEASURE_SECONDS')} s (after build and set-up). Same ECDSA P-256 "
  "certificate chain and the same htpasswd (one user, bcrypt cost 10) for every gateway, 2 workers each. "
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
p("| contender | protocol | MiB/s | vs best peer | each run | gateway CPU s/GiB | vs best peer | peak RSS MiB |")
p("|---|---|---:|---:|---:|---:|---:|---:|")
for proto, label in (("h1", "HTTP/1.1"), ("h2", "HTTP/2")):
    for c in WITH_DIRECT:
        if c == "registry-direct" and proto == "h2":
            continue
        p(transfer_row("get", proto, c, "HTTP/1.1, plain HTTP" if c == "registry-direct" else label))
p("")
p("Gateway CPU = user+system time of the gateway (nginx: master and workers summed; Caddy and HAProxy are one process each) from "
  "`/proc/PID/stat` around the transfer, per GiB moved; the registry's and curl's CPU are not "
  "counted. The registry does not speak HTTP/2 without TLS (h2c), so it has no HTTP/2 row.")
p("")

pc, pm = meta.get("PAR_CLIENTS"), meta.get("PAR_MIB")
p(f"## a2. {pc} parallel pulls of a {pm} MiB blob, HTTP/1.1")
p("")
p("| contender | aggregate MiB/s | vs best peer | each run | slowest client s | gateway CPU s/GiB | vs best peer | RSS growth MiB | vs best peer |")
p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in WITH_DIRECT:
    p(f"| {c} | {fmt(agg('par', 'par_mibs', c))} | {vs_best('par', 'par_mibs', c)} | {runs('par', 'par_mibs', c)} | "
      f"{fmt(agg('par', 'slowest_s', c), 2)} | {fmt(agg('par', 'par_cpu_s_per_gib', c), 2)} | "
      f"{vs_best('par', 'par_cpu_s_per_gib', c)} | {fmt(agg('par', 'par_rss_growth_mib', c, 'max'))} | "
      f"{vs_best('par', 'par_rss_growth_mib', c, 'max')} |")
p("")
p(f"{pc} `curl` processes started at once, each one connection and one download; aggregate = all "
  "bytes / wall time from the first start to the last end. RSS growth = highest 100 ms sample "
  "minus the first, during the pulls. Each gateway's credential cache is warmed by one "
  "authenticated `GET /v2/` just before (Portcullis forgets a verified password after 60 s, "
  "Caddy's hash_cache never), here and in a3.")
p("")
sl = meta.get("SMALL_LAYERS")
p(f"## a3. A pull of {sl} small layers (1 to 64 KiB), one keep-alive connection")
p("")
p("| contender | layers/s | vs best peer | each run | MiB/s |")
p("|---|---:|---:|---:|---:|")
for c in WITH_DIRECT:
    p(f"| {c} | {fmt(agg('small_blobs', 'layers_per_s', c))} | {vs_best('small_blobs', 'layers_per_s', c)} | "
      f"{runs('small_blobs', 'layers_per_s', c)} | {fmt(agg('small_blobs', 'mibs', c), 2)} |")
p("")
p("One `curl --http1.1` with every blob URL in turn (one connection, Basic credentials on each "
  "request): what an image of many small layers costs, dominated by per-request work "
  "(authentication, the registry round trip) rather than bytes.")
p("")

p(f"## b. Blob upload over TLS ({size} MiB)")
p("")
p("| contender | method | MiB/s | vs best peer | each run | gateway CPU s/GiB | vs best peer | peak RSS MiB |")
p("|---|---|---:|---:|---:|---:|---:|---:|")
for m, label in (("put", "monolithic PUT"), ("put_h2", "monolithic PUT, HTTP/2"),
                 ("patch", "chunked PATCH + closing PUT")):
    for c in WITH_DIRECT:
        if c == "registry-direct" and m == "put_h2":
            continue
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
p("| contender | GET /v2/ req/s | vs best peer | p50 ms | p99 ms | HEAD manifest req/s | vs best peer | p50 ms | p99 ms |")
p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in SMALL:
    g, h = agg("small", "rps", c), agg("small", "head_rps", c)
    p(f"| {c} | {fmt(g)} | {vs_best('small', 'rps', c)} | {fmt(agg('small', 'p50_ms', c), 2)} | {fmt(agg('small', 'p99_ms', c), 2)} | "
      f"{fmt(h)} | {vs_best('small', 'head_rps', c)} | {fmt(agg('small', 'head_p50_ms', c), 2)} | {fmt(agg('small', 'head_p99_ms', c), 2)} |")
p("")
p("`GET /v2/`: `wrk -t2 -c{0} -d{1}s`; `HEAD /v2/bench/blob/manifests/v1` (OCI manifest by tag): "
  "`oha -m HEAD -c{0} -z {1}s` (wrk waits for a body after HEAD). nginx runs bcrypt (cost 10) on "
  "every request. Portcullis keeps a verified user/password for 60 s (`[auth.cache]`), and "
  "answers an allowed `GET /v2/` itself while its health check sees the registry up and "
  "without auth of its own; the HEAD goes to the registry. portcullis-auth-off: the same "
  "gateway with `auth.allow_unauthenticated = true`. registry-direct: plain HTTP, no auth."
  .format(conns, load))
p("")

p("## c2. HEAD manifest with the registry on its own CPU")
p("")
p("| contender | HEAD manifest req/s | vs registry direct | each run | vs best peer | p50 ms | p99 ms |")
p("|---|---:|---:|---:|---:|---:|---:|")
for c in WITH_DIRECT:
    h = agg("small", "head_pinned_rps", c)
    p(f"| {c} | {fmt(h)} | {ratio(h, agg('small', 'head_pinned_rps', 'registry-direct'))} | "
      f"{runs('small', 'head_pinned_rps', c)} | {vs_best('small', 'head_pinned_rps', c)} | "
      f"{fmt(agg('small', 'head_pinned_p50_ms', c), 2)} | {fmt(agg('small', 'head_pinned_p99_ms', c), 2)} |")
p("")
p("The same `oha -m HEAD` as in c, with every thread of the registry pinned to CPU 0 and the "
  "gateway's processes and oha to CPU 1 (`taskset`). In c the registry, which spends about a "
  "millisecond of CPU per HEAD, shares both cores with the gateway and the client, so every "
  "microsecond the gateway and the client's TLS cost is taken from the registry; here the "
  "registry's CPU is its own, as it is when the gateway runs on another machine or core, and "
  "the ratio to registry-direct shows what the gateway itself adds.")
p("")

p("## d. New TLS connections per second")
p("")
p("| contender | full handshakes/s | vs best peer | each run | CPU ms per full handshake | vs best peer | resumed/s | vs best peer | each run | CPU ms per resumed |")
p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in GATEWAYS:
    f, r = agg("tls", "conn_per_s", c), agg("tls", "resumed_per_s", c)
    p(f"| {c} | {fmt(f)} | {vs_best('tls', 'conn_per_s', c)} | {runs('tls', 'conn_per_s', c)} | "
      f"{fmt(agg('tls', 'new_cpu_ms_per_conn', c), 3)} | {vs_best('tls', 'new_cpu_ms_per_conn', c)} | {fmt(r)} | "
      f"{vs_best('tls', 'resumed_per_s', c)} | {runs('tls', 'resumed_per_s', c)} | {fmt(agg('tls', 'reuse_cpu_ms_per_conn', c), 3)} |")
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

p("## z. The physical limit of one TLS stream on this machine")
p("")
p("| path | MiB/s | sender CPU s/GiB | receiver CPU s/GiB |")
p("|---|---:|---:|---:|")
for kind, label in (("tcp", "plain TCP, memory to memory"), ("tls", "TLS 1.3 AES-128-GCM, rustls + aws-lc-rs")):
    p(f"| {label} | {fmt(agg('limit', kind + '_mibs', 'bare'))} | {fmt(agg('limit', kind + '_sender_cpu_s_per_gib', 'bare'), 3)} | "
      f"{fmt(agg('limit', kind + '_receiver_cpu_s_per_gib', 'bare'), 3)} |")
floor = [agg("limit", "tls_sender_cpu_s_per_gib", "bare"), agg("limit", "tcp_receiver_cpu_s_per_gib", "bare")]
p("")
p("`bench/tls-limit`: a sender process writing from memory in 64 KiB writes and a receiver "
  "reading, over loopback; the same rustls and aws-lc-rs as Portcullis. On loopback the sender's "
  "system calls also run the receiving side's TCP processing, so the sender's CPU is most of "
  "the total. A TLS-terminating gateway does at least a TLS sender's work plus a plain-TCP "
  "receiver's (from the registry): "
  + (f"{floor[0] + floor[1]:.2f} CPU s/GiB in this run." if None not in floor else "n/a."))
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
p("VmRSS from `/proc/PID/status` (nginx: master + workers summed; Caddy and HAProxy: one process). At start = after the sanity "
  f"checks. A set = `bench/idle_tls.py` opens {n_idle} TLS connections (full handshakes, ALPN "
  "http/1.1) and sends nothing; RSS is read 1 s later, then they are closed. Sets follow each "
  "other in the same processes, so later sets show whether memory is reused. Peak = highest "
  "100 ms sample during any blob GET or upload.")
p("")
print("\n".join(out))
