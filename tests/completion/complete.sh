#!/bin/bash
# SPDX-License-Identifier: MIT
# complete.sh FILE LINE: load bash-completion and the completion FILE, complete
# LINE as if TAB were pressed at its end, print COMPREPLY one per line.
# Exit 77 when bash-completion is not installed.
set -u
[[ -r /usr/share/bash-completion/bash_completion ]] || { echo "bash-completion is not installed" >&2; exit 77; }
source /usr/share/bash-completion/bash_completion
source "$1"
line=$2
read -r -a COMP_WORDS <<<"$line"
[[ $line == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}
COMPREPLY=()
fn=$(complete -p "${COMP_WORDS[0]}" | sed 's/.*-F \([^ ]*\) .*/\1/')
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
