#!/usr/bin/env python3
"""Writes a hostile or unusual tar stream to stdout, for the archive tests.

usage: craft_tar.py KIND [N]

The archives come from Python's tarfile module, an implementation independent of ours.
"""
import io
import sys
import tarfile


def add_file(tar, name, data=b"payload\n", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def add_special(tar, name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    tar.addfile(info)


def main():
    kind = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    out = io.BytesIO()
    fmt = tarfile.GNU_FORMAT if kind == "gnu-longname" else tarfile.PAX_FORMAT
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        add_file(tar, "manifest.json", b'{"name":"x"}\n')
        if kind == "dotdot":
            add_file(tar, "ui/../../evil.txt")
        elif kind == "absolute":
            add_file(tar, "/tmp/extbundles-absolute-evil.txt")
        elif kind == "symlink":
            add_special(tar, "ui/link", tarfile.SYMTYPE, "/etc/passwd")
        elif kind == "hardlink":
            add_special(tar, "ui/hard", tarfile.LNKTYPE, "manifest.json")
        elif kind == "chardev":
            add_special(tar, "ui/null", tarfile.CHRTYPE)
        elif kind == "blockdev":
            add_special(tar, "ui/disk", tarfile.BLKTYPE)
        elif kind == "fifo":
            add_special(tar, "ui/pipe", tarfile.FIFOTYPE)
        elif kind == "duplicate":
            add_file(tar, "ui/index.html", b"first\n")
            add_file(tar, "ui/index.html", b"second\n")
        elif kind == "file-dir-conflict":
            add_file(tar, "ui", b"a file\n")
            add_file(tar, "ui/index.html")
        elif kind == "many":
            for index in range(count):
                add_file(tar, "f/%06d" % index, b"")
        elif kind == "longpath":
            add_file(tar, "ui/" + "a" * count)
        elif kind == "gnu-longname":
            add_file(tar, "ui/" + "n" * 150 + "/" + "m" * 120 + ".txt", b"long name\n")
        elif kind == "bad-utf8":
            info = tarfile.TarInfo("ui/x")
            info.size = 0
            tar.addfile(info)
        elif kind == "valid":
            add_file(tar, "ui/index.html", b"<html></html>\n")
        else:
            sys.exit("unknown kind " + kind)
    data = bytearray(out.getvalue())
    if kind == "bad-utf8":
        # Patch the name in the last header to invalid UTF-8 and fix its checksum.
        start = data.rfind(b"ui/x\x00")
        data[start + 3] = 0xFF
        fix_checksum(data, start)
    sys.stdout.buffer.write(bytes(data))


def fix_checksum(data, header):
    data[header + 148:header + 156] = b" " * 8
    checksum = sum(data[header:header + 512])
    data[header + 148:header + 156] = b"%06o\x00 " % checksum


if __name__ == "__main__":
    main()
