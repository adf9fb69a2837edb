#!/usr/bin/env bash
# Install what the tests need (Python packages, Debian's Chromium when missing) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# the report tests render PDF pages (pdftoppm) and read their text (pdftotext); the PDF's Unicode font
[ -x /usr/bin/pdftoppm ] || missing+=(poppler-utils)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# tests/test_engines.py computes the catalog on a real PostgreSQL server (Debian's package, started by the test)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
# tests/test_spark.py runs a local Spark session, which needs a Java runtime (17 or later)
command -v java >/dev/null || missing+=(default-jre-headless)
# tests/test_install.py installs the project into a fresh virtual environment (Debian splits venv off Python)
python -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# two workers (CI has 2 cores), each test file on one worker: its module-scoped servers and databases stay its own
python -m pytest -q -n 2 --dist loadfile
