#!/usr/bin/env python3
"""A record processor speaking the KCL MultiLang protocol with the standard
library only, with amazon_kclpy's message shapes (amazon_kclpy/kcl.py,
messages.py): one JSON message a line on stdin and stdout, every field read
by key, checkpoints answered on stdin.

Arguments: [OUT], the file each processed record is appended to, one JSON
line (default: $KCL_TEST_OUT).

Environment:
  KCL_TEST_OUT   the default OUT
  KCL_TEST_MODE  normal | malformed | hang | echo-status | checkpoint-errors
  KCL_TEST_MARK  file created by the first child that misbehaves, so only
                 one child does
"""
import base64
import json
import os
import sys
import time


class CheckpointError(Exception):
    pass


def write(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def read():
    while True:
        line = sys.stdin.readline()
        if not line:
            return None
        if line.strip():
            return json.loads(line)


def checkpoint(seq=None, sub=None):
    write({"action": "checkpoint", "sequenceNumber": seq, "subSequenceNumber": sub})
    answer = read()
    if answer is None or answer["action"] != "checkpoint":
        raise CheckpointError("InvalidStateException")
    if answer["error"] is not None:
        raise CheckpointError(answer["error"])


def checkpoint_error(seq=None, sub=None):
    try:
        checkpoint(seq, sub)
    except CheckpointError as e:
        return str(e)
    return "none"


def misbehave_once():
    mark = os.environ.get("KCL_TEST_MARK")
    if not mark:
        return False
    try:
        fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ["KCL_TEST_OUT"]
    out = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY)
    mode = os.environ.get("KCL_TEST_MODE", "normal")
    shard = None
    while True:
        msg = read()
        if msg is None:
            return
        action = msg["action"]
        if action == "initialize":
            shard = msg["shardId"]
            sys.stderr.write("python processor %d initialized for %s at %s/%s\n"
                             % (os.getpid(), shard, msg["sequenceNumber"], msg["subSequenceNumber"]))
            sys.stderr.flush()
            if mode == "echo-status":
                write({"action": "status", "responseFor": "processRecords"})
                continue
            if mode == "checkpoint-errors":
                sys.stderr.write("checkpoint in initialize: %s\n" % checkpoint_error())
                sys.stderr.flush()
        elif action == "processRecords":
            records = msg["records"]
            _ = msg["millisBehindLatest"]
            if mode == "malformed" and misbehave_once():
                sys.stdout.write('{"action": "status", "responseFor": \n')
                sys.stdout.flush()
                time.sleep(60)
                return
            if mode == "checkpoint-errors" and misbehave_once():
                sys.stderr.write("checkpoint at an undelivered record: %s\n" % checkpoint_error("9" * 56, 0))
                sys.stderr.flush()
            if mode == "hang" and misbehave_once():
                time.sleep(600)
                return
            lines = []
            for r in records:
                data = base64.b64decode(r["data"]).decode()
                lines.append(json.dumps({"shard": shard, "seq": r["sequenceNumber"], "sub": r["subSequenceNumber"],
                                         "pk": r["partitionKey"], "data": data, "pid": os.getpid(),
                                         "arrival": r["approximateArrivalTimestamp"]}) + "\n")
            if lines:
                os.write(out, "".join(lines).encode())
                last = records[-1]
                checkpoint(last["sequenceNumber"], last["subSequenceNumber"])
        elif action in ("shardEnded", "shutdownRequested"):
            checkpoint()
        elif action == "leaseLost":
            pass
        else:
            sys.stderr.write("unknown action %s\n" % action)
        write({"action": "status", "responseFor": action})


if __name__ == "__main__":
    main()
