"""Make docs/images/monitor.png: the notebook monitor's chart from a real run
on the embedded cluster (a 5,000 msg/s producer and an ingest, both as
background jobs). Run from the repository: python scripts/monitor_picture.py
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import kafkalake

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "monitor.png"


def main() -> int:
    with kafkalake.EmbeddedKafka() as kafka, tempfile.TemporaryDirectory() as tmp:
        bs = kafka.bootstrap_servers
        producer = kafkalake.start_produce(
            "iot", "telemetry", bootstrap_servers=bs, count=100_000, rate=5_000
        )
        ingest = kafkalake.start_ingest(
            "telemetry", f"{tmp}/bronze", bootstrap_servers=bs, until="forever", max_latency=1
        )
        # 20 s of producing, then a few seconds of the ingest catching up.
        m = kafkalake.monitor(producer, ingest, every=1.0, duration=25, out=io.StringIO())
        png = m.png()
        producer.wait()
        report = ingest.stop()
    if png is None:
        print("matplotlib is needed: pip install matplotlib", file=sys.stderr)
        return 1
    OUT.write_bytes(png)
    print(f"{OUT} written ({len(png):,} bytes); ingest: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
