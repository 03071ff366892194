"""Producer benchmark: rate accuracy, unlimited throughput, and a Python baseline.

    python bench/produce_bench.py [--broker host:port] [--seconds 10]

Without --broker it starts a tansu broker with scripts/tansu.sh. It prints:

1. rate accuracy: the `iot` profile at 1k, 10k and 100k events/s for
   --seconds each (target: within ±2 %);
2. unlimited rate per profile, generation only (to Arrow) and produced to
   the broker;
3. a Python baseline in the same run on the same broker: Faker + json.dumps +
   confluent-kafka producing the same IoT schema, and kafkalake's ratio to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _broker  # bench/_broker.py (the script's own folder is on sys.path)
import pyarrow as pa

import kafkalake


def python_baseline(broker: str, topic: str, n: int, *, faker: bool) -> float:
    """The usual Python load generator for seed 001's IoT schema: Faker (or the
    stdlib's random) + json.dumps + confluent-kafka."""
    import random
    from datetime import UTC, datetime

    from confluent_kafka import Producer
    from faker import Faker

    fake = Faker()
    Faker.seed(0)
    rnd = random.Random(0)
    producer = Producer(
        {
            "bootstrap.servers": broker,
            "enable.idempotence": True,
            "linger.ms": 5,
            "partitioner": "murmur2_random",
        }
    )
    # Created before the clock starts, as kafkalake does (tansu creates none on its own).
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result()
    producer.produce(topic, b"warm-up")  # idempotent producer set-up, outside the timing
    producer.flush(30)
    seq: dict[str, int] = {}
    t0 = time.perf_counter()
    for _ in range(n):
        device = f"contoso-device-id-{rnd.randrange(1000):06d}"
        seq[device] = seq.get(device, -1) + 1
        if faker:
            more = {f"moreData{i}": fake.pyfloat(min_value=0, max_value=100) for i in range(23)}
            event_id, value = fake.uuid4(), fake.pyfloat(min_value=0, max_value=100)
        else:
            more = {f"moreData{i}": rnd.uniform(0, 100) for i in range(23)}
            event_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            value = rnd.uniform(0, 100)
        event = {
            "eventId": event_id,
            "complexData": more,
            "value": value,
            "deviceId": device,
            "deviceSequenceNumber": seq[device],
            "type": rnd.choice(["CO2", "TEMP", "HUMIDITY", "PRESSURE"]),
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        while True:
            try:
                producer.produce(topic, json.dumps(event).encode(), key=device.encode())
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(60) == 0
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--broker", help="host:port (default: start tansu)")
    ap.add_argument("--seconds", type=float, default=10.0, help="per target rate (default 10)")
    ap.add_argument("--rates", default="1000,10000,100000")
    ap.add_argument("--count", type=int, default=500_000, help="events per unlimited run")
    ap.add_argument("--baseline-count", type=int, default=50_000)
    args = ap.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="kafkalake-bench-"))
    fresh = lambda: f"bench-{uuid.uuid4().hex[:8]}"  # noqa: E731
    with _broker.broker(args.broker, run_dir) as broker:
        print(f"kafkalake {kafkalake.__version__}, broker {broker}\n")
        print("1. Rate accuracy (iot profile)")
        print(f"{'target/s':>10} {'seconds':>8} {'sent':>10} {'achieved/s':>12} {'error':>8}")
        for rate in (float(r) for r in args.rates.split(",")):
            r = kafkalake.produce(
                "iot",
                fresh(),
                bootstrap_servers=broker,
                rate=rate,
                duration=args.seconds,
                progress=False,
            )
            err = (r.rate - rate) / rate * 100
            flag = "" if abs(err) <= 2 else "  <-- outside ±2 %"
            print(
                f"{rate:>10,.0f} {r.send_seconds:>8.2f} {r.sent:>10,} {r.rate:>12,.0f} "
                f"{err:>+7.2f}%{flag}"
            )

        print("\n2. Unlimited rate per profile")
        print(f"{'profile':<12} {'generate→Arrow/s':>17} {'produce/s':>12} {'MB/s':>8}")
        results = {}
        for profile in kafkalake.PROFILES:
            t0 = time.perf_counter()
            pa.table(kafkalake.generate(profile, args.count))
            gen_rate = args.count / (time.perf_counter() - t0)
            r = kafkalake.produce(
                profile, fresh(), bootstrap_servers=broker, count=args.count, progress=False
            )
            results[profile] = r.acknowledged / r.elapsed_seconds
            print(
                f"{profile:<12} {gen_rate:>17,.0f} {results[profile]:>12,.0f} "
                f"{r.bytes / 1e6 / r.elapsed_seconds:>8.1f}"
            )

        print("\n3. Python baselines producing the iot schema, same broker")
        print(f"{'generator':<50} {'events/s':>10} {'kafkalake is':>13}")
        for name, faker in (
            ("Faker + json.dumps + confluent-kafka", True),
            ("random (stdlib) + json.dumps + confluent-kafka", False),
        ):
            base = python_baseline(broker, fresh(), args.baseline_count, faker=faker)
            print(f"{name:<50} {base:>10,.0f} {results['iot'] / base:>12,.1f}x")
        print(f"{'kafkalake.produce(iot)':<50} {results['iot']:>10,.0f}")


if __name__ == "__main__":
    sys.exit(main())
