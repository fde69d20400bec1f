#!/usr/bin/env bash
# shellcheck disable=SC2016  # ${KOBO_TOKEN} is literal config text
# t-forms: [kobo] and the forms stage against tests/fakekobo.py, a stand-in
# for a KoboToolbox KPI server (API v2: assets, data paged by limit/start
# following next, query, token).  A first pull of every form in pages of
# 1,000; nothing asked again when nothing changed; an incremental pull
# fetching only the new submissions (counted at the server); a
# submission deleted at the server marked deleted (and -B forms:FORM for
# what a count cannot show); -t forms as JSON Lines and CSV; a wrong
# token is exit 2 at once, with no retry, and so is a 403 for one form's
# data (the token's account may not see it); 429 is waited out, 5xx
# retried up to [kobo] retries; hostile answers (huge, with a length or
# chunked, deep, \u0000, not JSON, a lying count, a next that loops, a
# server too slow) fail the pull and record nothing of it; a submission
# 64 levels deep is kept, one 65 deep fails its pull; over HTTPS the
# server is verified against [kobo] tls_ca; the same in PostgreSQL, as
# jsonb.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

KOBO_TOKEN=tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export KOBO_TOKEN
# kobo_start NAME ARGS... : fakekobo.py ARGS in the background; its port
# in $LOG/NAME.port once it listens, its log and stderr beside.
kobo_start() {
	local name=$1
	shift
	"$PY" "$TESTS/fakekobo.py" --token "$KOBO_TOKEN" --ready "$LOG/$name.port" \
		--log "$LOG/$name.log" "$@" 2>"$LOG/$name.err" &
	BGPIDS="$BGPIDS $!"
	for _ in $(seq 1 100); do [ -s "$LOG/$name.port" ] && break; sleep 0.05; done
	[ -s "$LOG/$name.port" ] || { say "FAIL: fakekobo.py $* did not start"; cat "$LOG/$name.err"; exit 1; }
}
cat >"$LOG/forms.json" <<'EOF'
{"aBaseline0001": {"name": "Baseline visit", "submissions": 2500},
 "aFollowup0002": {"name": "Follow-up – café ✓", "submissions": 3}}
EOF
kobo_start kobo --forms "$LOG/forms.json"
KOBO=http://127.0.0.1:$(cat "$LOG/kobo.port")
ctl() { curl -sf -X POST "$KOBO/_test/$1" >/dev/null || { say "FAIL: POST /_test/$1"; exit 1; }; }
# stat EXPR : a number from the server's /_test/stats, e.g. stat 'served["aBaseline0001"]'
stat() {
	curl -sf "$KOBO/_test/stats" | "$PY" -c 'import json, sys
s = json.load(sys.stdin)
print(eval(sys.argv[1], {}, {k: __import__("collections").defaultdict(int, v) if isinstance(v, dict) else v for k, v in s.items()}))' "$1"
}
lines() { wc -l <"$OUT" | tr -d ' '; }
# What the state holds of every form: rows and bytes.
stored() { sqlite3 .thlhp/state.db "SELECT count(*), sum(length(body)) FROM form_sub"; }

gen --patient TH-01-AA --studies 1 --series 1 --instances 2 --seed a
write_config kobo.url="$KOBO" kobo.token='${KOBO_TOKEN}' kobo.timeout=5 kobo.retries=2

section "a first pull"
run -n forms
exit_is "-n forms" 0
has_line "-n: the first form, never pulled, with its count" "$OUT" \
	'^forms +aBaseline0001 \(Baseline visit\)  never pulled \(2500 submissions at the server\)$'
has_line "-n: the second, its title as it is" "$OUT" '^forms +aFollowup0002 \(Follow-up – café ✓\)  never pulled'
check "-n pulled nothing" "$(stat 'data_requests["aBaseline0001"]')" 0
run forms
exit_is "forms" 0
no_line "the PACS is not asked for forms alone" "$OUT" '^\[[0-9/]+\] query'
has_line "each form's job says what it pulled" "$OUT" 'forms +aBaseline0001 .*2500 submissions \(a full pull\)'
check "three pages of 1,000 for 2,500 submissions" "$(stat 'data_requests["aBaseline0001"]')" 3
check "each submission sent once" "$(stat 'served["aBaseline0001"]')" 2500
run -t forms
exit_is "-t forms lists the forms" 0
has_line "with their counts" "$OUT" '^aBaseline0001 +2500 submissions +0 deleted  Baseline visit$'
run -t status
exit_is "-t status" 0
has_line "ends with what the state holds of the forms" "$OUT" \
	'^forms: 2 pulled, 2503 submissions \(-t forms lists them\)$'
run -t forms aBaseline0001
exit_is "-t forms FORM" 0
check "2,500 lines of JSON" "$(lines)" 2500
ok "each the server's submission, in _id order, all there" "$PY" -c 'import json, sys, urllib.request
rows = [json.loads(l) for l in open(sys.argv[1])]
req = urllib.request.Request(sys.argv[2] + "/api/v2/assets/aBaseline0001/data/?format=json&limit=1000&start=0",
                             headers={"Authorization": "Token " + sys.argv[3]})
first = json.load(urllib.request.urlopen(req))["results"]
ids = [r["_id"] for r in rows]
assert ids == sorted(ids) and len(set(ids)) == 2500, "ids"
assert rows[:1000] == first, "the first page differs"' "$OUT" "$KOBO" "$KOBO_TOKEN"
run -t forms aFollowup0002
has_line "non-ASCII text arrives intact" "$OUT" 'Müller – café ✓'
run -t targets
has_line "-t targets names each form's target" "$OUT" '^forms:aBaseline0001$'
no_line "and no forms:PATIENT" "$OUT" '^forms:TH-'

section "nothing changed: nothing pulled"
ctl reset_stats
run forms
exit_is "forms again" 0
has_line "nothing to do" "$OUT" 'nothing to do'
check "no data asked for" "$(stat 'sum(data_requests.values())')" 0

section "new submissions: only those fetched"
ctl 'forms/aBaseline0001/add?n=5'
ctl reset_stats
run -n forms
has_line "-n: 5 new" "$OUT" '^forms +aBaseline0001 .*  5 new submissions at the server$'
no_line "-n: the other form is up to date" "$OUT" 'aFollowup0002'
run forms
exit_is "forms" 0
check "5 submissions sent, no more" "$(stat 'served["aBaseline0001"]')" 5
has_line "asked only for those after the latest stored" <(stat 'last_query["aBaseline0001"]') \
	'_submission_time.*\$gt.*2024-05-01T00:41:40'
run -t forms aBaseline0001
check "2,505 stored" "$(lines)" 2505

section "a submission deleted at the server"
ctl 'forms/aBaseline0001/delete?id=17'
run -n forms
has_line "-n: fewer at the server than stored" "$OUT" '1 submission fewer at the server than stored'
run forms
exit_is "forms" 0
has_line "the job says one was marked deleted" "$OUT" '2504 submissions \(a full pull\), 1 marked deleted'
run -t forms aBaseline0001
check "2,504 listed" "$(lines)" 2504
no_line "not the deleted one" "$OUT" '"_id": ?17,'
check "kept in the state, marked deleted" \
	"$(sqlite3 .thlhp/state.db "SELECT count(*) FROM form_sub WHERE form = 'aBaseline0001' AND id = 17 AND deleted IS NOT NULL")" 1
# One deleted and one added: the count stays; -B pulls everything.
first2=$(curl -sf -H "Authorization: Token $KOBO_TOKEN" "$KOBO/api/v2/assets/aFollowup0002/data/?format=json" |
	"$PY" -c 'import json, sys; print(json.load(sys.stdin)["results"][0]["_id"])')
ctl "forms/aFollowup0002/delete?id=$first2"
ctl 'forms/aFollowup0002/add?n=1'
run forms
has_line "the same count looks unchanged" "$OUT" 'nothing to do'
run -B forms:aFollowup0002
exit_is "-B forms:aFollowup0002" 0
has_line "a full pull, one marked deleted" "$OUT" '3 submissions \(a full pull\), 1 marked deleted'
run -t forms --format csv aFollowup0002
exit_is "-t forms --format csv" 0
has_line "a header of the fields, _id first" "$OUT" '^_id,'
has_line "participant_id and comment are columns" <(head -n 1 "$OUT") 'participant_id.*comment|comment.*participant_id'
check "three rows" "$(($(lines) - 1))" 3
no_line "not the deleted one" "$OUT" "^$first2,"

section "the token refused"
ctl reset_stats
t0=$(date +%s)
KOBO_TOKEN=wrong run forms
t1=$(date +%s)
exit_is "a wrong token: exit 2" 2
has_line "says the server refused the token" "$ERR" 'refused the token.*\[kobo\] token'
no_line "never prints the token" "$ERR" 'wrong'
check "asked once, not retried" "$(stat unauthorized)" 1
ok "at once ($((t1 - t0)) s)" test $((t1 - t0)) -le 3
write_config kobo.url="$KOBO" kobo.token= kobo.timeout=5
run forms
exit_is "no token" 2
has_line "says where it goes" "$ERR" 'token: required.*KOBO_TOKEN'
write_config kobo.url="$KOBO" kobo.token='${KOBO_TOKEN}' kobo.timeout=2 kobo.retries=2

section "403: the token's account may not see a form"
# KPI's answer to a good token whose account the form is not shared with.
ctl 'hostile?mode=forbidden&uid=aFollowup0002'
ctl reset_stats
before=$(stored)
t0=$(date +%s)
run -B forms:aFollowup0002
t1=$(date +%s)
exit_is "a 403 for a form's data: exit 2" 2
has_line "says HTTP 403, naming the server and the form" "$ERR" \
	"GET $KOBO/api/v2/assets/aFollowup0002/data/.*HTTP 403"
has_line "and that the form must be shared, not the token checked" "$ERR" \
	'account of \[kobo\] token may not see this.*share the form with it'
check "one request for its data, not retried" "$(stat 'data_requests["aFollowup0002"]')" 1
ok "at once ($((t1 - t0)) s)" test $((t1 - t0)) -le 3
no_line "never prints the token" <(cat "$OUT" "$ERR") "$KOBO_TOKEN"
check "the state unchanged" "$(stored)" "$before"
ctl 'hostile?mode=off&uid=aFollowup0002'

section "429: waited out"
ctl 'forms/aFollowup0002/add?n=2'
ctl reset_stats
ctl 'ratelimit?n=2'
run forms
exit_is "forms through two 429s" 0
check "both 429s were answered" "$(stat throttled)" 2
has_line "and the pull went on" "$OUT" 'aFollowup0002 .*2 new submissions'

section "5xx: retried"
ctl 'forms/aFollowup0002/add?n=1'
ctl reset_stats
ctl 'fail?n=2&status=503'
run forms
exit_is "forms through two 503s" 0
check "both were answered" "$(stat failed)" 2
has_line "and the pull went on" "$OUT" 'aFollowup0002 .*1 new submission'
ctl 'fail?n=5&status=502'
run forms:aFollowup0002
exit_is "more 502s than [kobo] retries (2): the run fails" 2
has_line "saying how many attempts" "$ERR" 'HTTP 502.*given up after 3 attempts'
ctl 'fail?n=0'

section "hostile answers: refused, nothing recorded"
before=$(stored)
for mode in huge hugechunked deep nul notjson countlie loop slow; do
	ctl "hostile?mode=$mode&uid=aFollowup0002"
	ctl reset_stats
	t0=$(date +%s)
	run -B forms:aFollowup0002
	t1=$(date +%s)
	exit_is "$mode: the pull fails" 2
	case $mode in
	huge | hugechunked)
		has_line "$mode: refused by its size" "$ERR" 'larger than 64 MiB'
		# 300 MiB sent; what a client leaves unread fills socket buffers (MBs).
		ok "$mode: not read whole ($(stat streamed) bytes sent)" test "$(stat streamed)" -lt $((100 << 20)) ;;
	deep) has_line "deep: refused for its depth" "$ERR" '(deep|depth)' ;;
	nul) has_line "nul: names the \\u0000" "$ERR" 'u0000' ;;
	notjson) has_line "notjson: says it is not JSON" "$ERR" '(JSON|json)' ;;
	countlie) has_line "countlie: says the counts differ" "$ERR" 'count' ;;
	loop) has_line "loop: says next repeats" "$ERR" 'next' ;;
	slow) has_line "slow: gives up" "$ERR" '(slow|timed out|Timeout|within)' ;;
	esac
	ok "$mode: within bounds ($((t1 - t0)) s)" test $((t1 - t0)) -le 30
	check "$mode: the state unchanged" "$(stored)" "$before"
	ctl "hostile?mode=off&uid=aFollowup0002"
done
run forms
exit_is "then a good pull" 0

section "nesting: 64 levels kept, 65 refused"
# [kobo]'s bound (KOBO_DEPTH_MAX, 64) counts the submission itself as the
# first level; "deep" above is far past it, here are both sides of it.
ctl 'forms/aFollowup0002/add?n=1&depth=64'
run forms
exit_is "a submission 64 levels deep" 0
has_line "is pulled" "$OUT" 'aFollowup0002 .*1 new submission'
run -t forms aFollowup0002
has_line "and stored whole, down to its innermost value" "$OUT" '"nested":\[{63}0\]{63}[,}]'
before=$(stored)
ctl 'forms/aFollowup0002/add?n=1'
deep=$(curl -sf -X POST "$KOBO/_test/forms/aFollowup0002/add?n=1&depth=65" |
	"$PY" -c 'import json, sys; print(json.load(sys.stdin)["ids"][0])')
run forms
exit_is "a page with a submission 65 levels deep: the pull fails" 2
has_line "saying which is nested deeper than 64" "$ERR" 'submission 2 is nested deeper than 64; refused'
check "nothing of that page recorded" "$(stored)" "$before"
ctl "forms/aFollowup0002/delete?id=$deep"
run forms
exit_is "without it, the pull goes on" 0
has_line "and takes the other one" "$OUT" 'aFollowup0002 .*1 new submission'

section "all: the archives and the forms"
ctl 'forms/aBaseline0001/add?n=1'
run all
exit_is "all" 0
has_line "builds the archive" "$OUT" 'zip +data/zip/TH-01-AA__seriesCount1\.zip'
has_line "and pulls the new submission" "$OUT" 'aBaseline0001 .*1 new submission'
run forms:nosuch
exit_is "forms:nosuch" 2
has_line "says there is no such form" "$ERR" 'forms:nosuch: no such forms target'

section "the digest: the forms pulled"
"$PY" "$TESTS/pingserver.py" --log "$LOG/hook" --ready "$LOG/hook.port" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 50); do [ -s "$LOG/hook.port" ] && break; sleep 0.1; done
write_config kobo.url="$KOBO" kobo.token='${KOBO_TOKEN}' kobo.timeout=2 kobo.retries=2 \
	notify.webhook_url="http://127.0.0.1:$(cat "$LOG/hook.port")/hook" notify.timeout=5
ctl 'forms/aBaseline0001/add?n=5'
run forms
exit_is "forms, with a webhook" 0
ok "the webhook got the digest" test -s "$LOG/hook.body.1"
"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["text"])' "$LOG/hook.body.1" >"$LOG/digest.txt"
has_line "it says what was pulled" "$LOG/digest.txt" '^Pulled: 1$'
has_line "which form, and how many submissions" "$LOG/digest.txt" \
	'^  forms aBaseline0001 \(Baseline visit\): 5 new submissions$'
run forms
exit_is "nothing new" 0
ok "no digest for a run that pulled nothing" test ! -e "$LOG/hook.body.2"
write_config kobo.url="$KOBO" kobo.token='${KOBO_TOKEN}' kobo.timeout=2 kobo.retries=2

section "HTTPS: the server verified against [kobo] tls_ca"
pki=$T/pki
mkdir -p "$pki"
# cert NAME CN [CA] : $pki/NAME.pem and .key, signed by $pki/CA (for IP
# 127.0.0.1), or without CA a self-signed CA.
cert() {
	if [ $# -lt 3 ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
			-keyout "$pki/$1.key" -out "$pki/$1.pem" >>"$LOG/openssl.log" 2>&1
	else
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" \
			-keyout "$pki/$1.key" -out "$pki/$1.csr" >>"$LOG/openssl.log" 2>&1 &&
			printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/$1.ext" &&
			openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$3.pem" -CAkey "$pki/$3.key" \
				-CAcreateserial -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" >>"$LOG/openssl.log" 2>&1
	fi || { say "FAIL: openssl could not make $1"; cat "$LOG/openssl.log"; exit 1; }
}
cert ca "thlhp test CA"
cert server 127.0.0.1 ca
cert other "another CA"
cat >"$LOG/tls.json" <<'EOF'
{"aSecure0003": {"name": "Consent", "submissions": 7}}
EOF
kobo_start tls --forms "$LOG/tls.json" --tls-cert "$pki/server.pem" --tls-key "$pki/server.key"
KOBOS=https://127.0.0.1:$(cat "$LOG/tls.port")
# A project of its own: the forms of another server.
mkdir -p "$T/tls"
cd "$T/tls" || exit 1
# [kobo] retries (5) left as it is: the same certificate fails the same
# way each time, and is not tried again.
write_config kobo.url="$KOBOS" kobo.token='${KOBO_TOKEN}' kobo.timeout=5
t0=$(date +%s)
run forms
t1=$(date +%s)
exit_is "without tls_ca: a certificate no system CA signed, refused" 2
has_line "saying it could not be verified" "$ERR" "GET $KOBOS/.*certificate"
no_line "not retried" "$ERR" 'given up after'
ok "at once ($((t1 - t0)) s; a retry waits 1 s and more)" test $((t1 - t0)) -le 3
cat "$OUT" "$ERR" >"$LOG/tls-refused.out"
write_config kobo.url="$KOBOS" kobo.token='${KOBO_TOKEN}' kobo.timeout=5 \
	kobo.tls_ca="$pki/other.pem"
run forms
exit_is "tls_ca of another CA: refused too" 2
has_line "saying it could not be verified" "$ERR" "GET $KOBOS/.*certificate"
cat "$OUT" "$ERR" >>"$LOG/tls-refused.out"
run -t forms
is_empty "nothing recorded" "$OUT"
# tls_stat EXPR : like stat, of the HTTPS server.
tls_stat() {
	curl -sf --cacert "$pki/ca.pem" "$KOBOS/_test/stats" | "$PY" -c 'import json, sys
print(eval(sys.argv[1], {}, json.load(sys.stdin)))' "$1"
}
check "no request reached the server: the token never went out" "$(tls_stat requests)" 0
write_config kobo.url="$KOBOS" kobo.token='${KOBO_TOKEN}' kobo.timeout=5 kobo.tls_ca="$pki/ca.pem"
run forms
exit_is "tls_ca of the CA that signed it: forms" 0
has_line "pulls the form" "$OUT" 'aSecure0003 .*7 submissions \(a full pull\)'
check "every submission sent once" "$(tls_stat 'served["aSecure0003"]')" 7
no_line "the token never printed" <(cat "$LOG/tls-refused.out" "$OUT" "$ERR") "$KOBO_TOKEN"
run -t forms aSecure0003
check "7 stored" "$(lines)" 7
cd "$PROJ" || exit 1

section "PostgreSQL: submissions as jsonb"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"
pg_start
write_config kobo.url="$KOBO" kobo.token='${KOBO_TOKEN}' kobo.timeout=5 state.url="$PG_URL"
run forms
exit_is "forms into PostgreSQL" 0
check "every submission not deleted, as jsonb" \
	"$(pg_sql "SELECT count(*) FROM form_sub WHERE form = 'aBaseline0001' AND deleted IS NULL AND jsonb_typeof(body) = 'object'" thlhp)" 2510
check "queryable with ->>" \
	"$(pg_sql "SELECT body->>'comment' FROM form_sub WHERE form = 'aFollowup0002' ORDER BY id LIMIT 1" thlhp | grep -c 'café ✓')" 1
run -t forms aBaseline0001
check "-t forms from PostgreSQL: 2,510 lines" "$(lines)" 2510

finish
