#!/usr/bin/env python3
"""Check that every dynamic program in the guest initramfs loads in the guest.

The archive is unpacked into a scratch folder, and each dynamic ELF file's
interpreter and NEEDED libraries are resolved the way the guest's loader
will resolve them: DT_RPATH/DT_RUNPATH with $ORIGIN at the object's guest
path, then the loader's default folders (the initramfs has no ld.so.cache).
Files under a folder that the guest's /init mounts over (tmpfs on /tmp, and
so on) do not count: the guest cannot see them. Every shared library in
the archive must also come from Debian's library folders or the project's
guest library folder, and the latter must hold exactly what the build made.

Exit status: 0 all resolve, 1 something does not (each problem printed),
2 usage, 77 nothing to check (no archive yet, or --without names nothing).
"""
import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile

# glibc's built-in search path on Debian x86_64, used when there is no
# ld.so.cache (there is none in the initramfs).
DEFAULT_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
# Where libraries may come from: Debian's library folders, and the project's.
DEBIAN_LIB_RE = re.compile(r"^/(usr/)?lib(32|64|x32)?/")
PROJECT_LIB_DIR = "/tests/lib"
SKIP = 77


def mounts_of(init_script):
    """Folders that the guest's /init mounts a file system on."""
    points = []
    with open(init_script, encoding="utf-8") as f:
        for line in f:
            m = re.search(r"\bmount\s+-t\s+\S+\s+\S+\s+(/\S*)", line)
            if m:
                points.append(m.group(1).rstrip("/") or "/")
    return points


def hidden(path, mount_points):
    return any(path.startswith(p + "/") for p in mount_points)


def read_dynamic(host_path):
    """(interpreter, needed, rpath, runpath) of an ELF file, or None if it is
    not a dynamically linked ELF file."""
    with open(host_path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
    out = subprocess.run(["readelf", "-W", "-l", "-d", host_path], capture_output=True,
                         text=True, check=False).stdout
    if "(NEEDED)" not in out and "program interpreter" not in out:
        return None
    interp = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", out)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    rpath = re.findall(r"\(RPATH\)\s+Library rpath: \[([^\]]*)\]", out)
    runpath = re.findall(r"\(RUNPATH\)\s+Library runpath: \[([^\]]*)\]", out)
    split = lambda v: [d for d in ":".join(v).split(":") if d]
    return (interp.group(1) if interp else None, needed, split(rpath), split(runpath))


class Guest:
    """The unpacked archive, seen with the guest's paths and mounts."""

    def __init__(self, root, mount_points):
        self.root = root
        self.mount_points = mount_points

    def host(self, guest_path):
        return os.path.join(self.root, guest_path.lstrip("/"))

    def visible(self, guest_path):
        """The guest path of the file, after symlinks inside the archive, if
        the guest can open it; else None."""
        path = guest_path
        for _ in range(40):
            if hidden(path, self.mount_points):
                return None
            host = self.host(path)
            if os.path.islink(host):
                target = os.readlink(host)
                path = os.path.normpath(os.path.join(os.path.dirname(path), target))
                continue
            return path if os.path.isfile(host) else None
        return None

    def resolve(self, obj, name, rpath, runpath):
        if "/" in name:
            return self.visible(name)
        origin = os.path.dirname(obj)
        dirs = rpath if not runpath else []
        dirs = dirs + runpath + list(DEFAULT_DIRS)
        for d in dirs:
            d = d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            found = self.visible(os.path.normpath(os.path.join(d, name)))
            if found:
                return found
        return None


def check_program(guest, program, problems):
    """Resolve the program's libraries, recursively; returns how many."""
    info = read_dynamic(guest.host(program))
    interp, _, exe_rpath, _ = info
    if interp and not guest.visible(interp):
        problems.append(f"{program}: interpreter {interp}: not found in the guest")
    seen = {}
    # The loader is loaded already: a NEEDED entry of its name is it.
    if interp and guest.visible(interp):
        seen[os.path.basename(interp)] = interp
    todo = [(program, info)]
    while todo:
        obj, (_, needed, rpath, runpath) = todo.pop()
        # DT_RPATH of the program applies to the whole chain unless an
        # object has a DT_RUNPATH of its own.
        chain_rpath = rpath + (exe_rpath if obj != program else [])
        for name in needed:
            if name in seen:
                continue
            path = guest.resolve(obj, name, chain_rpath, runpath)
            if not path:
                problems.append(f"{program}: {name} (needed by {obj}): not found in the guest")
                seen[name] = None
                continue
            seen[name] = path
            sub = read_dynamic(guest.host(path))
            if sub:
                todo.append((path, sub))
    return len([p for p in seen.values() if p]) - (1 if interp else 0)


def check_origins(guest, build_lib_dir, problems):
    """Shared libraries only from Debian's folders or the project's folder,
    and the project's folder as the build left it."""
    libs = 0
    for dirpath, _, files in os.walk(guest.root):
        for f in files:
            host = os.path.join(dirpath, f)
            path = "/" + os.path.relpath(host, guest.root)
            if ".so" not in f or os.path.islink(host):
                continue
            libs += 1
            if os.path.dirname(path) == PROJECT_LIB_DIR:
                built = os.path.join(build_lib_dir, f) if build_lib_dir else None
                if built and not (os.path.isfile(built) and filecmp.cmp(built, host, False)):
                    problems.append(f"{path}: not the library the build made ({built})")
            elif not DEBIAN_LIB_RE.match(path):
                problems.append(f"{path}: a library from outside Debian's library folders "
                                f"and {PROJECT_LIB_DIR}")
    return libs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("archive", help="the initramfs (newc cpio)")
    ap.add_argument("--init", required=True, help="the guest's /init script (its mounts)")
    ap.add_argument("--build-lib-dir", help="the build's guest library folder")
    ap.add_argument("--without", metavar="PATH",
                    help="check the archive as if PATH (a guest path) were left out")
    args = ap.parse_args()
    if not os.path.isfile(args.archive):
        print(f"initramfs check skipped: no {args.archive} yet (scripts/initramfs makes it)")
        return SKIP
    root = tempfile.mkdtemp(prefix="initramfs-check.")
    try:
        with open(args.archive, "rb") as f:
            subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
                           stdin=f, cwd=root, check=True)
        if args.without:
            target = os.path.join(root, args.without.lstrip("/"))
            if not os.path.lexists(target):
                print(f"initramfs check skipped: {args.without} is not in the archive")
                return SKIP
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
        guest = Guest(root, mounts_of(args.init))
        problems = []
        programs = 0
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                host = os.path.join(dirpath, f)
                path = "/" + os.path.relpath(host, root)
                if os.path.islink(host) or not os.access(host, os.X_OK) or ".so" in f:
                    continue
                if read_dynamic(host) is None:
                    continue
                programs += 1
                n = check_program(guest, path, problems)
                print(f"{path}: {n} libraries")
        libs = check_origins(guest, args.build_lib_dir, problems)
        print(f"{programs} dynamic programs, {libs} shared libraries, "
              f"hidden by the guest's mounts: {' '.join(guest.mount_points)}")
        for p in problems:
            print(f"error: {p}")
        return 1 if problems else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
