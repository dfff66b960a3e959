# Sourced by bench/run: starts the registry, the two Portcullis instances and nginx.
# Needs: $work (temporary folder), $bin (portcullis), $user/$pass, die, wait_port, free_port,
# and the pids array (everything started is added to it, and killed on exit).

# The registry: filesystem storage in the temporary folder, plain HTTP, no auth, quiet logs.
start_registry() {
  reg_port=$(free_port)
  cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$reg_port}
YAML
  docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & pids+=($!)
  reg_pid=$!
  wait_port "$reg_port" "$work/registry.log"
}

# Redis for the shared-state contender: no persistence, loopback only.
start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    > "$work/redis.log" 2>&1 & pids+=($!)
  wait_port "$redis_port" "$work/redis.log"
}

# Portcullis with every default but the access log: NAME AUTH-TOML. Sets port_NAME/pid_NAME
# through the caller's associative arrays port[] and pidof_[].
start_portcullis() {
  local name=$1 auth=$2 p a
  p=$(free_port) a=$(free_port)
  cat > "$work/$name.toml" <<TOML
listen = ["127.0.0.1:$p"]
upstream = "http://127.0.0.1:$reg_port"
$auth
[tls]
certificate = "$work/certs/server.crt"
key = "$work/certs/server.key"
[admin]
listen = "127.0.0.1:$a"
[log]
access = false
level = "warn"
TOML
  "$bin" serve --config "$work/$name.toml" > "$work/$name.log" 2>&1 & pids+=($!)
  pidof_[$name]=$!
  port[$name]=$p
  admin[$name]=$a
  wait_port "$p" "$work/$name.log"
  # Wait for the first health check, so that the registry is known to be up.
  for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$a/readyz" 2>/dev/null | grep -q ready && return 0
    sleep 0.05
  done
  die "$name: admin /readyz never answered ready (see $work/$name.log)"
}

# nginx: the registry documentation's "Authenticate proxy with nginx" recipe plus the settings
# large-blob setups use (no request/response buffering, no body size limit, long timeout).
start_nginx() {
  local p
  p=$(free_port)
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<NGINX
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  upstream docker-registry { server 127.0.0.1:$reg_port; keepalive 32; }
  map \$upstream_http_docker_distribution_api_version \$docker_distribution_api_version {
    '' 'registry/2.0';
  }
  server {
    listen 127.0.0.1:$p ssl;
    http2 on;
    ssl_certificate $work/certs/server.crt;
    ssl_certificate_key $work/certs/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    chunked_transfer_encoding on;
    location /v2/ {
      auth_basic "Registry realm";
      auth_basic_user_file $work/htpasswd;
      add_header 'Docker-Distribution-Api-Version' \$docker_distribution_api_version always;
      proxy_pass http://docker-registry;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_read_timeout 900;
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }
}
NGINX
  # nginx 1.22 (Debian 12) has no "http2 on;": use the listen parameter instead.
  if ! nginx -t -p "$work/nginx" -c "$work/nginx/nginx.conf" >/dev/null 2>&1; then
    sed -i -e '/http2 on;/d' -e "s/listen 127.0.0.1:$p ssl;/listen 127.0.0.1:$p ssl http2;/" "$work/nginx/nginx.conf"
  fi
  nginx -t -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx/test.log" 2>&1 \
    || die "nginx config rejected: $(cat "$work/nginx/test.log")"
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
  pidof_[nginx]=$!
  port[nginx]=$p
  wait_port "$p" "$work/nginx/error.log"
  cp "$work/nginx/nginx.conf" "$out/nginx.conf"   # the exact config measured (paths are temporary)
}

# Pushes, straight into the registry, what the GETs and HEADs read back through everyone: the
# random blob (repository bench/blob) and a small OCI manifest (bench/blob:v1).
seed_registry() {
  local path code cfg cfg_digest
  path=$(start_upload registry-direct bench/blob)
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' -H 'Content-Type: application/octet-stream' \
    -T "$work/blob" "${base[registry-direct]}$path$(sep "$path")digest=$digest")
  [ "$code" = 201 ] || die "pushing the blob into the registry answered $code"
  cfg=$work/config.json
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$cfg"
  cfg_digest="sha256:$(sha256sum "$cfg" | cut -d' ' -f1)"
  path=$(start_upload registry-direct bench/blob)
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$cfg" "${base[registry-direct]}$path$(sep "$path")digest=$cfg_digest")
  [ "$code" = 201 ] || die "pushing the config blob answered $code"
  cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"$manifest_type","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$cfg_digest","size":$(stat -c %s "$cfg")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$digest","size":$blob_bytes}]}
JSON
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $manifest_type" \
    --data-binary "@$work/manifest.json" "${base[registry-direct]}/v2/bench/blob/manifests/v1")
  [ "$code" = 201 ] || die "pushing the manifest answered $code"
}

# Caddy (Debian's package): JSON config so that http_basic's hash_cache is on (Caddy keeps
# verified credentials, the fair peer of a gateway with a credential cache); the same
# certificate, the API-version header on every /v2/ answer (401s included), X-Forwarded-*
# as reverse_proxy sets them, Host kept, responses streamed (flush_interval -1). Admin API
# and automatic HTTPS off; its data folders in the temporary folder.
start_caddy() {
  local p hash
  p=$(free_port)
  mkdir -p "$work/caddy"
  hash=$(cut -d: -f2- "$work/htpasswd" | tr -d '\n' | base64 -w0)
  cat > "$work/caddy/caddy.json" <<JSON
{
  "admin": {"disabled": true},
  "logging": {"logs": {"default": {"level": "ERROR"}}},
  "apps": {
    "tls": {"certificates": {"load_files": [{"certificate": "$work/certs/server.crt", "key": "$work/certs/server.key"}]}},
    "http": {"servers": {"bench": {
      "listen": ["127.0.0.1:$p"],
      "protocols": ["h1", "h2"],
      "automatic_https": {"disable": true},
      "tls_connection_policies": [{"default_sni": "localhost"}],
      "routes": [{
        "match": [{"path": ["/v2/*"]}],
        "handle": [
          {"handler": "headers", "response": {"set": {"Docker-Distribution-Api-Version": ["registry/2.0"]}}},
          {"handler": "authentication", "providers": {"http_basic": {
            "hash": {"algorithm": "bcrypt"}, "hash_cache": {}, "realm": "Registry realm",
            "accounts": [{"username": "$user", "password": "$hash"}]}}},
          {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:$reg_port"}], "flush_interval": -1,
           "headers": {"response": {"delete": ["Docker-Distribution-Api-Version"]}}}
        ]
      }]
    }}}
  }
}
JSON
  HOME=$work/caddy XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy \
    caddy run --config "$work/caddy/caddy.json" > "$work/caddy.log" 2>&1 & pids+=($!)
  pidof_[caddy]=$!
  port[caddy]=$p
  wait_port "$p" "$work/caddy.log"
  cp "$work/caddy/caddy.json" "$out/caddy.json"
}

# HAProxy (Debian's package): one process with 2 threads, the same certificate (chain and key
# in one PEM), ALPN h2 and http/1.1, the htpasswd's bcrypt hash in a userlist checked by
# `http-request auth` on /v2/ (bcrypt on every request: HAProxy has no credential cache),
# X-Forwarded-For/-Proto, Host kept, the API-version header on every answer (its own 401s
# included), server-side keep-alive.
start_haproxy() {
  local p
  p=$(free_port)
  mkdir -p "$work/haproxy"
  cat "$work/certs/server.crt" "$work/certs/server.key" > "$work/haproxy/server.pem"
  cat > "$work/haproxy/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 4096
  log stderr format raw local0 err
defaults
  mode http
  log global
  timeout connect 10s
  timeout client 900s
  timeout server 900s
  timeout http-request 30s
  option http-keep-alive
userlist registry
  user $user password $(cut -d: -f2- "$work/htpasswd" | tr -d '\n')
frontend tls
  bind 127.0.0.1:$p ssl crt $work/haproxy/server.pem alpn h2,http/1.1
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  http-request auth realm Registry if { path_beg /v2/ } !{ http_auth(registry) }
  http-after-response set-header Docker-Distribution-Api-Version registry/2.0
  default_backend registry
backend registry
  http-reuse safe
  server registry 127.0.0.1:$reg_port
CFG
  haproxy -c -f "$work/haproxy/haproxy.cfg" > "$work/haproxy/check.log" 2>&1 \
    || die "haproxy config rejected: $(cat "$work/haproxy/check.log")"
  haproxy -db -f "$work/haproxy/haproxy.cfg" > "$work/haproxy.log" 2>&1 & pids+=($!)
  pidof_[haproxy]=$!
  port[haproxy]=$p
  wait_port "$p" "$work/haproxy.log"
  cp "$work/haproxy/haproxy.cfg" "$out/haproxy.cfg"
}

# Pushes FILE straight into the registry as a blob of REPO; prints its digest.
push_blob() { # FILE REPO
  local d path code
  d="sha256:$(sha256sum "$1" | cut -d' ' -f1)"
  path=$(start_upload registry-direct "$2")
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' -H 'Content-Type: application/octet-stream' \
    -T "$1" "${base[registry-direct]}$path$(sep "$path")digest=$d")
  [ "$code" = 201 ] || die "pushing $1 into the registry answered $code"
  echo "$d"
}

# The blobs of the parallel pulls (one of par_mib MiB, bench/par) and of the small-layer pull
# (small_layers blobs of 1 to 64 KiB, sizes spread evenly, bench/small).
seed_parallel_and_small() {
  local i f
  head -c $((par_mib * 1048576)) /dev/urandom > "$work/par_blob"
  par_bytes=$((par_mib * 1048576))
  par_digest=$(push_blob "$work/par_blob" bench/par)
  small_digests=() small_bytes=0
  mkdir -p "$work/small"
  for i in $(seq "$small_layers"); do
    f=$work/small/$i
    head -c $(( ((i * 37) % 64 + 1) * 1024 )) /dev/urandom > "$f"
    small_bytes=$((small_bytes + $(stat -c %s "$f")))
    small_digests+=("$(push_blob "$f" bench/small)")
  done
}
