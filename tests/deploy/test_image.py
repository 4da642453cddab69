#!/usr/bin/env python3
"""tests/deploy/test_image.py - `make image` (tools/image.sh) builds Plinth's
container image without a Docker engine, and the image holds everything the
binary needs.

It builds the image as `make image` does (a release build in build-image/,
deploy/docker/rootfs.sh, crane from tools/deploy-tools.sh), then reads the OCI
layout as a runtime would: index.json -> manifest -> config (every blob's
sha256 checked), asserts the config (non-root numeric user, entrypoint, cmd,
exposed ports, OCI labels, no healthcheck), unpacks the layers into an empty
directory and runs the binary there under chroot as the image's user
(`unshare -r` gives a non-root test a user namespace to chroot in): `plinth
version`, then `plinth serve` with the image's environment, answering
/healthz and /readyz on loopback. Finally it removes one library from the
unpacked root and shows the binary no longer starts: the chroot really
isolates it from the host's libraries.
"""
import gzip
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "k8s"))
from kubetest import ok, bail, run, free_port, wait, _cleanups  # noqa: E402

USER = "10001:10001"


def blob(layout, digest):
    algo, hexd = digest.split(":", 1)
    with open(os.path.join(layout, "blobs", algo, hexd), "rb") as f:
        data = f.read()
    ok(hashlib.sha256(data).hexdigest() == hexd, f"blob {digest[:19]}... matches its digest")
    return data


def unpack(layer_bytes, dest):
    """Extracts one layer (gzip or plain tar); refuses paths leaving dest."""
    if layer_bytes[:2] == b"\x1f\x8b":
        layer_bytes = gzip.decompress(layer_bytes)
    path = os.path.join(dest, ".layer.tar")
    with open(path, "wb") as f:
        f.write(layer_bytes)
    owners = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            owners[m.name.lstrip("./")] = (m.uid, m.gid, m.mode)
            if m.name.startswith("/") or ".." in m.name.split("/"):
                bail(f"layer entry leaves the root: {m.name}")
        # Modes as the image has them (sticky /tmp): entries were checked above.
        t.extractall(dest, **({"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}))
    os.unlink(path)
    return owners


def dockerfile_config(path):
    """The instructions of a Dockerfile: FROM as a list, LABEL as the set of
    its keys, RUN concatenated, the others by their last value."""
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    out = {"FROM": [], "LABEL": set(), "RUN": ""}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ins, _, rest = line.partition(" ")
        ins = ins.upper()
        if ins == "FROM":
            out["FROM"].append(rest.strip())
        elif ins == "LABEL":
            out["LABEL"] |= {kv.split("=", 1)[0] for kv in shlex.split(rest)}
        elif ins == "RUN":
            out["RUN"] += rest + "\n"
        else:
            out[ins] = rest.strip()
    return out


def jail(rootfs, argv, **kw):
    """argv run under chroot in rootfs as the image's user: directly as root,
    else in a user namespace (unshare -r) where the caller is root."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    base = [chroot, f"--userspec={USER}", rootfs] if os.geteuid() == 0 else \
        [shutil.which("unshare") or "/usr/bin/unshare", "-r", chroot, rootfs]
    return base + argv


def main():
    tmp = tempfile.mkdtemp(prefix="plinth-image.")
    _cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    out = os.path.join(tmp, "image")
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "tools", "image.sh"), "--out", out],
                       capture_output=True, text=True, timeout=3000)
    if not ok(r.returncode == 0, f"tools/image.sh (make image) built the image "
              f"({time.monotonic() - t0:.0f} s)", r.stderr[-3000:]):
        bail("no image")
    print("# " + "\n# ".join(l for l in r.stderr.splitlines() if l.startswith("image.sh:")))

    layout = os.path.join(out, "oci")
    with open(os.path.join(layout, "oci-layout")) as f:
        ok(json.load(f).get("imageLayoutVersion") == "1.0.0", "an OCI image layout (oci-layout 1.0.0)")
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    mans = index.get("manifests", [])
    if not ok(len(mans) == 1, "index.json names one image", index):
        bail("no manifest")
    man = json.loads(blob(layout, mans[0]["digest"]))
    ok(man.get("mediaType") == "application/vnd.oci.image.manifest.v1+json"
       and man["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json",
       "OCI manifest and config media types", man)
    with open(os.path.join(out, "digest")) as f:
        ok(f.read().strip() == mans[0]["digest"], "the digest tools/image.sh printed is the manifest's")
    cfg = json.loads(blob(layout, man["config"]["digest"]))
    c = cfg.get("config", {})
    ok(cfg.get("os") == "linux" and cfg.get("architecture") in ("amd64", "arm64"),
       f"platform {cfg.get('os')}/{cfg.get('architecture')}", cfg)
    ok(c.get("User") == USER, f"config User {USER} (numeric, non-root)", c.get("User"))
    ok(c.get("Entrypoint") == ["/usr/bin/plinth"] and c.get("Cmd") == ["serve"],
       "ENTRYPOINT /usr/bin/plinth, CMD serve", (c.get("Entrypoint"), c.get("Cmd")))
    ok(set(c.get("ExposedPorts", {})) == {"8080/tcp", "8443/tcp", "9090/tcp"},
       "EXPOSE 8080 (API), 8443 (webhook TLS), 9090 (controller metrics)", c.get("ExposedPorts"))
    labels = c.get("Labels") or {}
    want = {"org.opencontainers.image.title": "plinth", "org.opencontainers.image.licenses": "Apache-2.0",
            "org.opencontainers.image.version": subprocess.run(
                [os.path.join(ROOT, "build-image", "plinth"), "version"], capture_output=True,
                text=True).stdout.split()[-1]}
    ok(all(labels.get(k) == v for k, v in want.items())
       and labels.get("org.opencontainers.image.description"), "OCI labels title, version, licenses, description",
       labels)
    ok("Healthcheck" not in c, "no HEALTHCHECK (the orchestrator probes /healthz, /readyz)", c)
    env = dict(e.split("=", 1) for e in c.get("Env", []))
    ok(env.get("PLINTH_DATA") == "/var/lib/plinth" and c.get("WorkingDir") == "/var/lib/plinth",
       "PLINTH_DATA and WORKDIR /var/lib/plinth", (env, c.get("WorkingDir")))

    # The Dockerfile (not buildable here: no engine) describes the same config.
    df = dockerfile_config(os.path.join(ROOT, "deploy", "docker", "Dockerfile"))
    same = {"User": (df.get("USER"), c.get("User")),
            "Entrypoint": (json.loads(df.get("ENTRYPOINT", "null")), c.get("Entrypoint")),
            "Cmd": (json.loads(df.get("CMD", "null")), c.get("Cmd")),
            "WorkingDir": (df.get("WORKDIR"), c.get("WorkingDir")),
            "ExposedPorts": (set(df.get("EXPOSE", "").split()), set(c.get("ExposedPorts", {}))),
            "Env": (set(df.get("ENV", "").split()), set(c.get("Env", [])) - {"PATH=" + env.get("PATH", "")}),
            "Labels": (set(df.get("LABEL", {})), set(labels) - {"org.opencontainers.image.revision"})}
    ok(all(a == b for a, b in same.values()) and "HEALTHCHECK" not in df,
       "deploy/docker/Dockerfile's USER, ENTRYPOINT, CMD, WORKDIR, EXPOSE, ENV and LABELs match the image",
       {k: v for k, v in same.items() if v[0] != v[1]})
    ok("deploy/docker/rootfs.sh /rootfs" in df.get("RUN", "") and df.get("FROM") == ["debian:bookworm AS build", "scratch"],
       "the Dockerfile builds on bookworm and assembles its root with the same deploy/docker/rootfs.sh", df.get("FROM"))

    rootfs = os.path.join(tmp, "unpacked")
    os.mkdir(rootfs)
    owners = {}
    size = 0
    for layer in man["layers"]:
        data = blob(layout, layer["digest"])
        size += len(data)
        owners.update(unpack(data, rootfs))
    total = size + sum(len(json.dumps(x)) for x in (man, cfg))
    ok(0 < size < 40 * 1024 * 1024, f"image size {total / 1e6:.1f} MB compressed "
       f"({sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(rootfs) for f in fs) / 1e6:.1f} MB unpacked)",
       size)
    ok(owners.get("var/lib/plinth", (0, 0, 0))[:2] == (10001, 10001)
       and owners.get("usr/bin/plinth", (1, 1, 0))[:2] == (0, 0)
       and not owners["usr/bin/plinth"][2] & 0o022,
       "/var/lib/plinth belongs to 10001; /usr/bin/plinth to root, not writable by others",
       {k: owners.get(k) for k in ("var/lib/plinth", "usr/bin/plinth")})
    ok(not any(os.path.lexists(os.path.join(rootfs, p)) for p in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt")),
       "minimal: no shell, no package manager", sorted(os.listdir(rootfs)))
    if os.geteuid() != 0:
        # A user namespace's root maps to the caller: the files must be its.
        subprocess.run(["chmod", "-R", "u+rwX", rootfs], check=True)

    r = subprocess.run(jail(rootfs, ["/usr/bin/plinth", "version"]), capture_output=True, text=True,
                       timeout=60, env={"PATH": "/usr/bin"})
    ok(r.returncode == 0 and r.stdout.startswith("plinth "),
       f"chroot into the unpacked image: `plinth version` -> {r.stdout.strip()!r}", (r.returncode, r.stderr))

    port = free_port()
    penv = dict(env, PLINTH_LISTEN=f"127.0.0.1:{port}", HOME="/var/lib/plinth",
                PLINTH_ADMIN_TOKEN="plt_admin_image_test_0123456789abcdef")
    log = open(os.path.join(tmp, "serve.log"), "w+")
    proc = subprocess.Popen(jail(rootfs, ["/usr/bin/plinth", "serve", "--ready-file", "/tmp/ready"]),
                            stdout=log, stderr=subprocess.STDOUT, env=penv, cwd=rootfs,
                            start_new_session=True)

    def stop():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    _cleanups.append(stop)
    ready = os.path.join(rootfs, "tmp", "ready")
    r = wait(lambda: (os.path.exists(ready) or proc.poll() is not None, None), 60)
    log.seek(0)
    if not ok(os.path.exists(ready), "`plinth serve` in the image is listening (--ready-file)", log.read()[-2000:]):
        bail("the daemon did not start")
    base = f"http://127.0.0.1:{port}"
    for path in ("/healthz", "/readyz"):
        try:
            with urllib.request.urlopen(base + path, timeout=10) as resp:
                st, body = resp.status, resp.read().decode()
        except Exception as e:  # refused or an HTTP error: a failed check
            st, body = None, repr(e)
        ok(st == 200, f"GET {path} -> 200 from the daemon in the image", (st, body))
    ok(os.stat(os.path.join(rootfs, "tmp")).st_mode & 0o7777 == 0o1777,
       "/tmp in the image is 1777 (the daemon wrote its --ready-file there as 10001)")
    ok(os.path.exists(os.path.join(rootfs, "var", "lib", "plinth", "plinth.db")),
       "the ledger is in the image's /var/lib/plinth (writable by its user)")
    stop()
    ok(proc.returncode == 0, "the daemon stops on SIGTERM with status 0", proc.returncode)

    # The check can fail: without one of its libraries the binary does not start.
    libs = [os.path.join(d, f) for d, _, fs in os.walk(rootfs) for f in fs if f.startswith("libjansson")]
    ok(len(libs) == 1, "libjansson is in the image (ldd's list)", libs)
    for p in libs:
        os.unlink(p)
    r = subprocess.run(jail(rootfs, ["/usr/bin/plinth", "version"]), capture_output=True, text=True,
                       timeout=60, env={"PATH": "/usr/bin"})
    ok(r.returncode != 0 and "libjansson" in r.stderr,
       "with libjansson removed from the image the binary does not start (the chroot hides the host's)",
       (r.returncode, r.stderr))


run(main)
