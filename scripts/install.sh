#!/usr/bin/env bash
# Install what MNIST Lab needs on a fresh Debian/Ubuntu machine (or any machine with pip).
#   bash scripts/install.sh             the app's packages
#   bash scripts/install.sh --dev       the app's packages and the test tools (pytest, Playwright, Chromium, ruff, Ray)
#   bash scripts/install.sh --cluster   the app's packages and Ray, to train on a computer lab's PCs (README)
# System packages: Fashion-MNIST (dataset-fashion-mnist) and, for the browser tests,
# Debian's Chromium (Playwright's own browser download is not needed).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
cluster=0
for option in "$@"; do
    case "$option" in
        --dev) dev=1; cluster=1 ;;
        --cluster) cluster=1 ;;
        *) echo "unknown option: $option (use --dev or --cluster)" >&2; exit 2 ;;
    esac
done

apt_packages=(dataset-fashion-mnist)
# The tests also run the database tests against a real PostgreSQL, and two app servers on one.
[ "$dev" = 1 ] && apt_packages+=(chromium postgresql)
if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    missing=()
    for package in "${apt_packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
    fi
else
    echo "No apt-get here: install Fashion-MNIST yourself (see README) or MNIST Lab will say where to get it." >&2
fi

pip=(python3 -m pip install -q --disable-pip-version-check)
"${pip[@]}" -r requirements.txt
[ "$dev" = 1 ] && "${pip[@]}" -r requirements-dev.txt
[ "$cluster" = 1 ] && [ -f requirements-cluster.txt ] && "${pip[@]}" -r requirements-cluster.txt
# MNIST Lab itself, editable: `import mnistlab` works from anywhere, and the `mnistlab` command exists.
"${pip[@]}" --no-deps -e .
# The translation catalogs, compiled (the app also compiles a catalog newer than its .mo when it loads it).
python3 -m babel.messages.frontend compile --directory mnistlab/locales --domain mnistlab --statistics
echo "MNIST Lab: installed."
