#!/bin/sh
# SPDX-License-Identifier: MIT
# Keeps the documentation true to the tree (the ctest docs.links). Fails when
#  - README.md or a Markdown file under docs/ names a core/NAME.c or
#    core/NAME.h that does not exist, or
#  - one of them has a relative link (inline [text](target), or a reference
#    definition [label]: target) that climbs with "..", starts with "/", or
#    points to no file or folder of the repository.
# http(s) and mailto links and the #anchor part of a link are not checked;
# fenced code blocks and `code spans` are not read for links.
# Usage: scripts/check-docs.sh [REPO_ROOT]   (default: the folder above this one)
# Needs only sh, sed, grep, awk: no build.
set -u
root=${1:-"$(dirname "$0")/.."}
if ! cd "$root" 2>/dev/null; then
  echo "check-docs: cannot enter $root" >&2
  exit 2
fi

files=README.md
for f in docs/*.md; do
  [ -f "$f" ] && files="$files $f"
done
if [ ! -f docs/architecture.md ]; then
  echo "check-docs: docs/architecture.md is missing" >&2
  exit 1
fi

bad=0
for f in $files; do
  # Every core/NAME.c and core/NAME.h mentioned, anywhere in the file.
  for p in $(awk '{
      line = $0
      while (match(line, /core\/[A-Za-z0-9_-]+\.[ch]/)) {
        p = substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
        if (line !~ /^[A-Za-z0-9_]/)
          print p
      }
    }' "$f" | sort -u); do
    if [ ! -f "$p" ]; then
      echo "$f: names $p, which does not exist" >&2
      bad=1
    fi
  done

  dir=$(dirname "$f")
  # One "LINE<TAB>TARGET" per relative link, outside code.
  links=$(awk '
    /^[ \t]*(```|~~~)/ { code = !code; next }
    code { next }
    {
      line = $0
      gsub(/`[^`]*`/, "", line)
      if (match(line, /^[ \t]*\[[^]]+\]:[ \t]+[^ \t]+/)) {
        t = substr(line, RSTART, RLENGTH)
        sub(/^[ \t]*\[[^]]+\]:[ \t]+/, "", t)
        print NR "\t" t
      }
      while (match(line, /\]\([^)]*\)/)) {
        t = substr(line, RSTART + 2, RLENGTH - 3)
        line = substr(line, RSTART + RLENGTH)
        sub(/^[ \t]+/, "", t)
        sub(/[ \t].*$/, "", t)
        print NR "\t" t
      }
    }' "$f")
  [ -n "$links" ] || continue
  tab=$(printf '\t')
  while IFS="$tab" read -r n t; do
    t=${t#<}
    t=${t%>}
    case $t in
    '' | '#'* | http://* | https://* | mailto:*) continue ;;
    esac
    path=${t%%#*}
    path=${path%%\?*}
    case $path in
    '') continue ;;
    /*)
      echo "$f:$n: link '$t' is absolute; use a path relative to $dir" >&2
      bad=1
      continue
      ;;
    ../* | */../* | .. | */..)
      echo "$f:$n: link '$t' climbs with '..'; link only to files inside $dir or below" >&2
      bad=1
      continue
      ;;
    *:*)
      echo "$f:$n: link '$t' has a scheme this check does not know" >&2
      bad=1
      continue
      ;;
    esac
    if [ ! -e "$dir/$path" ]; then
      echo "$f:$n: link '$t' points to $dir/$path, which does not exist" >&2
      bad=1
    fi
  done <<EOF
$links
EOF
done

if [ "$bad" -ne 0 ]; then
  echo "check-docs: FAILED" >&2
  exit 1
fi
echo "check-docs: OK ($(echo $files | wc -w) files)"
exit 0
