// A Kinesis Lambda handler written the way AWS Lambda Powertools documents
// it: each record is handled on its own and the batch processor builds the
// partial batch response. It fails r1 on its first attempt and r4 always.
const { BatchProcessor, EventType, processPartialResponse } = require('@aws-lambda-powertools/batch');

const processor = new BatchProcessor(EventType.KinesisDataStreams);
const attempts = new Map();

const recordHandler = (record) => {
  const data = Buffer.from(record.kinesis.data, 'base64').toString();
  const n = (attempts.get(data) || 0) + 1;
  attempts.set(data, n);
  if ((data === 'r1' && n === 1) || data === 'r4') {
    throw new Error(`cannot handle ${data} (attempt ${n})`);
  }
};

exports.handler = async (event, context) =>
  processPartialResponse(event, recordHandler, processor, { context });
