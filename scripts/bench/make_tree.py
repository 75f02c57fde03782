#!/usr/bin/env python3
"""Writes a deterministic ~200 MiB extension-like tree: 80 MiB of incompressible blobs, ~116 MiB
of text-like sources and 1,000 small files.

usage: make_tree.py DIR
"""
import os
import random
import sys


def main():
    root = sys.argv[1]
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
    for index in range(40):
        folder = f"{root}/ui/media/{index % 5}"
        os.makedirs(folder, exist_ok=True)
        with open(f"{folder}/blob{index}.bin", "wb") as out:
            out.write(rng.randbytes(2 << 20))
    for index in range(190):
        folder = f"{root}/ui/src/{index % 10}"
        os.makedirs(folder, exist_ok=True)
        lines, size = [], 0
        while size < 625_000:
            line = " ".join(rng.choices(words, k=12)) + ";\n"
            lines.append(line)
            size += len(line)
        with open(f"{folder}/file{index}.js", "w") as out:
            out.write("".join(lines))
    for index in range(1000):
        folder = f"{root}/ui/small/{index % 20}"
        os.makedirs(folder, exist_ok=True)
        with open(f"{folder}/s{index}.txt", "w") as out:
            out.write(" ".join(rng.choices(words, k=rng.randint(50, 800))))
    with open(f"{root}/manifest.json", "w") as out:
        out.write('{"name":"com.example.bench","publisher":"Example","version":"1.0.0","runtime":"wasm-js@1"}\n')


if __name__ == "__main__":
    main()
