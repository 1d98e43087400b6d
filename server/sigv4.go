package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ksp-project/ksp/kds"
)

// SigV4 verification (Options.Credentials): the server rebuilds the
// canonical request from what it received (method, path, query, the headers
// named in SignedHeaders, the SHA-256 of the body), signs it with the secret
// of the access key named in the Credential, and compares.
//
// Everything the headers carry is checked before a byte of the body is read
// (algorithm, credential, scope, date, which headers are signed), so a
// client without a known access key cannot make the server buffer a body.
// When the request carries X-Amz-Content-Sha256 the whole signature is
// checked then too, and the body must hash to it once read; otherwise the
// signature is checked as soon as the body has arrived. Either way nothing
// runs before it matches.
//
// Every x-amz-* header present (X-Amz-Target above all: it names the
// operation) and Content-Type must be among the SignedHeaders, as AWS
// requires; otherwise a captured request could be replayed as another
// operation. Failures answer the error types AWS answers with:
//   - no Authorization header: MissingAuthenticationTokenException
//   - a header missing a part or with a malformed part, an unsigned x-amz-*
//     or Content-Type header, or a presigned (query-string) request:
//     IncompleteSignatureException
//   - an access key not in Credentials: UnrecognizedClientException
//   - a wrong signature, a body that does not match its hash, a bad
//     credential scope, or an X-Amz-Date more than 5 minutes from the
//     server's clock: InvalidSignatureException
//
// The credential scope's region is taken as signed (any region is accepted,
// so clients configured for another region still work locally); the
// service must be "kinesis". Presigned query-string requests (X-Amz-Signature
// in the URL) are refused with a message saying so: the Kinesis SDKs never
// send them, and a URL that carries its own authority is easy to leak.

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	// maxClockSkew is how far X-Amz-Date may be from the server's clock.
	maxClockSkew = 5 * time.Minute
)

// signedRequest is a request whose Authorization header passed every check
// its headers allow; checkPayload finishes the job once the body is read.
type signedRequest struct {
	r        *http.Request
	a        sigV4Auth
	secret   string
	dateText string // X-Amz-Date (or Date) in ISO-8601 basic format
	claimed  string // X-Amz-Content-Sha256, when sent
	keys     *keyCache
}

// checkSignatureHeaders checks r's signature as far as possible without its
// body: the whole signature when X-Amz-Content-Sha256 is sent.
func (s *Server) checkSignatureHeaders(r *http.Request) (*signedRequest, error) {
	if q := r.URL.Query(); q.Has("X-Amz-Signature") || q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") {
		return nil, kds.Errorf(kds.ErrCodeIncompleteSignature, "Presigned (query-string) SigV4 requests are not accepted by this server; sign the Authorization header, as the AWS SDKs and CLI do.")
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return nil, kds.Errorf(kds.ErrCodeMissingAuthenticationToken, "Missing Authentication Token")
	}
	a, err := parseSigV4Auth(authz, r.Header)
	if err != nil {
		return nil, err
	}
	secret, ok := s.opts.Credentials[a.accessKey]
	if !ok {
		return nil, kds.Errorf(kds.ErrCodeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	dateText := r.Header.Get("X-Amz-Date")
	var signedAt time.Time
	if dateText != "" {
		signedAt, err = time.Parse(amzDateFormat, dateText)
	} else {
		dateText = r.Header.Get("Date")
		signedAt, err = http.ParseTime(dateText)
		dateText = signedAt.UTC().Format(amzDateFormat)
	}
	if err != nil {
		return nil, kds.Errorf(kds.ErrCodeIncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", dateText)
	}
	switch {
	case a.date != dateText[:8]:
		return nil, kds.Errorf(kds.ErrCodeInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.date, dateText[:8], dateText)
	case a.service != "kinesis":
		return nil, kds.Errorf(kds.ErrCodeInvalidSignature, "Credential should be scoped to correct service: 'kinesis'. ")
	case a.terminator != "aws4_request":
		return nil, kds.Errorf(kds.ErrCodeInvalidSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", a.terminator)
	}
	now := s.now().UTC()
	if signedAt.Before(now.Add(-maxClockSkew)) {
		return nil, kds.Errorf(kds.ErrCodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			signedAt.UTC().Format(amzDateFormat), now.Add(-maxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if signedAt.After(now.Add(maxClockSkew)) {
		return nil, kds.Errorf(kds.ErrCodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			signedAt.UTC().Format(amzDateFormat), now.Add(maxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	sr := &signedRequest{r: r, a: a, secret: secret, dateText: dateText, claimed: r.Header.Get("X-Amz-Content-Sha256"), keys: &s.sigKeys}
	if sr.claimed != "" {
		if !isLowerHex(sr.claimed, sha256.Size*2) {
			return nil, kds.Errorf(kds.ErrCodeInvalidSignature, "x-amz-content-sha256 must be the hex SHA-256 of the body (unsigned payloads are not accepted), got '%s'.", sr.claimed)
		}
		if err := sr.checkSignature(sr.claimed); err != nil {
			return nil, err
		}
	}
	return sr, nil
}

// checkPayload finishes verification with the body: it must hash to
// X-Amz-Content-Sha256 when that was sent (and signed), else to the hash the
// signature was made with.
func (sr *signedRequest) checkPayload(body []byte) error {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if sr.claimed != "" {
		if payloadHash != sr.claimed {
			return kds.Errorf(kds.ErrCodeInvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		return nil // the signature was checked with this hash already
	}
	return sr.checkSignature(payloadHash)
}

// checkSignature compares the request's signature with the one made over
// its canonical request with payloadHash.
func (sr *signedRequest) checkSignature(payloadHash string) error {
	a := sr.a
	canonical := canonicalRequest(sr.r, a.signedHeaders, payloadHash)
	creq := sha256.Sum256([]byte(canonical))
	scope := a.date + "/" + a.region + "/" + a.service + "/" + a.terminator
	toSign := sigV4Algorithm + "\n" + sr.dateText + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	key, id, cached := sr.keys.get(sr.secret, a.date, a.region, a.service, a.terminator)
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(a.signature))) {
		return kds.Errorf(kds.ErrCodeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	if !cached {
		sr.keys.put(id, key)
	}
	return nil
}

func isLowerHex(v string, n int) bool {
	if len(v) != n {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// sigV4Auth is a parsed Authorization header.
type sigV4Auth struct {
	accessKey, date, region, service, terminator string
	signedHeaders                                []string
	signature                                    string
}

// parseSigV4Auth parses "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b, Signature=HEX".
func parseSigV4Auth(authz string, h http.Header) (sigV4Auth, error) {
	var a sigV4Auth
	alg, rest, _ := strings.Cut(strings.TrimSpace(authz), " ")
	if alg != sigV4Algorithm {
		return a, kds.Errorf(kds.ErrCodeIncompleteSignature, "Unsupported AWS 'algorithm': '%s'; only %s is accepted. Authorization=%s", alg, sigV4Algorithm, authz)
	}
	parts := map[string]string{}
	for p := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return a, kds.Errorf(kds.ErrCodeIncompleteSignature, "'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", strings.TrimSpace(p), authz)
		}
		parts[k] = v
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if parts[k] == "" {
			missing = append(missing, "Authorization header requires '"+k+"' parameter.")
		}
	}
	if h.Get("X-Amz-Date") == "" && h.Get("Date") == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return a, kds.Errorf(kds.ErrCodeIncompleteSignature, "%s Authorization=%s", strings.Join(missing, " "), authz)
	}
	cred := strings.Split(parts["Credential"], "/")
	if len(cred) != 5 {
		return a, kds.Errorf(kds.ErrCodeIncompleteSignature, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", parts["Credential"])
	}
	a.accessKey, a.date, a.region, a.service, a.terminator = cred[0], cred[1], cred[2], cred[3], cred[4]
	a.signedHeaders = strings.Split(parts["SignedHeaders"], ";")
	a.signature = parts["Signature"]
	if !slices.Contains(a.signedHeaders, "host") {
		return a, kds.Errorf(kds.ErrCodeIncompleteSignature, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	var unsigned []string
	for name := range h {
		lower := strings.ToLower(name)
		if (strings.HasPrefix(lower, "x-amz-") || lower == "content-type") && !slices.Contains(a.signedHeaders, lower) {
			unsigned = append(unsigned, lower)
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return a, kds.Errorf(kds.ErrCodeIncompleteSignature, "There were headers present in the request which were not signed: %s. Every x-amz-* header and Content-Type must be in SignedHeaders.", strings.Join(unsigned, ", "))
	}
	return a, nil
}

// canonicalRequest builds SigV4's canonical request for r.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(awsEscape(path, true)) // services other than S3 encode the path twice
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host":
			b.WriteString(collapseSpaces(r.Host))
		case "content-length":
			if v := r.Header.Values("Content-Length"); len(v) > 0 {
				b.WriteString(collapseSpaces(strings.Join(v, ",")))
			} else if r.ContentLength >= 0 {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		default:
			vals := r.Header.Values(name)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(collapseSpaces(v))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, awsEscape(k, false)+"="+awsEscape(v, false))
		}
	}
	return strings.Join(parts, "&")
}

// awsEscape percent-encodes every byte but the unreserved characters (and
// '/' when keepSlash), as SigV4 requires.
func awsEscape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// collapseSpaces trims v and turns runs of spaces into one.
func collapseSpaces(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// keyCache holds derived signing keys: a key depends only on the secret and
// the credential scope (a day, a region), so each client's requests of a day
// share one instead of deriving it with four HMACs each.
type keyCache struct {
	mu   sync.Mutex // guards: keys
	keys map[string][]byte
}

// maxSigningKeys bounds the cache; it starts over when full (a new day, or
// many access keys).
const maxSigningKeys = 256

// get returns the signing key of a scope and whether it came from the
// cache; a derived key is kept only by put, once a signature made with it
// matched, so requests with made-up scopes (any region) fill nothing.
func (c *keyCache) get(secret, date, region, service, terminator string) (key []byte, id string, cached bool) {
	id = secret + "\x00" + date + "/" + region + "/" + service + "/" + terminator
	c.mu.Lock()
	key, ok := c.keys[id]
	c.mu.Unlock()
	if ok {
		return key, id, true
	}
	key = hmacSHA256([]byte("AWS4"+secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, terminator)
	return key, id, false
}

func (c *keyCache) put(id string, key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= maxSigningKeys {
		c.keys = make(map[string][]byte)
	}
	c.keys[id] = key
}
