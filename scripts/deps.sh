# Sourced by scripts/run.sh and scripts/test.sh: installs the Debian packages usagebill builds and
# runs with, when they are missing. Pass the extra packages a caller needs as arguments.
install_debian_packages() {
    local need_apt=()
    command -v cc >/dev/null || need_apt+=(build-essential)
    command -v make >/dev/null || need_apt+=(make)
    command -v pkg-config >/dev/null || need_apt+=(pkg-config)
    dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
    dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
    # The window: X11 and Wayland clients, OpenGL (Mesa's software renderer where there is no GPU).
    for package in libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxrandr2 libxi6 "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || need_apt+=("$package")
    done
    if [ ${#need_apt[@]} -gt 0 ]; then
        echo "installing Debian packages: ${need_apt[*]}"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
}
