# bash completion for thlhp-make: options, tools, and the targets of the
# stored catalog (thlhp-make -t targets, with the -f and -C already on the
# line).  Installed by `make install`
# into $(datadir)/bash-completion/completions/thlhp-make.
_thlhp_make()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -n : || return
	else
		cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
	fi
	case $prev in
	-t) mapfile -t COMPREPLY < <(compgen -W 'status inventory dag targets metadata forms qc list init clean' -- "$cur"); return ;;
	-f | --file) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	-C | --directory) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
	--format) mapfile -t COMPREPLY < <(compgen -W 'table csv jsonl' -- "$cur"); return ;;
	-j | --jobs | --since) return ;;
	esac
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W '-f --file -C --directory -n --dry-run -q
			--question -j --jobs -B --always-make -k --keep-going --offline -v
			--verbose --quiet --wait -t --format --since --version -h --help' -- "$cur")
		return
	fi
	local i args=() list
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-f | --file | -C | --directory) args+=("${words[i]}" "${words[i + 1]}") ;;
		esac
	done
	# One a line; names with blanks, quotes or expansions in them are left
	# out, as compgen -W would split or expand them.
	list=$(thlhp-make "${args[@]}" -t targets 2>/dev/null | grep -v '[][[:space:]"'\''\\$`*?{}~]')
	mapfile -t COMPREPLY < <(compgen -W "$list" -- "$cur")
	if declare -F __ltrim_colon_completions >/dev/null; then
		__ltrim_colon_completions "$cur"
	fi
}
complete -F _thlhp_make thlhp-make
