package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// HTTP POSTs each message's body as application/json to a URL; any 2xx
// answer means accepted.
type HTTP struct {
	client *http.Client
	url    string
}

// NewHTTP posts to url with client (nil: http.DefaultClient).
func NewHTTP(client *http.Client, url string) *HTTP {
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTP{client: client, url: url}
}

// MaxSize is 0: no limit.
func (s *HTTP) MaxSize() int { return 0 }

// Send posts m.
func (s *HTTP) Send(ctx context.Context, m Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(m.Body))
	if err != nil {
		return fmt.Errorf("sink: request to %s: %w", s.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("sink: posting to %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sink: posting to %s: %s", s.url, resp.Status)
	}
	return nil
}
