# Sourced by .ci/skopeo-sigstore and .ci/umoci-zstd (bash): an apt-get of the machine's Debian
# mirror for another suite, with a private state (sources, lists, cache, an empty dpkg status)
# so that nothing on the system changes. The caller sets STATE (the state directory), SUITE,
# ARCH and KEYRING and defines die(); `private_apt` then defines apt_get and apt_cache.

# The machine's Debian archive URI: from a deb822 stanza (or a one-line `deb` entry) of a
# release suite (no `-updates`/`-security`), preferring a URI ending in /debian.
debian_uri() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            awk '
                function flush() {
                    if (deb && uri != "" && suite != "") print uri
                    deb = 0; uri = ""; suite = ""
                }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                tolower($1) == "uris:" { uri = $2 }
                tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i !~ /[-\/]/) suite = $i }
                tolower($1) == "enabled:" && tolower($2) == "no" { deb = 0 }
                END { flush() }
            ' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            # deb [options] URI suite components
            sed -E -n 's/^[ \t]*deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+)[ \t]+([^ \t\/-]+)[ \t].*/\2/p' "$f"
        done
    } | awk '{ sub(/\/+$/, "") } /\/debian$/ { print; found = 1; exit } NR == 1 { first = $0 }
             END { if (!found && first != "") print first }' | head -n 1
}

# The private apt state: its own sources, lists, cache and (empty) dpkg status; no system
# apt.conf.d (its update hooks touch the system), only the machine's proxy and date-check
# settings. Defines apt_get and apt_cache.
private_apt() {
    URI=$(debian_uri)
    [ -n "$URI" ] || die "no Debian archive in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
    mkdir -p "$STATE"/{etc/apt.conf.d,etc/preferences.d,lists/partial,cache/archives/partial}
    : > "$STATE/status"
    cat > "$STATE/etc/$SUITE.sources" <<EOF
Types: deb
URIs: $URI
Suites: $SUITE
Components: main
Signed-By: $KEYRING
EOF
    # APT_CONFIG is read before apt.conf.d, so it can point Dir::Etc::Parts elsewhere.
    : > "$STATE/etc/main.conf"
    {
        echo "Dir::Etc::Parts \"$STATE/etc/apt.conf.d\";"
        echo "Dir::Etc::Main \"$STATE/etc/main.conf\";"
        apt-config dump |
            grep -E '^Acquire::(([a-z]+::)?Proxy|[a-z]+::Proxy::|Check-Valid-Until|Check-Date|Retries|ForceIPv4)' || true
    } > "$STATE/etc/apt.conf"
    if getent passwd _apt >/dev/null && [ "$(id -u)" = 0 ]; then
        # apt downloads as the unprivileged _apt.
        chown _apt "$STATE"/lists/partial "$STATE"/cache/archives/partial
    fi
    APT_OPTS=(
        -o "Dir::Etc::SourceList=$STATE/etc/$SUITE.sources"
        -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::Etc::Preferences=/dev/null"
        -o "Dir::Etc::PreferencesParts=$STATE/etc/preferences.d"
        -o "Dir::State::Lists=$STATE/lists"
        -o "Dir::State::status=$STATE/status"
        -o "Dir::Cache=$STATE/cache"
        -o APT::Architecture=$ARCH
        -o APT::Architectures=$ARCH
        -o Acquire::Languages=none
        -o Acquire::GzipIndexes=true
        -o Dir::Cache::pkgcache=
        -o Dir::Cache::srcpkgcache=
    )
    apt_get() { APT_CONFIG=$STATE/etc/apt.conf apt-get "${APT_OPTS[@]}" "$@"; }
    apt_cache() { APT_CONFIG=$STATE/etc/apt.conf apt-cache "${APT_OPTS[@]}" "$@"; }
}
