#!/usr/bin/env python3
"""Wall times of shell commands, runs alternating (A B, B A, A B, ...) so drift and the order
within a round hit every command alike.

usage: timeit.py RUNS 'PREPARE' 'COMMAND' ['PREPARE' 'COMMAND' ...]
Prints, per command, three numbers in seconds: the median, the lowest and the highest run.
PREPARE runs before each run of its command, untimed ('' for none). One untimed warm-up round
runs first.
"""
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    pairs = list(zip(sys.argv[2::2], sys.argv[3::2]))
    times = [[] for _ in pairs]
    for round_ in range(runs + 1):
        order = list(range(len(pairs)))
        if round_ % 2:
            order.reverse()
        for index in order:
            prepare, command = pairs[index]
            if prepare:
                subprocess.run(prepare, shell=True, check=True, executable="/bin/bash")
            start = time.perf_counter()
            subprocess.run(command, shell=True, check=True, executable="/bin/bash")
            if round_ > 0:
                times[index].append(time.perf_counter() - start)
    print(" ".join("%.4f %.4f %.4f" % (statistics.median(t), min(t), max(t)) for t in times))


if __name__ == "__main__":
    main()
