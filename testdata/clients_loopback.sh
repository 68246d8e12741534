#!/bin/sh
# The loopback rows of docs/measuring.md's clients table, and the pion and
# aiortc floors, in one run with the load before and after each row. Run
# as root from the repository root: sh testdata/clients_loopback.sh [N]
# (N sessions per row, default 30). It runs inside a namespace of its own
# (unshare -n; lo, plus a veth end with 198.51.100.9 and the default route for aioice,
# which gathers no loopback candidates), so no packet leaves the machine.
set -eu
if [ "${CLIENTS_INSIDE:-}" != 1 ]; then
	exec env CLIENTS_INSIDE=1 unshare -n sh "$0" "$@"
fi
n=${1:-30}
ip link set lo up
ip link add floor0 type veth peer name floor1 && ip addr add 198.51.100.9/24 dev floor0 && ip link set floor1 up && ip link set floor0 up && ip route add default via 198.51.100.1 dev floor0
dir=$(mktemp -d)
go build -o "$dir/geckohost" .
gh="$dir/geckohost"
token=$("$gh" token add --db "$dir/db" --name clients)
"$gh" serve --db "$dir/db" --ice-loopback --warm 2 --log-level warn >"$dir/serve.log" 2>&1 &
serve=$!
trap 'kill -TERM $serve; wait $serve; rm -rf "$dir"' EXIT
i=0
until curl -sf http://127.0.0.1:8765/readyz >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 600 ] || { cat "$dir/serve.log"; exit 1; }; sleep 0.1
done
load() { cut -d' ' -f1-3 /proc/loadavg; }
row() { # name, command...
	name=$1; shift
	b=$(load)
	out=$("$@")
	echo "== $name (load $b -> $(load))"
	echo "$out"
}
row "geckohost bench --loopback (nudge)" "$gh" bench --token "$token" --loopback -n "$n" --messages 1
row "geckohost bench --loopback --no-nudge" "$gh" bench --token "$token" --loopback --no-nudge -n "$n" --messages 1
row "pion floor (go test ./host/client -bench PionFloor)" go test -run X -bench PionFloor -benchtime "${n}x" ./host/client
row "aiortc floor (testdata/aiortc_floor.py)" /usr/bin/python3 testdata/aiortc_floor.py "$n"
