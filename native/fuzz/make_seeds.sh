#!/usr/bin/env bash
# Regenerates the hand-written seed corpora under corpus/ (the ClientHellos in
# corpus/client_hello/ were recorded from openssl s_client and are kept as they are). Idempotent.
#
# response_parser / chunked_decoder seeds start with the targets' 4 control bytes
# (see the header comment of each fuzz_*.cc): "\x00\x00\x00\x00" = default limits, split seed 0.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus && cd corpus

# seed <dir> <name> <control bytes> <payload>   (both with printf %b escapes)
seed() { mkdir -p "$1"; printf '%b%b' "$3" "$4" > "$1/$2"; }

D='\x00\x00\x00\x00'      # defaults, split seed 0
S='\x00\x00\x2a\x17'      # defaults, another split plan
r=response_parser
seed $r ok_content_length  $D 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello'
seed $r ok_chunked         $S 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
seed $r ok_until_close     $D 'HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close'
seed $r ok_http10_keepalive $D 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n'
seed $r ok_no_reason       $D 'HTTP/1.1 204\r\n\r\n'
seed $r ok_empty_reason    $D 'HTTP/1.1 304 \r\nETag: "x"\r\n\r\n'
seed $r ok_100_continue    $S 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
seed $r ok_103_early_hints $D 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n'
seed $r ok_101_switching   $D 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
seed $r ok_connection_close $D 'HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx'
seed $r ok_cl_list_same    $D 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc'
seed $r ok_obs_text_reason $D 'HTTP/1.1 404 Nicht gefunden \xc3\xa4\xff\r\nX-Obs: \x80\x81\tend\r\n\r\n'
seed $r ok_many_headers    $D 'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\nK: 11\r\nL: 12\r\nM: 13\r\nN: 14\r\nO: 15\r\nP: 16\r\nQ: 17\r\n\r\n'
seed $r ok_trimmed_values  $D 'HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:   v  \t\r\nset-cookie: a=b; Path=/\r\n\r\n'
seed $r ok_head_response   '\x08\x00\x00\x00' 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'
seed $r limit_small_size   '\x01\x20\x00\x00' 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n'
seed $r limit_few_headers  '\x24\x10\x00\x00' 'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n'
seed $r bad_cl_conflict    $D 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'
seed $r bad_cl_list        $D 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n'
seed $r bad_cl_sign        $D 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n'
seed $r bad_cl_overflow    $D 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n'
seed $r bad_cl_and_te      $D 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
seed $r bad_te_and_cl      $D 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n'
seed $r bad_te_gzip        $D 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
seed $r bad_te_twice       $D 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n'
seed $r bad_te_http10      $D 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
seed $r bad_obs_fold       $D 'HTTP/1.1 200 OK\r\nX-Folded: a\r\n  continued\r\n\r\n'
seed $r bad_bare_cr_value  $D 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n'
seed $r bad_bare_cr_reason $D 'HTTP/1.1 200 O\rK\r\n\r\n'
seed $r bad_bare_lf        $D 'HTTP/1.1 200 OK\nContent-Length: 0\n\n'
seed $r bad_bare_lf_header $D 'HTTP/1.1 200 OK\r\nA: 1\n\r\n'
seed $r bad_space_colon    $D 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n'
seed $r bad_no_colon       $D 'HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n'
seed $r bad_empty_name     $D 'HTTP/1.1 200 OK\r\n: v\r\n\r\n'
seed $r bad_nul_value      $D 'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n'
seed $r bad_status_2digit  $D 'HTTP/1.1 20 OK\r\n\r\n'
seed $r bad_status_600     $D 'HTTP/1.1 600 Nope\r\n\r\n'
seed $r bad_version_2      $D 'HTTP/2 200 OK\r\n\r\n'
seed $r bad_version_1_2    $D 'HTTP/1.2 200 OK\r\n\r\n'
seed $r bad_not_http       $D 'SSH-2.0-OpenSSH_9.2\r\n'
seed $r bad_lowercase      $D 'http/1.1 200 OK\r\n\r\n'
seed $r ok_content_encoding $D 'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\ncontent-encoding: br\r\nContent-Length: 3\r\n\r\n'
seed $r partial_head       $S 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'

c=chunked_decoder
seed $c simple            $D '5\r\nhello\r\n0\r\n\r\n'
seed $c two_chunks        $S '3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\nNEXT'
seed $c upper_hex_ext     $D 'A;name=value;q="x y"\r\n0123456789\r\n0;last\r\n\r\n'
seed $c bws_ext           $D '4 \t;ext\r\nwxyz\r\n0\r\n\r\n'
seed $c trailers          $D '1\r\nx\r\n0\r\nExpires: never\r\nX-Trailer: \x80v\r\n\r\n'
seed $c leading_zeros     $D '0005\r\nhello\r\n000\r\n\r\n'
seed $c bad_size_empty    $D '\r\nhello\r\n'
seed $c bad_size_0x       $D '0x5\r\nhello\r\n0\r\n\r\n'
seed $c bad_size_overflow $D 'fffffffffffffffff\r\n'
seed $c bad_size_space    $D '5 \r\nhello\r\n0\r\n\r\n'
seed $c bad_bare_lf       $D '5\nhello\n0\n\n'
seed $c bad_bare_cr       $D '5\rhello\r\n0\r\n\r\n'
seed $c bad_missing_crlf  $D '5\r\nhelloX0\r\n\r\n'
seed $c bad_obs_fold      $D '0\r\nA: b\r\n c\r\n\r\n'
seed $c bad_trailer_name  $D '0\r\nBad Name: v\r\n\r\n'
seed $c bad_trailer_nocolon $D '0\r\nNoColon\r\n\r\n'
seed $c bad_ext_ctl       $D '5;a=\x01\r\nhello\r\n0\r\n\r\n'
seed $c limit_line        '\x01\x04\x00\x00' '5;longextension\r\nhello\r\n0\r\n\r\n'
seed $c limit_trailers    '\x1c\x08\x00\x00' '0\r\nA: 1\r\nB: 2\r\n\r\n'
seed $c partial           $S '1a\r\nabcdefghij'

# request_encoder: FuzzedDataProvider strings end with "\" + another byte; the last bytes are
# header count, content length, mode (read from the end: mode is the last byte).
q=request_encoder
seed $q get          '' 'GET\\x/index.html?q=1\\xexample.com\\xuvfetch/0.1\\xAccept\\x*/*\\x\x01\x00\x00'
seed $q post_headers '' 'POST\\x/api\\xapi.test:8443\\x\\xcontent-type\\xapplication/json\\xx-a\\x  spaced\t\\x\x02\x05\x01'
seed $q user_host    '' 'PUT\\x/\\xh\\xua\\xHOST\\xother.test\\xConnection\\xkeep-alive, close\\x\x02\x00\x00'
seed $q chunked      '' 'PATCH\\x*\\xh\\x\\xUser-Agent\\xmine\\x\x01\x00\x02'
seed $q bad_crlf     '' 'GET\\x/\\xh\\x\\xX-Inject\\xa\r\nEvil: 1\\x\x01\x00\x00'
seed $q bad_managed  '' 'GET\\x/\\xh\\x\\xTransfer-Encoding\\xchunked\\xUpgrade\\xh2c\\x\x02\x00\x00'
seed $q accept_encoding '' 'GET\\x/\\xh\\xua\\xgzip, br\\x\x00\x00\x40'
seed $q user_accept_enc '' 'GET\\x/\\xh\\x\\xbad\x01\\xAccept-Encoding\\xidentity\\x\x01\x00\x40'
seed $q bad_method   '' 'GE T\\x/\\xh\\x\\x\x00\x00\x00'
seed $q bad_target   '' 'GET\\x/a b\\xh\\x\\x\x00\x00\x00'

# h2_session: 4 control bytes (see fuzz_h2_session.cc), then server frames.
# h2f <type> <flags> <stream> <payload %b>: one frame, as %b escapes; lit <name> <value>: an HPACK
# literal without indexing (new name); st200 = indexed :status 200.
h2f() {
  local len; len=$(printf '%b' "$4" | wc -c)
  printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x' $((len >> 16 & 255)) $((len >> 8 & 255)) \
    $((len & 255)) "$1" "$2" $(($3 >> 24 & 127)) $(($3 >> 16 & 255)) $(($3 >> 8 & 255)) $(($3 & 255))
  printf '%s' "$4"
}
lit() { printf '\\x00\\x%02x%s\\x%02x%s' ${#1} "$1" ${#2} "$2"; }
st200='\x88'
pre="$(h2f 4 0 0 '\x00\x03\x00\x00\x00\x64\x00\x04\x00\x01\x00\x00')$(h2f 4 1 0 '')"
z=h2_session
seed $z ok_three      '\x00\x10\x00\x00' "$pre$(h2f 1 4 1 "$st200$(lit content-type text/plain)")$(h2f 0 1 1 hello)$(h2f 1 5 3 "$st200")$(h2f 1 4 5 "$st200")$(h2f 0 0 5 abc)$(h2f 1 5 5 "$(lit grpc-status 0)")"
seed $z ok_chrome     '\x01\x20\x13\x37' "$pre$(h2f 1 4 1 "$st200$(lit content-length 3)")$(h2f 0 1 1 abc)$(h2f 8 0 0 '\x00\x01\x00\x00')$(h2f 8 0 5 '\x00\x01\x00\x00')"
seed $z continuation  '\x02\x00\x00\x01' "$pre$(h2f 1 0 1 "$st200")$(h2f 9 0 1 "$(lit a b)")$(h2f 9 4 1 "$(lit c d)")$(h2f 0 1 1 x)"
seed $z dyn_table     '\x02\x00\x00\x02' "$pre$(h2f 1 4 1 "$st200\\x40\\x01x\\x05hello\\xbe\\xbe\\xbe")$(h2f 0 1 1 '')"
seed $z informational '\x00\x00\x00\x03' "$pre$(h2f 1 4 1 "$(lit :status 103)$(lit link '</a>')")$(h2f 1 5 1 "$st200")"
seed $z rst_goaway    '\x10\x00\x00\x04' "$pre$(h2f 3 0 3 '\x00\x00\x00\x07')$(h2f 7 0 0 '\x00\x00\x00\x01\x00\x00\x00\x00bye')$(h2f 1 5 1 "$st200")"
seed $z ping_settings '\x22\x00\x00\x05' "$pre$(h2f 6 0 0 12345678)$(h2f 4 0 0 '\x00\x01\x00\x00\x10\x00')$(h2f 6 1 0 '\x00\x00\x00\x00\x00\x00\x00\x2a')"
seed $z push_promise  '\x08\x00\x00\x06' "$pre$(h2f 5 4 1 "\\x00\\x00\\x00\\x02$(lit :method GET)$(lit :scheme https)$(lit :authority fuzz.test)$(lit :path /p)")$(h2f 1 5 1 "$st200")"
seed $z paused_window '\x44\x40\x00\x07' "$pre$(h2f 1 4 3 "$st200")$(h2f 0 0 3 "$(printf '%0200d' 0)")$(h2f 0 1 3 end)$(h2f 1 5 1 "$st200")"
seed $z padded_prio   '\x00\x00\x00\x08' "$pre$(h2f 1 44 1 '\x02\x00\x00\x00\x00\x0f\x88\x00\x00')$(h2f 0 9 1 '\x01x\x00')$(h2f 2 0 7 '\x00\x00\x00\x01\x10')"
seed $z unknown_frame '\x00\x00\x00\x09' "$pre$(h2f 250 0 0 abc)$(h2f 16 0 1 '\x00\x00x')$(h2f 1 5 1 "$st200")"

# dns_cache: op bytes are read from the end; any bytes are a valid program.
d=dns_cache
seed $d lookups_complete '' '\x00\x10\x01\x03\x00\x21\x01\x03\x02\x00\x11\x06\x05\x00\x01\x30\x00\x00\x03\x02\x01\x00\x00\x10'
seed $d reentrant_sync   '' '\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x87\x10\x20\x30\x40\x21\x41\x02\x05\x04\x03\x12\x05'
seed $d stale_refresh    '' '\xff\x00\x07\x03\x00\x06\x06\x06\x06\x01\x00\x03\x00\x10\x02\x04\x00\x07\x47\x00\x01\x02\x01\x05\x04\x03\x02\x01'

# client_hello: recorded records (openssl s_client -> local openssl s_server, 127.0.0.1), plus
# derived forms: the bare handshake message, and the same hello split over two records.
h=client_hello
for f in "$h"/tls13_sni_alpn.bin "$h"/tls12_only.bin "$h"/default_nosni.bin "$h"/tls13_groups.bin; do
  base="${f%.bin}"
  tail -c +6 "$f" > "$base.msg"
  total=$(($(stat -c %s "$f") - 5))
  rest=$((total - 64))
  { printf '\x16\x03\x01\x00\x40'; tail -c +6 "$f" | head -c 64
    printf "\\x16\\x03\\x01\\x$(printf %02x $((rest >> 8)))\\x$(printf %02x $((rest & 255)))"
    tail -c +70 "$f"; } > "$base.split"
done

echo "seeds written under $(pwd)"
