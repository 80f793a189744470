# Shared helpers for hack scripts: a project virtualenv with druid and its test tools installed.
# shellcheck shell=bash
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DRUID_VENV:-$repo/.venv}

ensure_venv() {
  local stamp="$venv/.druid-installed"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "[hack] creating virtualenv $venv" >&2
    python3 -m venv "$venv"
  fi
  # Reinstall only when pyproject.toml changed since the last install.
  if [[ ! -f "$stamp" || "$repo/pyproject.toml" -nt "$stamp" ]]; then
    echo "[hack] installing druid and its test tools into $venv" >&2
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -e "$repo[test,dev]"
    touch "$stamp"
  fi
}
