#!/usr/bin/env bash
# Writes the settings table of docs/configuration.md from `goring --help`,
# so the reference cannot drift from the one settings table behind parsing
# and --help (config/config.cpp). Only the lines between the two marker
# comments are generated; the prose around them is kept.
#
# Usage: tools/gen-config-doc.sh [--check] [--doc FILE] [GORING_BINARY]
#   GORING_BINARY  default build/goring
#   --check        change nothing; exit 1 and say what differs (settings
#                  missing from the document, settings it lists that goring
#                  does not have, other defaults), then the diff. The ctest
#                  docs_configuration_matches_help runs this.
#   --doc FILE     default docs/configuration.md
set -euo pipefail
export LC_ALL=C
root="$(cd "$(dirname "$0")/.." && pwd)"
check=0
doc="$root/docs/configuration.md"
goring="$root/build/goring"
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --doc) doc="$2"; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gen-config-doc.sh: unknown option $1" >&2; exit 2 ;;
    *) goring="$1" ;;
  esac
  shift
done
begin='<!-- BEGIN settings table: generated from `goring --help` by tools/gen-config-doc.sh; do not edit by hand -->'
end='<!-- END settings table -->'

if [ ! -x "$goring" ]; then
  echo "gen-config-doc.sh: no goring binary at $goring (build it: cmake --build build --target goring)" >&2
  exit 2
fi
for marker in "$begin" "$end"; do
  if [ "$(grep -cxF -- "$marker" "$doc")" != 1 ]; then
    echo "gen-config-doc.sh: $doc must hold this line exactly once: $marker" >&2
    exit 2
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A clean environment: a setting in ours must not change what --help says,
# and an invalid one would make goring refuse before it reads --help. The
# sanitizers' options stay (tools/sanitize-test.sh runs this test too).
keep=()
for var in PATH ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
  if [ -n "${!var:-}" ]; then keep+=("$var=${!var}"); fi
done
if ! env -i "${keep[@]}" "$goring" --help >"$work/help.txt"; then
  echo "gen-config-doc.sh: $goring --help failed" >&2
  exit 2
fi

# help_text() prints each setting as two lines:
#   "  --flag / ENV"
#   "      description (default X)"
# Anything else indented under a setting means the format changed: stop
# rather than write a wrong table.
awk '
  function fail(msg) { print "gen-config-doc.sh: cannot read goring --help: " msg > "/dev/stderr"; bad = 1; exit 2 }
  /^  --[a-z0-9-]+ \/ [A-Z][A-Z0-9_]*$/ {
    if (flag != "") fail("no description under " flag)
    flag = $1; env = $3; next
  }
  /^      / {
    if (flag == "") fail("a description without a setting: " $0)
    line = substr($0, 7)
    # The last " (default " starts the default: descriptions may hold
    # parentheses, defaults too ("(empty)").
    p = 0
    for (i = 1; (j = index(substr(line, i), " (default ")) > 0; i += j) p = i + j - 1
    if (p == 0 || substr(line, length(line)) != ")") fail("no \"(default ...)\" after " flag)
    desc = substr(line, 1, p - 1)
    def = substr(line, p + 10, length(line) - p - 10)
    gsub(/\|/, "\\|", desc)
    if (def !~ /^\(/) def = "`" def "`"
    printf "| `%s` | `%s` | %s | %s |\n", env, flag, def, desc
    n++; flag = ""; next
  }
  flag != "" { fail("no description under " flag) }
  END {
    if (bad) exit 2
    if (flag != "") fail("no description under " flag)
    if (n < 10) fail("only " n " settings found")
  }
' "$work/help.txt" >"$work/rows.md"
{
  echo "| variable | flag | default | meaning |"
  echo "|---|---|---|---|"
  cat "$work/rows.md"
} >"$work/table.md"

# The document's current table, between the markers.
awk -v b="$begin" -v e="$end" '$0 == e { on = 0 } on { print } $0 == b { on = 1 }' "$doc" >"$work/current.md"

if [ "$check" = 0 ]; then
  awk -v b="$begin" -v e="$end" -v table="$work/table.md" '
    $0 == e { while ((getline line < table) > 0) print line; on = 0 }
    !on { print }
    $0 == b { on = 1 }
  ' "$doc" >"$work/doc.md"
  if cmp -s "$work/doc.md" "$doc"; then
    echo "$doc: up to date ($(wc -l <"$work/rows.md") settings)"
  else
    cat "$work/doc.md" >"$doc"
    echo "$doc: settings table rewritten from $goring --help ($(wc -l <"$work/rows.md") settings)"
  fi
  exit 0
fi

if cmp -s "$work/current.md" "$work/table.md"; then
  echo "docs/configuration.md matches goring --help ($(wc -l <"$work/rows.md") settings)"
  exit 0
fi

# Name the differences a reader cares about, then show the whole diff.
# Rows: | `ENV` | `--flag` | default | meaning |, with \| inside cells.
rows() { sed 's/\\|/\x01/g' "$1" | awk -F'|' '/^\| `/ { gsub(/^ *`|` *$/, "", $2); gsub(/^ +| +$/, "", $4); print $2 "\t" $4 }' | sort; }
rows "$work/current.md" >"$work/doc.tsv"
rows "$work/table.md" >"$work/help.tsv"
{
  join -t $'\t' -v 2 "$work/doc.tsv" "$work/help.tsv" | awk -F'\t' '{ print "missing from the document: " $1 " (goring --help: default " $2 ")" }'
  join -t $'\t' -v 1 "$work/doc.tsv" "$work/help.tsv" | awk -F'\t' '{ print "listed in the document, unknown to goring --help: " $1 }'
  join -t $'\t' "$work/doc.tsv" "$work/help.tsv" | awk -F'\t' '$2 != $3 { print "other default for " $1 ": the document says " $2 ", goring --help says " $3 }'
} | sed 's/\x01/|/g'
echo "docs/configuration.md's settings table differs from $goring --help"
echo "(--- the document, +++ goring --help):"
diff -u --label docs/configuration.md --label "goring --help" "$work/current.md" "$work/table.md" || true
echo "Fix: tools/gen-config-doc.sh $goring  (rewrites the table; then commit docs/configuration.md)"
exit 1
