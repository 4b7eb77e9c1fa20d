# Shared by the scripts that run a local service (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# Whether the process whose pid is in $PID_FILE is alive.
running() {
    [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}
