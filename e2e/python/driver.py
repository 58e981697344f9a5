"""Drives the official RocketMQ 5 Python SDK (PyPI rocketmq-python-client) against a proxy.

Usage: driver.py <scenario> <endpoint> <topic> <group> <count>
Prints one JSON object with what happened; exits non-zero on an unexpected error.

Scenarios:
  produce   send <count> messages (tag, keys, a user property); report message ids
  simple    SimpleConsumer: receive until <count> distinct keys, ack all but one, change the
            invisible duration of that one and receive it again, then ack it
  push      PushConsumer: consume until <count> distinct keys (first delivery of key k0
            answered FAILURE, so it must come again)
"""

import json
import sys
import threading
import time

from rocketmq import (ClientConfiguration, ConsumeResult, Credentials, FilterExpression,
                      Message, MessageListener, Producer, PushConsumer, SimpleConsumer)


def config(endpoint):
    return ClientConfiguration(endpoint, Credentials(), request_timeout=5)


def produce(endpoint, topic, count):
    producer = Producer(config(endpoint), (topic,))
    producer.startup()
    ids = []
    try:
        for i in range(count):
            m = Message()
            m.topic = topic
            m.body = ("body-k%d" % i).encode()
            m.tag = "TagA"
            m.keys = "k%d" % i
            m.add_property("origin", "python")
            ids.append(producer.send(m).message_id)
    finally:
        producer.shutdown()
    return {"sent": len(ids), "ids": ids}


def key_of(message):
    return next(iter(message.keys), "") if message.keys else ""


def simple(endpoint, topic, group, count):
    consumer = SimpleConsumer(config(endpoint), group, {topic: FilterExpression()}, await_duration=3)
    consumer.startup()
    got = {}
    kept = None
    try:
        # Ack as messages arrive (a receipt expires with its invisible duration); keep k0.
        deadline = time.time() + 60
        while len(got) < count and time.time() < deadline:
            for m in consumer.receive(32, 60):
                if m.corrupted:
                    raise RuntimeError("corrupted message %s" % m.message_id)
                k = key_of(m)
                if k == "k0" and kept is None:
                    kept = m
                elif k != "k0":
                    consumer.ack(m)
                got.setdefault(k, m)
        if kept is None:
            raise RuntimeError("k0 never arrived")
        consumer.change_invisible_duration(kept, 2)
        again = None
        deadline = time.time() + 30
        while again is None and time.time() < deadline:
            for m in consumer.receive(32, 60):
                if key_of(m) == "k0":
                    again = m
                else:
                    consumer.ack(m)
        if again is None:
            raise RuntimeError("k0 did not come back after its invisible duration changed")
        consumer.ack(again)
        others = {k: m for k, m in got.items() if k != "k0"}
        return {
            "keys": sorted(got.keys()),
            "bodies_ok": all(m.body == ("body-%s" % k).encode() for k, m in others.items()),
            "tags": sorted({m.tag for m in others.values()}),
            "origin": sorted({m.properties.get("origin", "") for m in others.values()}),
            "k0_attempt": again.delivery_attempt,
        }
    finally:
        consumer.shutdown()


class Listener(MessageListener):
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = set()
        self.failed_once = False
        self.k0_deliveries = 0

    def consume(self, message):
        k = key_of(message)
        with self.lock:
            if k == "k0":
                self.k0_deliveries += 1
                if not self.failed_once:
                    self.failed_once = True
                    return ConsumeResult.FAILURE
            self.keys.add(k)
        return ConsumeResult.SUCCESS


def push(endpoint, topic, group, count):
    listener = Listener()
    consumer = PushConsumer(config(endpoint), group, listener, {topic: FilterExpression()})
    consumer.startup()
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            with listener.lock:
                if len(listener.keys) >= count:
                    break
            time.sleep(0.2)
        with listener.lock:
            return {"keys": sorted(listener.keys), "k0_deliveries": listener.k0_deliveries}
    finally:
        consumer.shutdown()


def main():
    scenario, endpoint, topic, group, count = sys.argv[1:6]
    count = int(count)
    if scenario == "produce":
        result = produce(endpoint, topic, count)
    elif scenario == "simple":
        result = simple(endpoint, topic, group, count)
    elif scenario == "push":
        result = push(endpoint, topic, group, count)
    else:
        raise SystemExit("unknown scenario " + scenario)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
