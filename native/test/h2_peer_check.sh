#!/usr/bin/env bash
# The HTTP/2 codec against a real peer: starts nghttpd (Debian nghttp2-server) with h2c on
# 127.0.0.1, runs h2_peer_check (see h2_peer_check.cc) on one connection, then reads nghttpd's
# verbose frame log - a parser independent of ours - and checks that the preface it received is the
# one configured (SETTINGS order and values, WINDOW_UPDATE, PRIORITY frames, HEADERS priority,
# pseudo-header order), equal to the codec's self-reported fingerprint, and that the cancel and
# GOAWAY arrived.   cmake --build build-native/plain --target h2-peer   (which sets UVF_H2_PEER_BIN;
# needs: apt-get install nghttp2-server libnghttp2-14)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${UVF_H2_PEER_BIN:-$here/../../build-native/plain/h2_peer_check}"
[ -x "$bin" ] || { echo "h2-peer: $bin not built (cmake --build build-native/plain --target h2_peer_check)"; exit 1; }
command -v nghttpd >/dev/null || { echo "h2-peer: nghttpd missing (apt-get install nghttp2-server)"; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/uvf-h2peer.XXXXXX")"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir "$work/root"
echo "hello from nghttpd" > "$work/root/small.txt"
head -c 70000 /dev/urandom > "$work/root/medium.bin"
head -c 8000000 /dev/urandom > "$work/root/big.bin"
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  nghttpd --no-tls -a 127.0.0.1 -v -d "$work/root" "$port" > "$work/nghttpd.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    grep -q "listen 127.0.0.1:$port" "$work/nghttpd.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && break
  pid=""
done
[ -n "$pid" ] || { echo "h2-peer: nghttpd did not start"; cat "$work/nghttpd.log"; exit 1; }
status=0
timeout 60 "$bin" "$port" "$work/root" > "$work/client.log" 2>&1 || status=$?
cat "$work/client.log"
sleep 0.3
python3 - "$work/nghttpd.log" "$work/client.log" <<'PY' || status=1
import re, sys
log = open(sys.argv[1], errors="replace").read().splitlines()
client = open(sys.argv[2]).read()
fp_client = re.search(r"^FINGERPRINT (.*)$", client, re.M)
settings, wu, prio, pseudo = [], None, [], []
i = 0
state = None
first_headers_seen = False
rst_cancel = goaway = False
for line in log:
    m = re.search(r"recv (\w+) frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>", line)
    if m:
        ftype, flags, sid = m.group(1), int(m.group(3), 16), int(m.group(4))
        state = None
        if ftype == "SETTINGS" and not flags & 1 and not settings:
            state = "settings"
        elif ftype == "WINDOW_UPDATE" and sid == 0 and wu is None and not first_headers_seen:
            state = "wu"
        elif ftype == "PRIORITY" and not first_headers_seen:
            state = ("prio", sid)
        elif ftype == "HEADERS" and not first_headers_seen:
            first_headers_seen = True
            state = "headers"
            headers_flags = flags
        elif ftype == "RST_STREAM":
            state = "rst"
        elif ftype == "GOAWAY":
            goaway = True
        continue
    h = re.search(r"recv \(stream_id=\d+\) (:\w+):", line)
    if h and not first_headers_seen:
        pseudo.append(h.group(1)[1])
        continue
    if state == "settings":
        s = re.search(r"\[SETTINGS_\w+\(0x([0-9a-f]+)\):(\d+)\]", line)
        if s: settings.append("%d:%s" % (int(s.group(1), 16), s.group(2)))
    elif state == "wu":
        s = re.search(r"window_size_increment=(\d+)", line)
        if s: wu = s.group(1)
    elif isinstance(state, tuple):
        s = re.search(r"dep_stream_id=(\d+), weight=(\d+), exclusive=(\d)", line)
        if s: prio.append("%d:%s:%s:%s" % (state[1], s.group(3), s.group(1), s.group(2)))
    elif state == "headers":
        s = re.search(r"dep_stream_id=(\d+), weight=(\d+), exclusive=(\d)", line)
        if s: headers_prio = s.groups()
    elif state == "rst":
        if "CANCEL" in line: rst_cancel = True
fp_server = "%s|%s|%s|%s" % (";".join(settings), wu or "0", ",".join(prio) or "0", ",".join(pseudo))
print("nghttpd read: " + fp_server)
print("codec says:   " + (fp_client.group(1) if fp_client else "<none>"))
want = "1:65536;2:0;4:6291456;6:262144|15663105|3:0:0:201,5:0:0:101|m,a,s,p"
ok = fp_server == want and fp_client and fp_client.group(1) == fp_server
ok = ok and headers_flags & 0x20 and headers_prio == ("0", "256", "1")
print("HEADERS priority as nghttpd read it: dep=%s weight=%s exclusive=%s" % headers_prio)
print("RST_STREAM CANCEL received by nghttpd: %s; GOAWAY received: %s" % (rst_cancel, goaway))
ok = ok and rst_cancel and goaway
print("h2-peer: preface check " + ("ok" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
[ "$status" -eq 0 ] && echo "h2-peer: passed" || echo "h2-peer: FAILED"
exit "$status"
