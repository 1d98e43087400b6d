// Runs awslabs' aws-kinesis-agg for ksp's interop tests. It reads one JSON
// request on stdin and writes one JSON answer on stdout; bytes are base64.
//
//   {"op":"deaggregate","records":[{"data","partitionKey","sequenceNumber"}]}
//     -> {"records":[[{"partitionKey","explicitHashKey","subSequenceNumber","data"}]]}
//        one list of user records per Kinesis record, via deaggregateSync
//        with checksums verified.
//   {"op":"aggregate","records":[{"partitionKey","explicitHashKey","data"}]}
//     -> {"containers":[{"partitionKey","explicitHashKey","data"}]}
//        via the aggregate API.
//
// NODE_PATH must point at the node_modules holding aws-kinesis-agg.
'use strict';
const agg = require('aws-kinesis-agg');

function deaggregate(records) {
	return records.map((rec) => {
		let out;
		agg.deaggregateSync(rec, true, (err, userRecords) => {
			if (err) {
				throw new Error('deaggregateSync: ' + err);
			}
			out = userRecords.map((u) => ({
				partitionKey: u.partitionKey,
				explicitHashKey: u.explicitPartitionKey,
				subSequenceNumber: u.subSequenceNumber,
				data: u.data,
			}));
		});
		return out;
	});
}

function aggregate(records, done) {
	const input = records.map((r) => {
		const rec = {partitionKey: r.partitionKey, data: Buffer.from(r.data, 'base64')};
		if (r.explicitHashKey) {
			rec.explicitHashKey = r.explicitHashKey;
		}
		return rec;
	});
	const containers = [];
	agg.aggregate(input, (encoded, callback) => {
		containers.push({
			partitionKey: encoded.partitionKey,
			explicitHashKey: encoded.ExplicitHashKey || encoded.explicitHashKey || '',
			data: encoded.data.toString('base64'),
		});
		callback();
	}, () => done({containers}), (err) => {
		throw new Error('aggregate: ' + err);
	});
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
	const req = JSON.parse(input);
	const answer = (resp) => process.stdout.write(JSON.stringify(resp));
	switch (req.op) {
	case 'deaggregate':
		answer({records: deaggregate(req.records)});
		break;
	case 'aggregate':
		aggregate(req.records, answer);
		break;
	default:
		throw new Error('unknown op ' + req.op);
	}
});
