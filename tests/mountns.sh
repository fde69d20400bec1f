# tests/mountns.sh - sourced first by scenarios that mount filesystems:
# re-run the script in a private mount namespace, so what it mounts is seen
# by no other process and goes away with the script, whatever happens to
# it.  As root: unshare --mount; otherwise a user namespace mapping us to
# root (unshare --user --map-root-user --mount) where the kernel allows it.
# Inside, THLHP_MOUNTNS=1; where neither works it stays unset and the
# script must not mount anything.
# shellcheck shell=bash
if [ -z "${THLHP_MOUNTNS:-}" ] && command -v unshare >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		mountns_how="--mount"
	else
		mountns_how="--user --map-root-user --mount"
	fi
	# shellcheck disable=SC2086  # two or three options, split on purpose
	if unshare $mountns_how --propagation private true 2>/dev/null; then
		exec unshare $mountns_how --propagation private env THLHP_MOUNTNS=1 bash "$0" "$@"
	fi
	unset mountns_how
fi
