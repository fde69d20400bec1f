#!/usr/bin/env bash
# t-interrupt: SIGINT or SIGTERM in the middle of a run stops it cleanly -
# exit 2 with a message, no temp file and no partial archive left - and the
# next run completes with every archive intact.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

for i in 1 2 3 4 5 6; do
	gen --patient "TH-I$i" --studies 1 --series 3 --instances 25 --seed "$((40 + i))"
done
write_config

for sig in INT TERM; do
	section "SIG$sig during all -j2"
	rm -rf data .thlhp
	run_bg -j2 all
	# Wait until the run has written something, then interrupt it.
	for _ in $(seq 1 100); do
		[ -n "$(find data -name '*.dcm' 2>/dev/null | head -n 1)" ] && break
		sleep 0.05
	done
	kill -"$sig" "$BGPID"
	t0=$(date +%s)
	wait "$BGPID"
	RC=$?
	LASTCMD="thlhp-make -j2 all (SIG$sig)"
	want=130; [ "$sig" = TERM ] && want=143
	exit_is "an interrupted run ends as killed by SIG$sig" "$want"
	ok "it stopped within 20 seconds of the signal" test $(( $(date +%s) - t0 )) -le 20
	has_line "stderr says it was interrupted" "$ERR" "^thlhp-make: .*interrupted"
	has_line "the signal is acknowledged as it comes" "$ERR" "interrupted: stopping [0-9]+ running job"
	run -t status
	no_line "-t status shows no job failed by the interruption" "$OUT" "failed"
	check "no temp files left under data/" "$(temp_files data)" ""
	ok "every archive present passes unzip -t" all_zips_ok data/zip
	run -j2 all
	exit_is "the next run completes" 0
	for p in $(patients); do
		a=$(archive_of "$p")
		ok "$a exists and holds every instance with the source's bytes" zip_matches_source "$a" "$p"
	done
	run -q
	exit_is "-q afterwards: up to date" 0
done

section "SIGINT while a 150-instance series is validated"
rm -rf data .thlhp
gen --patient TH-V --studies 1 --series 1 --instances 150 --seed 77
run_bg -v -j1 TH-V
for _ in $(seq 1 200); do
	grep -q '^start validate' "$OUT" && break
	sleep 0.02
done
kill -INT "$BGPID"
wait "$BGPID"
RC=$?
LASTCMD="thlhp-make -v -j1 TH-V (SIGINT during validate)"
exit_is "the run ends as killed by SIGINT" 130
check "all 150 instances are on disk" "$(find data/dicom/TH-V -name '*.dcm' | wc -l)" 150
run -n TH-V
no_line "-n does not take the part validated for what is on disk" "$OUT" "instances missing"
run TH-V
exit_is "the next run completes" 0
ok "TH-V's archive holds every instance" zip_matches_source "$(archive_of TH-V)" TH-V
finish
