# shellcheck shell=bash
# write_guest_cases RUN_DIR BASE_HMM_LOG OUT_CMAKE: turn one guest run into
# ctest cases, one per KUnit case, guest GoogleTest case and hmm-tests case.
# Every case re-reads the saved logs through rig-log, so `ctest -R NAME -V`
# shows that case's own output. Cases a suite should have run but did not
# report (the guest died, a binary crashed) are added too, and fail.

split_suites() { # RUN_DIR
	local dir=$1
	rm -rf "$dir/suites" && mkdir -p "$dir/suites"
	awk -v dir="$dir/suites" '
		/^@@SUITE / { name = $2; file = dir "/" name ".log"; printf "" > file; next }
		/^@@SUITE-EXIT / { print $3 > (dir "/" $2 ".status"); name = ""; next }
		{ if (name != "") print > file }
	' "$dir/output.log"
}

cmake_quote() { printf '[==[%s]==]' "$1"; }

emit_case() { # NAME LABEL COMMAND...
	local name=$1 label=$2 arg
	shift 2
	printf 'add_test(%s' "$(cmake_quote "$name")"
	for arg in "$@"; do printf ' %s' "$(cmake_quote "$arg")"; done
	printf ')\nset_tests_properties(%s PROPERTIES SKIP_RETURN_CODE 77 LABELS %s)\n' \
		"$(cmake_quote "$name")" "$label"
}

# expected_gtest_cases BINARY: the case list, asked of the static binary on
# the host (listing runs no test).
expected_gtest_cases() {
	"$1" --gtest_list_tests 2>/dev/null | awk '
		/^[^ ]/ { suite = $1; next }
		/^  / { print suite $1 }'
}

write_guest_cases() {
	local dir=$1 base_hmm=$2 out=$3 rig_log=$RIG_LOG
	split_suites "$dir"
	{
		echo "# Written by scripts/check from the guest run in $dir."
		emit_case guest.kernel-log-clean guest "$rig_log" splats "$dir/console.log"
		# kmemleak's two scans at the end of the run (scripts/guest/init).
		emit_case guest.kmemleak-clean guest sh -c \
			'[ -s "$1" ] || { echo "no kmemleak scan result: the guest died first, or no CONFIG_DEBUG_KMEMLEAK"; exit 1; }
			n=$(cat "$1"); echo "kmemleak: $n suspected leaks"; cat "$2" 2>/dev/null; [ "$n" = 0 ]' \
			kmemleak "$dir/kmemleak-count" "$dir/kmemleak.log"

		local tc outcome name
		while read -r outcome tc; do
			emit_case "kernel.kunit.$tc" kunit "$rig_log" case ktap "$dir/console.log" "$tc"
		done < <("$rig_log" cases ktap "$dir/console.log")

		local bin suite log
		for bin in "$GMEM_BUILD"/guest/bin/gtest-*; do
			suite=${bin##*/gtest-}
			log=$dir/suites/$suite.log
			[ -f "$log" ] || : >"$log"
			{ expected_gtest_cases "$bin"; "$rig_log" cases gtest "$log" | cut -d' ' -f2; } |
				awk '!seen[$0]++' | while read -r name; do
				emit_case "guest.$suite.$name" guest "$rig_log" case gtest "$log" "$name"
			done
		done

		log=$dir/suites/hmm-tests.log
		[ -f "$log" ] || : >"$log"
		{ "$rig_log" cases kselftest "$base_hmm" | cut -d' ' -f2
		  "$rig_log" cases kselftest "$log" | cut -d' ' -f2; } |
			awk '!seen[$0]++' | while read -r name; do
			emit_case "guest.hmm-tests.$name" hmm-tests "$rig_log" case kselftest "$log" \
				"$name" --base "$base_hmm"
		done
		emit_case guest.hmm-tests.no-regression-vs-base hmm-tests \
			"$rig_log" compare kselftest "$base_hmm" "$log"
	} >"$out"
}

# write_checker_counts RUN_DIR OUT_JSON: what the kernel checkers counted in
# one guest run, for the summary ("-" where a checker did not report).
write_checker_counts() {
	local dir=$1 out=$2 kasan leaks injected operations syscalls seconds
	kasan=$(grep -c 'BUG: KASAN' "$dir/console.log" 2>/dev/null || true)
	leaks=$(cat "$dir/kmemleak-count" 2>/dev/null || echo '"-"')
	read -r operations injected < <(sed -n 's/^\[ injected \] \([0-9]*\) operations, \([0-9]*\) failed cleanly$/\1 \2/p' \
		"$dir/suites/gmem.log" 2>/dev/null | head -n 1)
	read -r syscalls seconds < <(sed -n 's/^\[ trinity  \] \([0-9]*\) system calls in \([0-9]*\) s;.*/\1 \2/p' \
		"$dir/suites/fuzz.log" 2>/dev/null | head -n 1)
	printf '{"kasan": {"reports": %s}, "kmemleak": {"leaks": %s}, "faultinject": {"injected": %s, "operations": %s}, "trinity": {"syscalls": %s, "seconds": %s}}\n' \
		"${kasan:-0}" "$leaks" "${injected:-\"-\"}" "${operations:-\"-\"}" "${syscalls:-\"-\"}" "${seconds:-\"-\"}" >"$out"
}
