package sdkhttp

import "net/http"

// maxIdlePerHost keeps a connection per concurrent request to one endpoint
// (net/http's default keeps 2, so load opens and closes connections).
const maxIdlePerHost = 256

// NewH2C returns an HTTP client that speaks HTTP/2 without TLS to http://
// endpoints (prior knowledge, as a ksp server accepts on its cleartext port)
// and HTTP/2 over TLS to https:// ones. All requests to one endpoint share
// one connection.
func NewH2C() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:         &protocols,
		ForceAttemptHTTP2: true,
	}}
}

// NewPooled returns an HTTP client with net/http's default transport
// settings (HTTP/1.1, HTTP/2 over TLS, proxies from the environment) and a
// connection pool of 256 idle connections per endpoint. Give the SDK clients
// that use it [FixKinesis] or [FixDynamoDB], or wrap it with [Fix].
func NewPooled() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConns = maxIdlePerHost
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return &http.Client{Transport: tr}
}
