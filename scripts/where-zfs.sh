# Sourced by scripts/test and scripts/quickstart: run a command where real ZFS
# is. That is this host when ZFS is loaded and we are root, otherwise the VM
# rig (platformtest/vm). ZRELAY_PLATFORM=host|vm forces the choice.

zfs_where() {
    local where=${ZRELAY_PLATFORM:-}
    if [[ -z $where ]]; then
        if [[ $(id -u) == 0 && -e /dev/zfs ]] && zfs version >/dev/null 2>&1; then where=host; else where=vm; fi
    fi
    echo "$where"
}

# run_with_zfs TIMEOUT_SECONDS COMMAND [ARG...]
run_with_zfs() {
    local timeout=$1
    shift
    case $(zfs_where) in
    host) "$@" ;;
    vm) platformtest/vm/run -t "$timeout" -- "$@" ;;
    *) echo "ZRELAY_PLATFORM must be host or vm" >&2; return 2 ;;
    esac
}

# build_images LINE...: build (or find) the guest image of each OpenZFS line,
# one after another (builds are heavy), stopping at the first that fails.
# .ci/run and scripts/test run it in the background; build-image's lock makes
# a second build of the same image wait and then find it done.
build_images() {
    local line
    for line in "$@"; do
        ZRELAY_VM_ZFS=$line platformtest/vm/build-image >/dev/null || return
    done
}
