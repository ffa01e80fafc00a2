#!/usr/bin/env bash
# The headless browser of tests/test_browser.py: Chromium and its matching chromedriver.
# `make test` runs this before anything else and `.ci/run` runs it with --require, so a missing
# browser is reported within seconds instead of after the whole suite.
#
#   bash scripts/browser.sh            found: say so. Missing: install Debian's `chromium` and
#                                      `chromium-driver` with apt-get when this user can (root or
#                                      passwordless sudo); otherwise print one line saying the
#                                      browser tests will be skipped. Exits 0 either way.
#   bash scripts/browser.sh --require  the same, but a browser still missing exits 1 (CI). Also
#                                      the mode when JAXSIM_REQUIRE_BROWSER=1 or CI=true.
#   bash scripts/browser.sh --found    silent: exit 0 if both binaries are there, else 1.
#
# JAXSIM_CHROMIUM / JAXSIM_CHROMEDRIVER name other binaries (as the test reads them), and
# JAXSIM_BROWSER_INSTALL=0 turns the apt-get install off. Only bash builtins are used on the
# way to "not installable", so the answer comes in well under a second.
set -u

mode=check
case "${1:-}" in
    "") ;;
    --require) mode=require ;;
    --found) mode=found ;;
    *) echo "usage: bash scripts/browser.sh [--require|--found]" >&2; exit 2 ;;
esac
if [ "$mode" = check ] && { [ "${JAXSIM_REQUIRE_BROWSER:-}" = 1 ] || [ "${CI:-}" = true ]; }; then
    mode=require
fi

# The same names, in the same order, as tests/test_browser.py looks for.
find_binary() {  # $1: override variable's value, then candidate names; prints the path found
    local override=$1 name
    shift
    if [ -n "$override" ]; then
        [ -f "$override" ] && echo "$override"
        return
    fi
    for name in "$@"; do
        if command -v "$name" 2>/dev/null; then return; fi
        if [ -f "$name" ]; then echo "$name"; return; fi
    done
}

locate() {
    browser=$(find_binary "${JAXSIM_CHROMIUM:-}" chromium chromium-browser google-chrome)
    driver=$(find_binary "${JAXSIM_CHROMEDRIVER:-}" chromedriver /usr/lib/chromium/chromedriver)
    [ -n "$browser" ] && [ -n "$driver" ]
}

missing_text() {
    local what=()
    [ -n "$browser" ] || what+=(chromium)
    [ -n "$driver" ] || what+=(chromedriver)
    [ ${#what[@]} -eq 2 ] && echo "chromium and chromedriver" || echo "${what[0]}"
}

if locate; then
    [ "$mode" = found ] || echo "browser check: $browser and $driver found; the browser tests will run"
    exit 0
fi
[ "$mode" = found ] && exit 1

# Can this user run apt-get without a password prompt? (`sudo -n` never prompts.)
why=""
sudo=()
if [ "${JAXSIM_BROWSER_INSTALL:-1}" = 0 ]; then
    why="JAXSIM_BROWSER_INSTALL=0"
elif ! command -v apt-get >/dev/null 2>&1; then
    why="no apt-get on this system"
elif [ "$EUID" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        why="not root and no passwordless sudo"
    fi
fi

if [ -z "$why" ]; then
    echo "browser check: $(missing_text) missing; installing Debian's chromium and chromium-driver with apt-get (once, about a minute)"
    apt() { ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
    # Debian's names first; Ubuntu calls them chromium-browser and chromium-chromedriver.
    if apt update -q >&2 && { apt install -y -q --no-install-recommends chromium chromium-driver >&2 ||
            apt install -y -q --no-install-recommends chromium-browser chromium-chromedriver >&2; } &&
            locate; then
        echo "browser check: installed $browser and $driver; the browser tests will run"
        exit 0
    fi
    why="apt-get install failed (see above)"
fi

hint="install them (Debian/Ubuntu: sudo apt-get install chromium chromium-driver) or set JAXSIM_CHROMIUM and JAXSIM_CHROMEDRIVER"
if [ "$mode" = require ]; then
    echo "browser check: FAILED: $(missing_text) missing and not installable ($why); the browser tests must run here: $hint" >&2
    exit 1
fi
echo "browser check: $(missing_text) missing and not installable ($why): the browser tests will be SKIPPED (listed in the pytest summary); to run them, $hint"
exit 0
