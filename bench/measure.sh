# Sourced by bench/run: one function per measurement, each run once per call and recorded
# with `rec GROUP METRIC CONTENDER ROUND VALUE` into the raw TSV. Every measured request is
# checked (status, bytes); a mismatch stops the run naming the contender.

# Gateway processes whose CPU and memory count: Portcullis, Caddy, HAProxy (one process
# each); nginx master + workers.
procs() {
  case "$1" in
    nginx) echo "${pidof_[nginx]} $(pgrep -P "${pidof_[nginx]}" | tr '\n' ' ')" ;;
    *) echo "${pidof_[$1]}" ;;
  esac
}
cpu_ticks() { local t=0 p; for p in $(procs "$1"); do t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}'))); done; echo "$t"; }
rss_kib() { local t=0 p; for p in $(procs "$1"); do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
rss_mib() { awk -v k="$(rss_kib "$1")" 'BEGIN {printf "%.1f", k/1024}'; }
mib_s() { python3 -c "import sys; t=float(sys.argv[1]); print('%.2f' % ($2/1048576/t) if t > 0 else 0)" "$1" "$2"; }
is_gateway() { [ "$1" != registry-direct ]; }

# CPU time and peak RSS (100 ms samples) of a gateway around one transfer:
#   watch_start CONTENDER; ...transfer...; watch_stop CONTENDER GROUP PREFIX ROUND BYTES
watch_start() {
  is_gateway "$1" || return 0
  : > "$work/rss.samples"; touch "$work/sampling"
  ( for _ in $(seq 36000); do [ -e "$work/sampling" ] || break; rss_kib "$1" >> "$work/rss.samples"; sleep 0.1; done ) & sampler=$!
  ticks0=$(cpu_ticks "$1")
}
watch_stop() {
  is_gateway "$1" || return 0
  local ticks1
  ticks1=$(cpu_ticks "$1")
  rm -f "$work/sampling"; wait "$sampler"; sampler=
  rec "$2" "${3}_cpu_s_per_gib" "$1" "$4" "$(python3 -c "print('%.3f' % (($ticks1-$ticks0)/$clk_tck/($5/1073741824)))")"
  rec "$2" "${3}_peak_rss_mib" "$1" "$4" "$(sort -n "$work/rss.samples" | tail -1 | awk '{printf "%.1f", $1/1024}')"
  # Growth: the highest sample over the first (taken as the transfer started).
  rec "$2" "${3}_rss_growth_mib" "$1" "$4" "$(awk 'NR==1 {f=$1} $1>m {m=$1} END {printf "%.1f", (m-f)/1024}' "$work/rss.samples")"
}

# a. One download of the blob: CONTENDER h1|h2 ROUND
get_blob() {
  local n=$1 proto=$2 r=$3 out code t size got v=--http1.1
  [ "$proto" = h2 ] && v=--http2
  watch_start "$n"
  # shellcheck disable=SC2046
  out=$(curl $(copts "$n") $v -o /dev/null -w '%{http_code} %{time_total} %{size_download} %{http_version}' \
    "${base[$n]}/v2/bench/blob/blobs/$digest") || true
  read -r code t size got <<<"$out"
  [ "$code" = 200 ] && [ "$size" = "$blob_bytes" ] || die "$n $v GET blob: '$out' (want 200 and $blob_bytes bytes)"
  watch_stop "$n" get "$proto" "$r" "$size"
  rec get "${proto}_mibs" "$n" "$r" "$(mib_s "$t" "$size")"
  log "GET $n $proto: $(mib_s "$t" "$size") MiB/s (HTTP/$got)"
}

# b. Monolithic PUT of the blob (Content-Length), over HTTP/1.1 or (h2) HTTP/2:
#    CONTENDER ROUND [h2]
upload_put() {
  local n=$1 r=$2 path out code t size v=--http1.1 m=put
  [ "${3:-}" = h2 ] && v=--http2 m=put_h2
  path=$(start_upload "$n" bench/up-put)
  watch_start "$n"
  # shellcheck disable=SC2046
  out=$(curl $(copts "$n") $v -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$work/blob" \
    -o /dev/null -w '%{http_code} %{time_total} %{size_upload}' "${base[$n]}$path$(sep "$path")digest=$digest") || true
  read -r code t size <<<"$out"
  [ "$code" = 201 ] && [ "$size" = "$blob_bytes" ] || die "$n monolithic PUT $v: '$out' (want 201 and $blob_bytes bytes)"
  watch_stop "$n" upload "$m" "$r" "$blob_bytes"
  rec upload "${m}_mibs" "$n" "$r" "$(mib_s "$t" "$blob_bytes")"
  log "PUT $v $n: $(mib_s "$t" "$blob_bytes") MiB/s"
}

# One authenticated GET /v2/ so that CONTENDER's credential cache is warm before a
# measurement: Portcullis forgets a verified password after 60 s and rounds are further apart,
# while Caddy's hash_cache never forgets; without it a round would time one bcrypt (about
# 64 ms) for Portcullis and none for Caddy, not the work it is about.
warm_credentials() {
  is_gateway "$1" || return 0
  local code
  # shellcheck disable=SC2046
  code=$(curl $(copts "$1") -o /dev/null -w '%{http_code}' "${base[$1]}/v2/") || true
  [ "$code" = 200 ] || die "$1: warming the credential cache answered '$code'"
}

# a. par_clients downloads of the par_mib MiB blob at once, each its own curl and connection
#    (HTTP/1.1): aggregate MiB/s (all bytes / wall time), the slowest client's seconds, and
#    the gateway's CPU per GiB and RSS growth meanwhile: CONTENDER ROUND
parallel_pulls() {
  local n=$1 r=$2 i t0 t1 procs_=() line code t size slowest=0 total
  warm_credentials "$n"
  watch_start "$n"
  t0=$(date +%s.%N)
  for i in $(seq "$par_clients"); do
    # shellcheck disable=SC2046
    curl $(copts "$n") --http1.1 -o /dev/null -w '%{http_code} %{time_total} %{size_download}\n' \
      "${base[$n]}/v2/bench/par/blobs/$par_digest" > "$work/par.$i" 2>&1 & procs_+=($!)
  done
  for i in "${procs_[@]}"; do wait "$i" || true; done
  t1=$(date +%s.%N)
  for i in $(seq "$par_clients"); do
    read -r code t size < "$work/par.$i" || true
    [ "$code" = 200 ] && [ "$size" = "$par_bytes" ] || die "$n parallel pull $i: '$(cat "$work/par.$i")' (want 200 and $par_bytes bytes)"
    slowest=$(python3 -c "print(max($slowest, $t))")
  done
  total=$((par_clients * par_bytes))
  watch_stop "$n" par par "$r" "$total"
  rec par par_mibs "$n" "$r" "$(mib_s "$(python3 -c "print($t1 - $t0)")" "$total")"
  rec par slowest_s "$n" "$r" "$slowest"
  log "$par_clients parallel pulls $n: $(mib_s "$(python3 -c "print($t1 - $t0)")" "$total") MiB/s, slowest ${slowest} s"
}

# a. A pull of small_layers small blobs (1 to 64 KiB) one after another on one keep-alive
#    connection (one curl, HTTP/1.1): layers/s and MiB/s: CONTENDER ROUND
small_blobs() {
  local n=$1 r=$2 d args=() t0 t1 out got bytes t
  for d in "${small_digests[@]}"; do args+=(-o /dev/null "${base[$n]}/v2/bench/small/blobs/$d"); done
  warm_credentials "$n"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  out=$(curl $(copts "$n") --http1.1 -w '%{http_code} %{size_download} %{num_connects}\n' "${args[@]}") || true
  t1=$(date +%s.%N)
  got=$(awk '$1==200' <<<"$out" | wc -l)
  bytes=$(awk '$1==200 {s+=$2} END {print s+0}' <<<"$out")
  [ "$got" = "$small_layers" ] && [ "$bytes" = "$small_bytes" ] || die "$n small-layer pull: $got of $small_layers answered 200, $bytes of $small_bytes bytes"
  t=$(python3 -c "print($t1 - $t0)")
  rec small_blobs layers_per_s "$n" "$r" "$(python3 -c "print('%.1f' % ($small_layers / $t))")"
  rec small_blobs mibs "$n" "$r" "$(mib_s "$t" "$small_bytes")"
  log "small-layer pull $n: $(python3 -c "print('%.1f' % ($small_layers / $t))") layers/s"
}

# b. The blob as one chunked PATCH (Transfer-Encoding: chunked) and a closing PUT: CONTENDER ROUND
upload_patch() {
  local n=$1 r=$2 path out code t1 t2 loc
  path=$(start_upload "$n" bench/up-patch)
  watch_start "$n"
  # shellcheck disable=SC2046
  out=$(curl $(copts "$n") --http1.1 -X PATCH -H 'Expect:' -H 'Content-Type: application/octet-stream' -T - \
    -D "$work/patch.headers" -o /dev/null -w '%{http_code} %{time_total}' "${base[$n]}$path" < "$work/blob") || true
  read -r code t1 <<<"$out"
  [ "$code" = 202 ] || die "$n chunked PATCH: '$out' (want 202)"
  loc=$(tr -d '\r' < "$work/patch.headers" | awk 'tolower($1)=="location:" {print $2}')
  path="/${loc#*://*/}"; path=${path/#\/\//\/}
  # shellcheck disable=SC2046
  out=$(curl $(copts "$n") --http1.1 -X PUT --data-binary '' -H 'Content-Type: application/octet-stream' -o /dev/null -w '%{http_code} %{time_total}' "${base[$n]}$path$(sep "$path")digest=$digest") || true
  read -r code t2 <<<"$out"
  [ "$code" = 201 ] || die "$n closing PUT after PATCH: '$out' (want 201)"
  watch_stop "$n" upload patch "$r" "$blob_bytes"
  t=$(python3 -c "print($t1 + $t2)")
  rec upload patch_mibs "$n" "$r" "$(mib_s "$t" "$blob_bytes")"
  log "PATCH $n: $(mib_s "$t" "$blob_bytes") MiB/s"
}

# c. Authenticated GET /v2/ with keep-alive (wrk): CONTENDER ROUND
small_get() {
  local n=$1 r=$2 out rps url
  url="https://127.0.0.1:${port[$n]:-}/v2/"
  [ "$n" = registry-direct ] && url="${base[$n]}/v2/"
  out=$(wrk -t2 -c"$conns" -d"${load_seconds}s" --latency -H "$auth_header" "$url")
  grep -q 'Non-2xx' <<<"$out" && die "$n: wrk saw non-2xx answers: $out"
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  [ -n "$rps" ] || die "$n: could not parse wrk output: $out"
  rec small rps "$n" "$r" "$rps"
  rec small p50_ms "$n" "$r" "$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")"
  rec small p99_ms "$n" "$r" "$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")"
  log "GET /v2/ $n: $rps req/s"
}
to_ms() { python3 -c '
import sys
v = sys.argv[1]
for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
    if v.endswith(unit): print("%.3f" % (float(v[:-len(unit)]) * f)); break
else: print(float(v))' "$1"; }

# Every thread of the registry on CPU 0, and of CONTENDER's processes on CPU 1 (pin_cpus), or
# all of them on every CPU again (unpin_cpus). Threads started later inherit the affinity.
pin_cpus() {
  [ "$(nproc)" -ge 2 ] || die "the HEAD measurement with the registry on its own CPU needs 2 CPUs, this machine has $(nproc)"
  taskset -a -p -c 0 "$reg_pid" >/dev/null || die "taskset could not pin the registry"
  if is_gateway "$1"; then
    local p
    for p in $(procs "$1"); do taskset -a -p -c 1 "$p" >/dev/null || die "taskset could not pin $1"; done
  fi
}
unpin_cpus() {
  local all="0-$(($(nproc) - 1))" p
  taskset -a -p -c "$all" "$reg_pid" >/dev/null
  if is_gateway "$1"; then for p in $(procs "$1"); do taskset -a -p -c "$all" "$p" >/dev/null; done; fi
}

# c. Authenticated HEAD of a manifest by tag with keep-alive (oha; wrk cannot do HEAD):
#    CONTENDER ROUND [pinned]. pinned: the registry alone on CPU 0, the gateway and oha on
#    CPU 1, so that what the gateway costs is not taken from the registry's CPU.
small_head() {
  local n=$1 r=$2 url summary m=head pin=()
  url="${base[$n]}/v2/bench/blob/manifests/v1"
  [ "$n" = registry-direct ] || url="https://localhost:${port[$n]}/v2/bench/blob/manifests/v1"
  if [ "${3:-}" = pinned ]; then m=head_pinned pin=(taskset -c 1); pin_cpus "$n"; fi
  local before=0 after=0
  [ "$n" = portcullis-redis ] && before=$(redis_calls "$n")
  "${pin[@]}" oha --no-tui --output-format json -m HEAD -c "$conns" -z "${load_seconds}s" --http-version 1.1 \
    --cacert "$ca" -H "$auth_header" -H "Accept: $manifest_type" "$url" > "$work/oha.json" 2>"$work/oha.err" \
    || { [ ${#pin[@]} = 0 ] || unpin_cpus "$n"; die "$n: oha failed: $(cat "$work/oha.err")"; }
  [ ${#pin[@]} = 0 ] || unpin_cpus "$n"
  summary=$(python3 - "$work/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
bad = {k: v for k, v in codes.items() if k != "200"}
if bad or not codes:
    print("bad", json.dumps(codes)); sys.exit()
p = d["latencyPercentiles"]
print("%.1f %.3f %.3f" % (d["summary"]["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000))
PY
)
  case "$summary" in bad*) die "$n: HEAD manifest answered other than 200: ${summary#bad }" ;; esac
  read -r rps p50 p99 <<<"$summary"
  if [ "$n" = portcullis-redis ]; then
    after=$(redis_calls "$n")
    rec small head_redis_calls "$n" "$r" "$((after - before))"
  fi
  rec small "${m}_rps" "$n" "$r" "$rps"
  rec small "${m}_p50_ms" "$n" "$r" "$p50"
  rec small "${m}_p99_ms" "$n" "$r" "$p99"
  log "HEAD manifest $n${pin:+ (registry on its own CPU)}: $rps req/s"
}

# c. Authenticated GET of a manifest by tag, counted against a pull limit (oha), and the
#    Redis calls the gateway made meanwhile (portcullis_state_redis_calls_total): CONTENDER ROUND
small_pull() {
  local n=$1 r=$2 url summary before after
  url="https://localhost:${port[$n]}/v2/bench/blob/manifests/v1"
  before=$(redis_calls "$n")
  oha --no-tui --output-format json -c "$conns" -z "${load_seconds}s" --http-version 1.1 \
    --cacert "$ca" -H "$auth_header" -H "Accept: $manifest_type" "$url" > "$work/oha.json" 2>"$work/oha.err" \
    || die "$n: oha failed: $(cat "$work/oha.err")"
  after=$(redis_calls "$n")
  summary=$(python3 - "$work/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
bad = {k: v for k, v in codes.items() if k != "200"}
if bad or not codes:
    print("bad", json.dumps(codes)); sys.exit()
p = d["latencyPercentiles"]
print("%.1f %.3f %.3f %d" % (d["summary"]["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000, sum(codes.values())))
PY
)
  case "$summary" in bad*) die "$n: GET manifest answered other than 200: ${summary#bad }" ;; esac
  read -r rps p50 p99 count <<<"$summary"
  rec small pull_rps "$n" "$r" "$rps"
  rec small pull_p50_ms "$n" "$r" "$p50"
  rec small pull_p99_ms "$n" "$r" "$p99"
  rec small pull_redis_calls_per_request "$n" "$r" "$(python3 -c "print('%.3f' % (($after - $before) / max($count, 1)))")"
  log "GET manifest (counted) $n: $rps req/s"
}

# Redis calls a Portcullis instance made so far (0 without Redis).
redis_calls() {
  curl -s "http://127.0.0.1:${admin[$1]}/metrics" | awk '$1=="portcullis_state_redis_calls_total" {print $2; f=1} END {if (!f) print 0}'
}

# d. TLS connections per second with openssl s_time: CONTENDER ROUND new|reuse
#    new: a full TLS 1.3 handshake per connection. reuse: TLS 1.2 session resumption (s_time
#    reads nothing after the handshake, so it never sees TLS 1.3 tickets and cannot resume 1.3).
handshakes() {
  local n=$1 r=$2 mode=$3 t0 t1 out line cps metric=conn_per_s extra=()
  [ "$mode" = reuse ] && metric=resumed_per_s extra=(-tls1_2)
  local ticks0 ticks1
  ticks0=$(cpu_ticks "$n")
  t0=$(date +%s.%N)
  out=$(timeout $((stime_seconds + 30)) openssl s_time -connect "127.0.0.1:${port[$n]}" -CAfile "$ca" "-$mode" "${extra[@]}" -time "$stime_seconds" 2>&1) || true
  t1=$(date +%s.%N)
  line=$(grep -m1 'connections in .* real seconds' <<<"$out" || true)
  [ -n "$line" ] || die "$n: openssl s_time -$mode failed: $out"
  # s_time prints "r" per resumed and "*" per full handshake: resumption must really happen.
  if [ "$mode" = reuse ] && [ "$(grep -E '^[*r]+$' <<<"$out" | tr -cd 'r' | wc -c)" -lt 10 ]; then
    die "$n: openssl s_time -reuse resumed no sessions"
  fi
  ticks1=$(cpu_ticks "$n")
  cps=$(awk -v t="$(python3 -c "print($t1 - $t0)")" '{printf "%.1f", $1 / t}' <<<"$line")
  rec tls "$metric" "$n" "$r" "$cps"
  # The server's own CPU per connection: s_time (one thread, on the same cores) is the
  # limit of the rate, so this is the fairer comparison.
  rec tls "${mode}_cpu_ms_per_conn" "$n" "$r" "$(awk -v t="$((ticks1 - ticks0))" -v hz="$clk_tck" '{printf "%.3f", t / hz * 1000 / $1}' <<<"$line")"
  log "s_time -$mode $n: $cps handshakes/s ($line)"
}

# e. RSS with N idle TLS connections held by bench/idle_tls.py: CONTENDER ROUND
idle_set() {
  local n=$1 r=$2 kib
  rec mem idle_mib "$n" "$r" "$(rss_mib "$n")"   # before this set
  rm -f "$work/ready" "$work/stop"
  python3 bench/idle_tls.py 127.0.0.1 "${port[$n]}" "$ca" "$idle_conns" "$work/ready" "$work/stop" & holder=$!
  for _ in $(seq 1200); do [ -e "$work/ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.05; done
  [ -e "$work/ready" ] || { wait "$holder" || true; holder=; die "$n: could not open $idle_conns idle TLS connections"; }
  sleep 1
  kib=$(rss_kib "$n")
  touch "$work/stop"
  wait "$holder" || die "$n: held only $(cat "$work/ready") of $idle_conns TLS connections"
  holder=
  rec mem conns_mib "$n" "$r" "$(awk -v k="$kib" 'BEGIN {printf "%.1f", k/1024}')"
  sleep 2
  rec mem after_mib "$n" "$r" "$(rss_mib "$n")"   # 2 s after closing them
  log "RSS $n: $(awk -v k="$kib" 'BEGIN {printf "%.1f", k/1024}') MiB with $idle_conns idle TLS connections"
}

# z. The physical limit on this machine (bench/tls-limit): a bare rustls sender and receiver
#    in two processes over loopback, and the same over plain TCP: ROUND
tls_limit() {
  local r=$1 out
  out=$(bench/tls-limit/target/release/tls-limit "$work/certs/server.crt" "$work/certs/server.key" "$ca" "$blob_mib") \
    || die "tls-limit failed: $out"
  while IFS= read -r line; do
    local kind mibs snd rcv
    case "$line" in plain*) kind=tcp ;; TLS*) kind=tls ;; *) continue ;; esac
    mibs=$(sed -E 's/.*: ([0-9.]+) MiB\/s.*/\1/' <<<"$line")
    snd=$(sed -E 's/.*sender CPU ([0-9.]+) s\/GiB.*/\1/' <<<"$line")
    rcv=$(sed -E 's/.*receiver CPU ([0-9.]+) s\/GiB.*/\1/' <<<"$line")
    rec limit "${kind}_mibs" bare "$r" "$mibs"
    rec limit "${kind}_sender_cpu_s_per_gib" bare "$r" "$snd"
    rec limit "${kind}_receiver_cpu_s_per_gib" bare "$r" "$rcv"
  done <<<"$out"
  log "limit: $(tr '\n' ';' <<<"$out")"
}
