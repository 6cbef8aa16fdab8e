"""What the e2e tests read about the relay process from /proc (proc(5)): resident memory, CPU time,
open file descriptors."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    """VmRSS of the process, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def cpu_seconds(pid):
    """utime + stime of the process (all threads), in seconds: fields 14 and 15 of /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))
