# Config generators for bench/dataplane (sourced, not run). Each proxy gets the same routes:
# `bench.example.com` to the bench backend, and N extra hostnames `r<i>.example.net` to the
# other backend, so a request pays for a lookup in a table of N+1 hostnames. Both backends are
# one nginx on the load-generator core, answering a fixed body that names the backend (the
# routing check reads it).
#
# Reads: $work (output dir), $routes (N), $pki (cert.pem, key.pem, bundle.pem) and the ports
# $port_bench_backend $port_other_backend $port_{gatehouse,nginx,haproxy}_{http,https}.

readonly BENCH_HOST=bench.example.com

extra_hosts() {
  seq 1 "$routes" | awk '{ print "r" $1 ".example.net" }'
}

# The backend: static answers, no logs, connections kept open indefinitely so that no proxy
# pays for reconnecting to it mid-run.
gen_backend_nginx() {
  local dir="$work/backend"
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $dir/tmp;
  default_type text/plain;
  server { listen 127.0.0.1:$port_bench_backend backlog=4096; location / { return 200 "bench-backend\n"; } }
  server { listen 127.0.0.1:$port_other_backend backlog=4096; location / { return 200 "other-backend\n"; } }
}
EOF
}

# Gatehouse: Kubernetes YAML for standalone mode. The HTTPS listener is a Gateway of its own
# and the Secret a file of its own, so that a build without TLS termination (or one that
# rejects them) still serves the HTTP Gateway and the routes.
gen_gatehouse() {
  local dir="$work/gatehouse/config"
  mkdir -p "$dir"
  cat >"$dir/gateways.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bench-http, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners:
    - {name: http, protocol: HTTP, port: $port_gatehouse_http, allowedRoutes: {namespaces: {from: Same}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bench-https, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners:
    - name: https
      protocol: HTTPS
      port: $port_gatehouse_https
      tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: bench-tls}]}
      allowedRoutes: {namespaces: {from: Same}}
EOF
  cat >"$dir/secret.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata: {name: bench-tls, namespace: default}
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 "$pki/cert.pem")
  tls.key: $(base64 -w0 "$pki/key.pem")
EOF
  local name port
  : >"$dir/backends.yaml"
  for name in bench other; do
    [ "$name" = bench ] && port=$port_bench_backend || port=$port_other_backend
    cat >>"$dir/backends.yaml" <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: default, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: $port}]
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
EOF
  done
  local parents='[{name: bench-http}, {name: bench-https}]'
  cat >"$dir/route-bench.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bench, namespace: default}
spec:
  parentRefs: $parents
  hostnames: ["$BENCH_HOST"]
  rules: [{backendRefs: [{name: bench, port: 80}]}]
EOF
  extra_hosts | awk -v parents="$parents" '{
    printf "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    printf "metadata: {name: extra-%d, namespace: default}\n", NR
    printf "spec:\n  parentRefs: %s\n  hostnames: [\"%s\"]\n", parents, $1
    printf "  rules: [{backendRefs: [{name: other, port: 80}]}]\n"
  }' >"$dir/routes-extra.yaml"
}

# nginx: one worker, no access log, keep-alive to the backend; one server block per hostname
# (nginx looks server names up in a hash, sized here to hold them all).
gen_nginx() {
  local dir="$work/nginx"
  mkdir -p "$dir/logs"
  extra_hosts | awk '{
    printf "server { listen 127.0.0.1:%s; listen 127.0.0.1:%s ssl; server_name %s; location / { proxy_pass http://other_backend; } }\n", http, https, $1
  }' http="$port_nginx_http" https="$port_nginx_https" >"$dir/routes-extra.conf"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  server_names_hash_max_size 65536;
  server_names_hash_bucket_size 128;
  ssl_certificate $pki/cert.pem;
  ssl_certificate_key $pki/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$host;
  upstream bench_backend { server 127.0.0.1:$port_bench_backend; keepalive 512; keepalive_requests 100000000; }
  upstream other_backend { server 127.0.0.1:$port_other_backend; keepalive 32; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:$port_nginx_http default_server backlog=4096;
    listen 127.0.0.1:$port_nginx_https ssl default_server backlog=4096;
    return 404;
  }
  server {
    listen 127.0.0.1:$port_nginx_http;
    listen 127.0.0.1:$port_nginx_https ssl;
    server_name $BENCH_HOST;
    location / { proxy_pass http://bench_backend; }
  }
  include $dir/routes-extra.conf;
}
EOF
}

# HAProxy: one thread, no logging; the Host header (port stripped) is looked up in a map of
# every hostname, HAProxy's usual way to route many hosts (a tree lookup, not N ACLs in a row).
gen_haproxy() {
  local dir="$work/haproxy"
  mkdir -p "$dir"
  {
    echo "$BENCH_HOST be_bench"
    extra_hosts | awk '{ print $1 " be_other" }'
  } >"$dir/hosts.map"
  cat >"$dir/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
  pidfile $dir/haproxy.pid
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend bench
  bind 127.0.0.1:$port_haproxy_http backlog 4096
  bind 127.0.0.1:$port_haproxy_https ssl crt $pki/bundle.pem backlog 4096
  use_backend %[req.hdr(host),field(1,:),lower,map($dir/hosts.map)]
  default_backend be_404
backend be_bench
  server bench 127.0.0.1:$port_bench_backend
backend be_other
  server other 127.0.0.1:$port_other_backend
backend be_404
  http-request return status 404
EOF
}
