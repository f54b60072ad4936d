# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sourced by mk/setup.sh (and its test): which package mirror this machine
# already uses, from its own apt sources.

# Print "URI" for every enabled binary source that serves suite $1, in the
# order apt reads them, from ${APT_ETC:-/etc/apt}; the file $2 (ours) is
# skipped.
apt_uris_for_suite() {
    etc=${APT_ETC:-/etc/apt}
    for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # one-line format: deb [options] URI suite component...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk -v s="$1" '$1 == "deb" && $3 == s { print $2 }'
    done
    for f in "$etc"/sources.list.d/*.sources; do
        [ -f "$f" ] && [ "$f" != "${2:-}" ] || continue
        # deb822: stanzas separated by blank lines
        awk -v s="$1" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no")
                    for (i = 1; i <= nsu; i++)
                        if (su[i] == s) { for (j = 1; j <= nu; j++) print u[j]; break }
                types = ""; enabled = ""; nu = 0; nsu = 0
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:"   { types = ""; for (i = 2; i <= NF; i++) types = types " " $i; types = types " " }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            tolower($1) == "uris:"    { nu = 0; for (i = 2; i <= NF; i++) u[++nu] = $i }
            tolower($1) == "suites:"  { nsu = 0; for (i = 2; i <= NF; i++) su[++nsu] = $i }
            END { flush() }' "$f"
    done
}
