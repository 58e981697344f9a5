"""Drives the official RocketMQ C++ client core (the `rocketmq-client-python` wheel, which
bundles `librocketmq.so`) against our name server and broker.

One scenario per run; the result is a single JSON object on stdout so the Rust test that
starts this script can check it. The C++ core writes its own logs under $HOME/logs: the
harness points HOME at a scratch directory.

    driver.py produce  --namesrv ADDR --topic T --count N [--tag TAG] [--key-prefix K]
                       [--body-size BYTES] [--random-body] [--big-every N --big-size BYTES]
                       [--prop K=V ...] [--delay-level L] [--sharding-key K] [--interval-ms MS]
    driver.py push     --namesrv ADDR --topic T --group G --expect N --timeout S
                       [--expr E] [--orderly] [--broadcast] [--reconsume-once-every K]
    driver.py pull     --namesrv ADDR --topic T --group G --expect N --timeout S [--expr E]
    driver.py tx       --namesrv ADDR --topic T --group G --count N --local R --check R
                       [--wait S]   (R is commit, rollback or unknown)
"""

import argparse
import ctypes
import json
import random
import re
import sys
import threading
import time
import zlib

from rocketmq import client as rmq
from rocketmq.client import (ConsumeStatus, Message, Producer, PushConsumer,
                             TransactionMQProducer, TransactionStatus)
from rocketmq.ffi import dll

PROPS_OF_INTEREST = ("TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS", "DELAY",
                     "REAL_TOPIC", "TRAN_MSG", "__transactionId__", "UNIQ_KEY", "color",
                     "price")


def send_result(r, key, crc, size):
    return {"status": int(r.status), "msg_id": r.msg_id, "offset": r.offset, "key": key,
            "body_crc": crc, "body_len": size, "acked_ms": int(time.time() * 1000)}


def expand_now(value):
    """`{now_ms}` or `{now_ms+N}` becomes the current epoch ms (plus N)."""
    def repl(m):
        return str(int(time.time() * 1000) + int(m.group(1) or 0))
    return re.sub(r"\{now_ms(?:\+(\d+))?\}", repl, value)


def build_message(args, i):
    key = f"{args.key_prefix}{i}"
    msg = Message(args.topic)
    msg.set_keys(key)
    if args.tag:
        msg.set_tags(args.tag)
    size = args.body_size
    if args.big_every and i % args.big_every == 0:
        size = args.big_size
    prefix = f"{key}:".encode()
    if args.random_body:
        # Incompressible, so the client cannot shrink it below the broker's limits.
        filler = random.Random(i).randbytes(max(0, size - len(prefix)))
        filler = filler.replace(b"\x00", b"\x01")
    else:
        filler = b"x" * max(0, size - len(prefix))
    body = prefix + filler
    msg.set_body(body)
    for prop in args.prop or []:
        k, v = prop.split("=", 1)
        msg.set_property(k, expand_now(v))
    if args.delay_level:
        msg.set_delay_time_level(args.delay_level)
    return key, msg, zlib.crc32(body), len(body)


def produce(args):
    producer = Producer(args.group or "CppProducer", orderly=bool(args.sharding_key),
                        max_message_size=8 * 1024 * 1024)
    producer.set_namesrv_addr(args.namesrv)
    producer.set_timeout(10000)
    if args.no_compress:
        # Random bodies do not shrink; compressing them only makes them larger.
        dll.SetProducerCompressMsgBodyOverHowmuch.argtypes = [ctypes.c_void_p, ctypes.c_int]
        dll.SetProducerCompressMsgBodyOverHowmuch(producer._handle, 1 << 30)
    producer.start()
    sent = []
    errors = []
    try:
        for i in range(args.count):
            key, msg, crc, size = build_message(args, i)
            if args.interval_ms:
                time.sleep(args.interval_ms / 1000.0)
            try:
                if args.sharding_key:
                    r = producer.send_orderly_with_sharding_key(msg, args.sharding_key)
                else:
                    r = producer.send_sync(msg)
                sent.append(send_result(r, key, crc, size))
            except Exception as e:  # the test decides whether a failure is expected
                errors.append({"key": key, "error": str(e)})
    finally:
        producer.shutdown()
    return {"sent": sent, "errors": errors, "sent_at_ms": int(time.time() * 1000)}


def describe(msg):
    props = {}
    for name in PROPS_OF_INTEREST:
        v = msg.get_property(name)
        if v:
            props[name] = v.decode() if isinstance(v, bytes) else v
    body = msg.body
    return {
        "key": (msg.keys or b"").decode() if isinstance(msg.keys, bytes) else msg.keys,
        "tags": (msg.tags or b"").decode() if isinstance(msg.tags, bytes) else msg.tags,
        "topic": msg.topic.decode() if isinstance(msg.topic, bytes) else msg.topic,
        "body_len": len(body),
        "body_crc": zlib.crc32(body),
        "body_prefix": body[:40].decode(errors="replace"),
        "queue": msg.queue_id,
        "offset": msg.queue_offset,
        "reconsume": msg.reconsume_times,
        "msg_id": msg.id.decode() if isinstance(msg.id, bytes) else msg.id,
        "store_ts": msg.store_timestamp,
        "born_ts": msg.born_timestamp,
        "received_ms": int(time.time() * 1000),
        "thread": threading.get_ident(),
        "props": props,
    }


def push(args):
    model = rmq.MessageModel.BROADCASTING if args.broadcast else rmq.MessageModel.CLUSTERING
    consumer = PushConsumer(args.group, orderly=args.orderly, message_model=model)
    consumer.set_namesrv_addr(args.namesrv)
    consumer.set_thread_count(4)
    if args.instance:
        consumer.set_instance_name(args.instance)
    received = []
    lock = threading.Lock()
    seen_once = set()
    done = threading.Event()

    def on_message(msg):
        d = describe(msg)
        with lock:
            if (args.reconsume_once_every and d["reconsume"] == 0
                    and len(received) % args.reconsume_once_every == 0
                    and d["key"] not in seen_once):
                seen_once.add(d["key"])
                d["outcome"] = "later"
                received.append(d)
                return ConsumeStatus.RECONSUME_LATER
            d["outcome"] = "ok"
            received.append(d)
            if args.hold_ms:
                time.sleep(args.hold_ms / 1000.0)
            if sum(1 for r in received if r["outcome"] == "ok") >= args.expect:
                done.set()
        return ConsumeStatus.CONSUME_SUCCESS

    consumer.subscribe(args.topic, on_message, args.expr)
    consumer.start()
    started = time.time()
    done.wait(args.timeout)
    # Let anything in flight (duplicates, over-delivery) show up before stopping.
    time.sleep(args.linger)
    consumer.shutdown()
    with lock:
        return {"received": list(received), "elapsed_s": time.time() - started}


class CMessageQueue(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char * 512), ("brokerName", ctypes.c_char * 256),
                ("queueId", ctypes.c_int)]


class CPullResult(ctypes.Structure):
    _fields_ = [("pullStatus", ctypes.c_int), ("nextBeginOffset", ctypes.c_longlong),
                ("minOffset", ctypes.c_longlong), ("maxOffset", ctypes.c_longlong),
                ("msgFoundList", ctypes.POINTER(ctypes.c_void_p)), ("size", ctypes.c_int),
                ("pData", ctypes.c_void_p)]


def pull(args):
    dll.CreatePullConsumer.restype = ctypes.c_void_p
    dll.CreatePullConsumer.argtypes = [ctypes.c_char_p]
    dll.StartPullConsumer.argtypes = [ctypes.c_void_p]
    dll.ShutdownPullConsumer.argtypes = [ctypes.c_void_p]
    dll.SetPullConsumerNameServerAddress.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    dll.FetchSubscriptionMessageQueues.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(CMessageQueue)),
        ctypes.POINTER(ctypes.c_int)]
    dll.Pull.restype = CPullResult
    dll.Pull.argtypes = [ctypes.c_void_p, ctypes.POINTER(CMessageQueue), ctypes.c_char_p,
                         ctypes.c_longlong, ctypes.c_int]
    dll.ReleasePullResult.argtypes = [ctypes.POINTER(CPullResult)]
    consumer = dll.CreatePullConsumer(args.group.encode())
    dll.SetPullConsumerNameServerAddress(consumer, args.namesrv.encode())
    assert dll.StartPullConsumer(consumer) == 0, "StartPullConsumer failed"
    mqs = ctypes.POINTER(CMessageQueue)()
    size = ctypes.c_int(0)
    rc = dll.FetchSubscriptionMessageQueues(consumer, args.topic.encode(), ctypes.byref(mqs),
                                            ctypes.byref(size))
    assert rc == 0, f"FetchSubscriptionMessageQueues failed: {rc}"
    queues = [mqs[i] for i in range(size.value)]
    offsets = {q.queueId: 0 for q in queues}
    statuses = {}
    received = []
    deadline = time.time() + args.timeout
    while len(received) < args.expect and time.time() < deadline:
        progressed = False
        for q in queues:
            r = dll.Pull(consumer, ctypes.byref(q), args.expr.encode(), offsets[q.queueId], 32)
            statuses[r.pullStatus] = statuses.get(r.pullStatus, 0) + 1
            if r.pullStatus == 0:
                for i in range(r.size):
                    received.append(describe(rmq.RecvMessage(r.msgFoundList[i])))
                progressed = True
            if r.pullStatus in (0, 1, 2, 3):
                offsets[q.queueId] = r.nextBeginOffset
            dll.ReleasePullResult(ctypes.byref(r))
        if not progressed:
            time.sleep(0.2)
    dll.ShutdownPullConsumer(consumer)
    return {"received": received, "queues": len(queues),
            "statuses": {str(k): v for k, v in statuses.items()},
            "offsets": {str(k): v for k, v in offsets.items()}}


STATUS = {"commit": TransactionStatus.COMMIT, "rollback": TransactionStatus.ROLLBACK,
          "unknown": TransactionStatus.UNKNOWN}


def tx(args):
    checks = []
    lock = threading.Lock()

    def checker(msg):
        d = describe(msg)
        with lock:
            checks.append(d)
        return STATUS[args.check]

    producer = TransactionMQProducer(args.group, checker)
    producer.set_namesrv_addr(args.namesrv)
    producer.set_timeout(10000)
    producer.start()
    sent = []
    errors = []
    for i in range(args.count):
        key, msg, crc, size = build_message(args, i)
        try:
            r = producer.send_message_in_transaction(msg, lambda m, a: STATUS[args.local])
            sent.append(send_result(r, key, crc, size))
        except Exception as e:
            errors.append({"key": key, "error": str(e)})
    deadline = time.time() + args.wait
    while time.time() < deadline:
        with lock:
            if args.expect_checks and len({c["key"] for c in checks}) >= args.expect_checks:
                break
        time.sleep(0.2)
    time.sleep(args.linger)
    producer.shutdown()
    with lock:
        return {"sent": sent, "errors": errors, "checks": list(checks)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["produce", "push", "pull", "tx"])
    p.add_argument("--namesrv", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--tag")
    p.add_argument("--key-prefix", default="k")
    p.add_argument("--body-size", type=int, default=64)
    p.add_argument("--random-body", action="store_true")
    p.add_argument("--big-every", type=int, default=0)
    p.add_argument("--big-size", type=int, default=4 * 1024 * 1024)
    p.add_argument("--interval-ms", type=int, default=0)
    p.add_argument("--no-compress", action="store_true")
    p.add_argument("--prop", action="append")
    p.add_argument("--delay-level", type=int, default=0)
    p.add_argument("--sharding-key")
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--expect-checks", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--linger", type=float, default=1.0)
    p.add_argument("--expr", default="*")
    p.add_argument("--orderly", action="store_true")
    p.add_argument("--broadcast", action="store_true")
    p.add_argument("--instance")
    p.add_argument("--hold-ms", type=int, default=0)
    p.add_argument("--reconsume-once-every", type=int, default=0)
    p.add_argument("--local", choices=list(STATUS), default="commit")
    p.add_argument("--check", choices=list(STATUS), default="commit")
    p.add_argument("--wait", type=float, default=0)
    args = p.parse_args()
    result = {"produce": produce, "push": push, "pull": pull, "tx": tx}[args.scenario](args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
