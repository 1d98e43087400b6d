// A minimal Lambda Invoke API (POST /2015-03-31/functions/NAME/invocations)
// on 127.0.0.1 in front of handler.js, answering as Lambda does: the
// function's result as JSON, or a function error as the
// X-Amz-Function-Error header with an error JSON body. It prints
// "listening PORT" once it accepts invokes.
const http = require('http');
const { handler } = require('./handler.js');

const invokePath = /^\/2015-03-31\/functions\/[^/]+\/invocations$/;

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !invokePath.test(req.url)) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ message: `no route ${req.method} ${req.url}` }));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let body;
    try {
      const event = JSON.parse(Buffer.concat(chunks).toString());
      const result = await handler(event, { awsRequestId: 'ksp', getRemainingTimeInMillis: () => 3000 });
      body = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Amz-Function-Error': 'Unhandled' });
      res.end(JSON.stringify({ errorType: e.name, errorMessage: e.message }));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(body);
  });
});

server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.stdin.on('end', () => server.close(() => process.exit(0))); // the test closes stdin to stop it
process.stdin.resume();
