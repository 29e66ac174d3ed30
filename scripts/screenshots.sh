#!/usr/bin/env bash
# Takes the README's screenshots of fastchat-desktop into docs/screenshots/: the log-in
# screen, a group chat with an image, the group dialog, and the dark theme. Everything runs
# in a private Xvfb display against a private server and daemons, in a temporary folder.
#
# Needs (Debian): xvfb xdotool imagemagick mesa-vulkan-drivers.
# Usage: scripts/screenshots.sh [OUT_DIR]   (default docs/screenshots)
#        SCREENSHOT_PROFILE=dev scripts/screenshots.sh   (debug binaries: a faster build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/screenshots}")
mkdir -p "$out"

for tool in Xvfb xdotool import convert; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install xvfb xdotool imagemagick mesa-vulkan-drivers)" >&2; exit 1; }
done

echo "==> building" >&2
profile=${SCREENSHOT_PROFILE:-release}
cargo build --profile "$profile" --locked -p fastchat-server -p fastchat-daemon -p fastchat-cli -p fastchat-desktop
[ "$profile" = dev ] && dir=debug || dir=$profile
bin="${CARGO_TARGET_DIR:-target}/$dir"

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # The daemons fastchatctl started.
    pkill -f "fastchatd --profile .* --socket $work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export XDG_RUNTIME_DIR="$work/run" XDG_DATA_HOME="$work/data" HOME="$work"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
unset WAYLAND_DISPLAY FASTCHAT_PROFILE FASTCHAT_SOCKET
export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json

# A display of our own; Composite so that gpui gets a visual it can draw on.
exec 3< <(Xvfb -displayfd 1 -screen 0 1280x860x24 -extension Composite -nolisten tcp 2>/dev/null & echo "pid $!")
read -r _ xpid <&3
read -r display <&3
pids+=("$xpid")
export DISPLAY=":$display"

# A server on a free port.
exec 4< <("$bin/fastchat-server" --listen 127.0.0.1:0 --database-url "sqlite://$work/server.db" 2>/dev/null & echo "pid $!")
read -r _ spid <&4
read -r listening <&4
pids+=("$spid")
server=${listening##* }

ctl() { local profile=$1; shift; "$bin/fastchatctl" --profile "$profile" --server "$server" "$@"; }
password='correct horse battery'
for user in alice bob carol; do
    echo "$password" | ctl "$user" signup "$user" --password-stdin >/dev/null
done
ctl alice group create team --members bob,carol >/dev/null
ctl bob send --group team "Morning! Is the release still on for Friday?" >/dev/null
ctl alice send --group team "Yes. The load balancer changes landed last night." >/dev/null
ctl carol send --group team "I ran the bench on four servers: p99 stays under 10 ms." >/dev/null
convert -size 640x400 plasma:steelblue-orange -blur 0x2 \
    -gravity center -pointsize 40 -fill white -annotate 0 'bench: 4 servers' "$work/plot.png"
ctl carol send-image --group team "$work/plot.png" >/dev/null
ctl bob send --group team "Nice, ship it." >/dev/null
ctl bob send --user alice "Lunch after the release?" >/dev/null

# Starts the window for a profile and waits for it; sets $win to its X window id.
open_window() {
    local profile=$1 theme=$2
    "$bin/fastchat-desktop" --profile "$profile" --theme "$theme" 2>>"$work/desktop.log" &
    pids+=("$!")
    win=""
    for _ in $(seq 1 300); do
        win=$(xdotool search --name '^FastChat' 2>/dev/null | head -n1 || true)
        [ -n "$win" ] && break
        sleep 0.1
    done
    [ -n "$win" ] || { echo "error: no window; its log:" >&2; cat "$work/desktop.log" >&2; exit 1; }
    # Without a window manager, gpui draws once an X event arrives after mapping; and
    # keys typed below go to the focused window (gpui ignores synthetic events).
    xdotool windowmove "$win" 0 0
    xdotool windowfocus --sync "$win" 2>/dev/null || true
}

# Waits until the window's title contains $2, then lets it draw.
wait_title() {
    for _ in $(seq 1 300); do
        case "$(xdotool getwindowname "$1" 2>/dev/null)" in *"$2"*) sleep 1; return ;; esac
        sleep 0.1
    done
    echo "error: the title never said $2 (it says: $(xdotool getwindowname "$1" 2>&1)); the log:" >&2
    tail -n 20 "$work/desktop.log" >&2; exit 1
}

# Screenshots window $1 into $2. Without a window manager gpui may present nothing until an
# X event arrives, so a blank shot is taken again after moving the pointer over the window.
shot() {
    for i in $(seq 1 50); do
        import -window "$1" "$out/$2"
        [ "$(identify -format %k "$out/$2")" -gt 16 ] && { echo "wrote $out/$2" >&2; return; }
        xdotool mousemove --window "$1" $((300 + i)) $((600 + i))
        sleep 0.2
    done
    echo "error: $2 stayed blank" >&2; exit 1
}

# 1. The log-in screen (carol logged out first).
ctl carol logout >/dev/null
open_window carol light
sleep 2
xdotool type --delay 20 carol
shot "$win" login.png
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'

# 2. A group chat with an image, and an unread direct message in the sidebar.
open_window alice light
wait_title "$win" "alice · "
xdotool key alt+Down
wait_title "$win" "#team"
sleep 2
shot "$win" chat.png

# 3. The group dialog.
xdotool key ctrl+n
sleep 1
xdotool type --delay 20 design
xdotool key Return   # on to the members
xdotool type --delay 20 "bob, carol"
sleep 1
shot "$win" group-dialog.png
xdotool key Escape

# 4. The dark theme.
xdotool key ctrl+shift+t
sleep 2
shot "$win" dark.png
