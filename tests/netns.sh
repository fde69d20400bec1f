# tests/netns.sh - sourced first by scenarios that start servers: as root,
# re-run the script in a private network namespace with only loopback up,
# so nothing outside can reach the test servers (Orthanc binds its DICOM
# port on every interface).
# shellcheck shell=bash
if [ "$(id -u)" = 0 ] && [ -z "${THLHP_NETNS:-}" ] && command -v unshare >/dev/null; then
	exec unshare --net env THLHP_NETNS=1 bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi
