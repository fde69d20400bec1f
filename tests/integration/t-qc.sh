#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-qc: -t qc --since AGE DEST copies the series downloaded in the last AGE
# into DEST/<patient>/<study>/<series>/, byte for byte, and nothing older;
# bad arguments are exit 2 with what to say.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "all" 0
# TH-01-AA's series were downloaded three days ago, as far as anyone can tell.
find data/dicom/TH-01-AA -mindepth 2 -maxdepth 2 -type d -exec touch -d '3 days ago' {} +
run -t qc --since 48h "$T/qc"
exit_is "-t qc --since 48h DEST" 0
has_line "it says what it copied" "$OUT" "^copied [0-9]+ series \([0-9]+ instances, [0-9.]+ MB\) downloaded in the last 48h to $T/qc$"
check "DEST holds the recent patients' series, laid out as dicom_dir" \
	"$(cd "$T/qc" && find . -name '*.dcm' | sort)" \
	"$(cd data/dicom && find ./TH-02-BB ./TH-03-CC -name '*.dcm' | sort)"
bad=0
while IFS= read -r f; do cmp -s "$T/qc/$f" "data/dicom/$f" || bad=1; done < <(cd "$T/qc" && find . -name '*.dcm')
check "... byte for byte" "$bad" 0
check "nothing of TH-01-AA, downloaded 3 days ago" "$(find "$T/qc" -path '*TH-01-AA*' | wc -l)" 0
run -t qc --since 7d "$T/qc7"
exit_is "-t qc --since 7d" 0
check "--since 7d takes TH-01-AA too" "$(find "$T/qc7/TH-01-AA" -name '*.dcm' | wc -l)" \
	"$(find data/dicom/TH-01-AA -name '*.dcm' | wc -l)"
for args in "-t qc $T/x" "-t qc --since 48 $T/x" "-t qc --since 2w $T/x" "-t qc --since 48h"; do
	# shellcheck disable=SC2086  # the arguments, split on purpose
	run $args
	exit_is "thlhp-make $args" 2
	has_line "... says how to call it" "$ERR" 'thlhp-make -t qc --since 48h DEST'
done
check "nothing was written outside DEST by the bad calls" "$(ls "$T" | grep -c '^x$')" 0

finish
