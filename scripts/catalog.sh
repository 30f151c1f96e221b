#!/usr/bin/env bash
# Update the translation catalogs after changing the app's strings:
#   1. extract every string marked with _() or N_() into mnistlab/locales/mnistlab.pot,
#   2. merge it into each language's .po (new strings appear empty, removed ones are dropped),
#   3. compile the .po files (the app also compiles a .po newer than its .mo when it loads it).
# Then translate the empty entries; tests/test_i18n.py fails until every string is translated.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m babel.messages.frontend extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 --no-location --sort-output \
    --project="MNIST Lab" -o mnistlab/locales/mnistlab.pot app.py pages mnistlab mnistlab_ui
python3 -m babel.messages.frontend update -i mnistlab/locales/mnistlab.pot -d mnistlab/locales -D mnistlab \
    --no-fuzzy-matching --ignore-obsolete --width 120
python3 -m babel.messages.frontend compile -d mnistlab/locales -D mnistlab --statistics
