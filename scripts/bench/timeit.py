#!/usr/bin/env python3
"""Median wall time of shell commands, runs interleaved (A B A B ...) so drift hits both alike.

usage: timeit.py RUNS 'PREPARE' 'COMMAND' ['PREPARE' 'COMMAND' ...]
Prints one median, in seconds, per command. PREPARE runs before each run, untimed ('' for none).
"""
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    pairs = list(zip(sys.argv[2::2], sys.argv[3::2]))
    times = [[] for _ in pairs]
    for _ in range(runs):
        for index, (prepare, command) in enumerate(pairs):
            if prepare:
                subprocess.run(prepare, shell=True, check=True, executable="/bin/bash")
            start = time.perf_counter()
            subprocess.run(command, shell=True, check=True, executable="/bin/bash")
            times[index].append(time.perf_counter() - start)
    print(" ".join("%.4f" % statistics.median(t) for t in times))


if __name__ == "__main__":
    main()
