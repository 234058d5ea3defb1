#!/bin/sh
# count_lines.sh DIR - how many lines each file in DIR has, and the total.
#
# For every regular file directly in DIR (not in its subfolders; names starting with "." are skipped), in order
# of name, prints one line "<lines> <name>" (the file's name, without the folder), then "<sum> total".
# A last line without a final newline counts as a line, as in any editor: a file holding "a\nb" has 2 lines,
# an empty file has 0.
#
# Example: sh scripts/count_lines.sh data
set -u

dir=${1:?usage: sh scripts/count_lines.sh DIR}
total=0
for name in $(ls $dir); do
    [ -f $dir/$name ] || continue
    lines=$(wc -l < $dir/$name)
    echo "$lines $name"
    total=$((total + lines))
done
echo "$total total"
