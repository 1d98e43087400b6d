package esm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// maxResponse is the Lambda invoke response payload cap (6 MB).
const maxResponse = 6 << 20

// InvokeHTTP returns a handler that invokes a function over the Lambda
// Invoke HTTP API: it POSTs each event to url (a function's
// …/2015-03-31/functions/NAME/invocations, as served by Lambda, `sam local
// start-lambda` and the Lambda runtime interface emulator) and decodes the
// response as Lambda does. client nil is http.DefaultClient.
//
// Events without a tumbling window are sent as Lambda sends them, with
// Records only. A function error is an X-Amz-Function-Error header (its
// error JSON in the message), a response that is not JSON of the
// response's shape, or the request running past the function timeout (the
// runner cancels it). Another status than 200 (429 TooManyRequestsException,
// a 5xx service error, …) or a request that fails on its own is an
// *InvokeError: the function did not run, and Run retries without spending
// retry attempts, as Lambda does. An empty or null response is a success,
// except for a tumbling window's invoke: Lambda requires its response to
// have a state property.
func InvokeHTTP(client *http.Client, url string) func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		var none events.KinesisTimeWindowEventResponse
		var payload any = ev
		if ev.ShardID == "" {
			payload = ev.KinesisEvent // no window
		}
		body, err := json.Marshal(payload)
		if err != nil {
			return none, fmt.Errorf("encoding the event: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return none, fmt.Errorf("invoke request to %s: %w", url, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil { // the function timeout
				return none, fmt.Errorf("invoking %s: %w", url, err)
			}
			return none, &InvokeError{Message: fmt.Sprintf("invoking %s: %v", url, err)}
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
		if err != nil {
			return none, fmt.Errorf("reading the response of %s: %w", url, err)
		}
		if len(out) > maxResponse {
			return none, fmt.Errorf("response of %s is larger than %d bytes", url, maxResponse)
		}
		if kind := resp.Header.Get("X-Amz-Function-Error"); kind != "" {
			return none, fmt.Errorf("%s: %s", kind, functionErrorMessage(out))
		}
		if resp.StatusCode != http.StatusOK {
			kind, _, _ := strings.Cut(resp.Header.Get("X-Amzn-ErrorType"), ":")
			return none, &InvokeError{StatusCode: resp.StatusCode, Type: kind, Message: apiErrorMessage(out)}
		}
		var r events.KinesisTimeWindowEventResponse
		windowed := ev.ShardID != ""
		noState := fmt.Errorf("response from %s has no state property, which a tumbling window's invoke needs", url)
		if t := bytes.TrimSpace(out); len(t) == 0 || string(t) == "null" {
			if windowed {
				return none, noState
			}
			return r, nil
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(out, &r); err != nil {
			return none, fmt.Errorf("malformed response from %s: %w", url, err)
		}
		_ = json.Unmarshal(out, &keys) // an object: it decoded as one above
		if windowed && keys["state"] == nil {
			return none, noState
		}
		return r, nil
	}
}

// apiErrorMessage is the message of a Lambda API error body
// ({"Type":…,"message":…}), or the body quoted.
func apiErrorMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	return functionErrorMessage(body)
}

// functionErrorMessage summarises Lambda's error JSON
// ({"errorType":…,"errorMessage":…}), or quotes the body as it is.
func functionErrorMessage(body []byte) string {
	var e struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &e) == nil && (e.ErrorType != "" || e.ErrorMessage != "") {
		return strings.TrimPrefix(e.ErrorType+": "+e.ErrorMessage, ": ")
	}
	const max = 200
	s := string(body)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
