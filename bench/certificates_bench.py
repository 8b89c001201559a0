"""`dlcourse cluster-certs` made with cryptography against the openssl commands it replaced, in one run.

Each round makes a CA and one signed node certificate (RSA 3072) both ways, alternately, in fresh
folders; it prints the median, min and max seconds of each and the ratio of the medians. RSA key
generation draws random primes, so single runs vary by a factor of several: compare medians.

Run: `.venv/bin/python bench/certificates_bench.py [--rounds 8]` (the openssl side needs the openssl program).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlcourse.grading.certificates import make_certificates  # noqa: E402


def with_openssl(folder: Path) -> None:
    """The three openssl commands `dlcourse cluster-certs` ran before it used cryptography."""
    ca, ca_key, node, node_key, csr = (str(folder / n) for n in ("ca.pem", "ca-key.pem", "node.pem",
                                                                  "node-key.pem", "node.csr"))
    for command in (["openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", "365", "-subj",
                     "/CN=bench course CA", "-keyout", ca_key, "-out", ca],
                    ["openssl", "req", "-newkey", "rsa:3072", "-nodes", "-subj", "/CN=bench", "-keyout", node_key,
                     "-out", csr],
                    ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days",
                     "365", "-out", node]):
        subprocess.run(command, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    makers = {"cryptography": make_certificates}
    if shutil.which("openssl"):
        makers["openssl"] = with_openssl
    else:
        print("openssl is not installed: only cryptography is measured")
    seconds: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(args.rounds):
        for name, make in makers.items():
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                make(Path(folder))
                seconds[name].append(time.perf_counter() - started)
    for name, values in seconds.items():
        print(f"{name:13s} median {statistics.median(values):.2f} s  min {min(values):.2f}  max {max(values):.2f}"
              f"  ({len(values)} rounds)")
    if "openssl" in seconds:
        ratio = statistics.median(seconds["cryptography"]) / statistics.median(seconds["openssl"])
        print(f"cryptography / openssl (medians): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
