// A record processor written against the aws-kcl npm package (the KCL's
// Node.js MultiLang client). Each processed record is appended to
// KCL_TEST_OUT as a JSON line; each batch ends with checkpoint() without a
// sequence number, which checkpoints the batch's last user record, at its
// sub-sequence number when it came out of a KPL aggregate.
'use strict';

const fs = require('fs');
const kcl = require('aws-kcl');

const out = fs.openSync(process.env.KCL_TEST_OUT, 'a');
let shardId;

kcl({
  initialize: function (input, done) {
    shardId = input.shardId;
    process.stderr.write(`node processor ${process.pid} initialized for ${shardId} at ${input.sequenceNumber}/${input.subSequenceNumber}\n`);
    done();
  },
  processRecords: function (input, done) {
    if (!input || !input.records || input.records.length === 0) {
      done();
      return;
    }
    let lines = '';
    for (const r of input.records) {
      lines += JSON.stringify({
        shard: shardId, seq: r.sequenceNumber, sub: r.subSequenceNumber, pk: r.partitionKey,
        data: Buffer.from(r.data, 'base64').toString(), pid: process.pid, arrival: r.approximateArrivalTimestamp,
      }) + '\n';
    }
    fs.writeSync(out, lines);
    input.checkpointer.checkpoint(function (err) {
      if (err) {
        process.stderr.write(`checkpoint failed: ${err}\n`);
      }
      done();
    });
  },
  leaseLost: function (input, done) {
    done();
  },
  shardEnded: function (input, done) {
    input.checkpointer.checkpoint(function (err) {
      if (err) {
        process.stderr.write(`SHARD_END checkpoint failed: ${err}\n`);
      }
      done();
    });
  },
  shutdownRequested: function (input, done) {
    input.checkpointer.checkpoint(function () { done(); });
  },
}).run();
