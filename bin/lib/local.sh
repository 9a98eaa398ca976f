# What bin/serve, bin/test and bin/manage share (sourced, not a command of its own): the one
# Python the requirements are pinned for, virtualenvs made with it, and the local site's
# environment.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Python 3.11 (.python-version; Render runs 3.11.7). On 3.10 pip ends in a wall of "Could not
# find a version ... onnxruntime" that names no Python, so the version is checked first.
SUPPORTED_PYTHON=$(cat "$REPO/.python-version")

# "3.11" for a working interpreter, nothing for a missing or broken one.
python_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

# Sets PYTHON (given, else python3.11, else python3), or stops in one line saying what to do.
# From then on PYTHON is the interpreter itself, not a launcher in front of it (a pyenv shim
# costs 0.3 s a call).
require_python() {
  PYTHON=${PYTHON:-$(command -v "python$SUPPORTED_PYTHON" || command -v python3 || echo python3)}
  local answer found
  answer=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2], sys.executable)' 2>/dev/null || true)
  found=${answer%% *}
  if [ "$found" != "$SUPPORTED_PYTHON" ]; then
    echo "HealthOracle needs Python $SUPPORTED_PYTHON, and $PYTHON is ${found:+Python }${found:-not a working Python}:" \
         "install Python $SUPPORTED_PYTHON and point PYTHON at it, e.g. PYTHON=/path/to/python$SUPPORTED_PYTHON $0" >&2
    exit 1
  fi
  [ "$answer" = "$found" ] || PYTHON=${answer#* }
}

# A virtualenv at $1 made with $PYTHON. One whose Python is missing, broken or another
# version, or that lacks pip (an interrupted install), is rebuilt rather than reused:
# pip would fail in it on every run. A venv that is a link (a worktree sharing another
# checkout's) is never rebuilt through the link.
ensure_venv() {
  local dir=$1 found
  found=$(python_version "$dir/bin/python")
  if [ "$found" = "$SUPPORTED_PYTHON" ] && "$dir/bin/python" -c "import pip" 2>/dev/null; then
    return 0
  fi
  local state="Python $found without pip"
  [ "$found" = "$SUPPORTED_PYTHON" ] || state=${found:+Python $found}
  state=${state:-no working Python}
  if [ -L "$dir" ]; then
    echo "$dir links to $(readlink "$dir"), which has $state: repair or remove that link, then run again." >&2
    exit 1
  fi
  if [ -e "$dir" ]; then
    echo "Rebuilding $dir: it has $state, not Python $SUPPORTED_PYTHON with pip." >&2
    rm -rf "$dir"
  fi
  "$PYTHON" -m venv "$dir"
}

# The local site's environment, for bin/serve and bin/manage alike: a secret key made once
# and kept in var/ (ignored by git), and plain http on loopback (Render terminates TLS in
# front of the real site). $1 is a Python that can make the key.
local_site_env() {
  mkdir -p "$REPO/var"
  [ -s "$REPO/var/secret_key" ] || "$1" -c "import secrets; print(secrets.token_urlsafe(50))" > "$REPO/var/secret_key"
  SECRET_KEY="$(cat "$REPO/var/secret_key")"
  export SECRET_KEY
  export HTTPS_ONLY="${HTTPS_ONLY:-0}"
}

# Stops with a clear line if nothing can listen at $1 (host:port) now, instead of gunicorn
# retrying for 5 s and ending in "Can't connect". $2 says how to pick another address.
require_free_address() {
  "$PYTHON" - "$1" "$2" <<'PY'
import socket
import sys

bind, hint = sys.argv[1:]
host, _, port = bind.rpartition(":")
host = host.strip("[]") or "0.0.0.0"
if bind.startswith(("unix:", "fd://")):
    sys.exit(0)
if not port.isdigit():
    sys.exit(f"{bind!r} has no port number to listen on: {hint}.")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
    try:
        probe.bind((host, int(port)))
    except OSError as error:
        sys.exit(f"Cannot listen on {host}:{port} ({error.strerror}): another server (another bin/serve?) "
                 f"holds that port. Stop it, or {hint}.")
PY
}
