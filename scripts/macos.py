#!/usr/bin/env python3
"""macOS builds without Apple's SDK (scripts/dist.sh).

lab7 calls no Apple framework itself. testcontainers compiles bollard's TLS in (for an engine
reached over TLS; a local one is a socket), and that code references Security and CoreFoundation.
zig links a Mach-O binary without the SDK once those frameworks exist as text stubs (.tbd): each stub holds
only the framework's install name and the symbols the link asked for (scripts/macos-frameworks.txt,
taken from the linker's own "undefined symbol" errors), nothing of Apple's. At run time macOS
loads its own frameworks from those install names.

  macos.py stubs LIST DIR          write DIR/<Framework>.framework/<Framework>.tbd from LIST
  macos.py add LIST LINK_LOG       add the symbols a failed link names to LIST (exit 1 if none)
  macos.py check BINARY ARCH       the binary is what a Mac runs (see check())
"""
import pathlib
import re
import struct
import sys

FRAMEWORKS = {"Security": re.compile(r"^_Sec"), "CoreFoundation": re.compile(r"^_k?CF")}


def read_list(path):
    pairs = []
    for line in pathlib.Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            fw, sym = line.split()
            pairs.append((fw, sym))
    return pairs


def stubs(list_path, out):
    by_fw = {fw: [] for fw in FRAMEWORKS}
    for fw, sym in read_list(list_path):
        by_fw[fw].append(sym)
    for fw, syms in by_fw.items():
        d = pathlib.Path(out) / f"{fw}.framework"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{fw}.tbd").write_text(
            "--- !tapi-tbd\ntbd-version:     4\ntargets:         [ x86_64-macos, arm64-macos ]\n"
            f"install-name:    '/System/Library/Frameworks/{fw}.framework/Versions/A/{fw}'\n"
            "exports:\n  - targets:         [ x86_64-macos, arm64-macos ]\n"
            f"    symbols:         [ {', '.join(sorted(syms))} ]\n...\n")


def add(list_path, log):
    wanted = sorted(set(re.findall(r"undefined symbol: (_\w+)", pathlib.Path(log).read_text())))
    known = {s for _, s in read_list(list_path)}
    new = []
    for sym in wanted:
        fw = next((f for f, r in FRAMEWORKS.items() if r.match(sym)), None)
        if fw is None:
            sys.exit(f"macos.py: {sym} is in no framework lab7 stubs (Security, CoreFoundation): "
                     "a new dependency calls Apple's API; add its framework to FRAMEWORKS")
        if sym not in known:
            new.append(f"{fw} {sym}")
    if not new:
        sys.exit(1)
    with open(list_path, "a") as f:
        f.write("".join(n + "\n" for n in new))
    print(f"macos.py: {len(new)} symbols added to {list_path}")


LC_LOAD_DYLIB, LC_CODE_SIGNATURE, LC_BUILD_VERSION = 0xC, 0x1D, 0x32
CPU = {"arm64": 0x0100000C, "x86_64": 0x01000007}


def check(binary, arch):
    """A 64-bit Mach-O executable for ARCH, for macOS 11 or later, that loads nothing but the
    system's own libraries and frameworks, and (arm64) carries the code signature Apple silicon
    requires before it runs anything."""
    b = pathlib.Path(binary).read_bytes()
    magic, cpu, _, filetype, ncmds = struct.unpack_from("<IiiII", b, 0)
    problems = []
    if magic != 0xFEEDFACF or filetype != 2:
        problems.append("not a 64-bit Mach-O executable")
    if cpu != CPU[arch]:
        problems.append(f"CPU type {cpu:#x}, not {arch}")
    off, dylibs, signed, minos = 32, [], False, None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", b, off)
        if cmd == LC_LOAD_DYLIB:
            name_at = struct.unpack_from("<I", b, off + 8)[0]
            dylibs.append(b[off + name_at:off + size].split(b"\0")[0].decode())
        elif cmd == LC_CODE_SIGNATURE:
            signed = True
        elif cmd == LC_BUILD_VERSION:
            v = struct.unpack_from("<I", b, off + 12)[0]
            minos = (v >> 16, (v >> 8) & 0xFF)
        off += size
    foreign = [d for d in dylibs if not d.startswith(("/System/Library/Frameworks/", "/usr/lib/"))]
    if foreign:
        problems.append(f"loads libraries a Mac does not have: {foreign}")
    if arch == "arm64" and not signed:
        problems.append("no code signature: Apple silicon refuses to run it")
    if minos != (11, 0):
        problems.append(f"needs macOS {minos}, not 11.0")
    if problems:
        sys.exit(f"macos.py: {binary}: " + "; ".join(problems))
    print(f"{binary}: Mach-O {arch}, macOS 11.0+, {'signed (ad hoc), ' if signed else ''}loads {', '.join(dylibs)}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"stubs": stubs, "add": add, "check": check}[cmd](*args)
