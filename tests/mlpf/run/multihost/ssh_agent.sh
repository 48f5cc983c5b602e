#!/bin/sh
# A stand-in for `ssh`, the remote-start agent of tests/run/test_multihost.py, which installs it as `ssh` first on
# the launcher's PATH. It takes ssh's command line (`ssh [options] HOST [options] COMMAND...`), looks HOST up in
# HEPBENCH_TEST_HOSTS ("HOST=NETNS ..."), and runs COMMAND on that "host": in network namespace NETNS and in a UTS
# namespace of its own named HOST. As sshd would, it runs COMMAND through a shell, in HOME, with a fresh
# environment: whatever the command needs must come in its command line, as with a real ssh.
host= netns=
while [ $# -gt 0 ]; do
    case $1 in
        -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;  # ssh's options that take an argument
        -*) shift ;;
        *) [ -n "$host" ] && break; host=$1; shift ;;
    esac
done
for entry in $HEPBENCH_TEST_HOSTS; do
    [ "${entry%%=*}" = "$host" ] && netns=${entry#*=}
done
[ -n "$netns" ] || { echo "ssh: Could not resolve hostname $host (not in HEPBENCH_TEST_HOSTS)" >&2; exit 255; }
# ssh joins the words of COMMAND with spaces and hands the result to the remote shell.
exec env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="${HOME:-/root}" \
    ip netns exec "$netns" unshare --uts /bin/sh -c 'hostname "$1" && cd "$HOME" && exec /bin/sh -c "$2"' \
    ssh_agent "$host" "$*"
