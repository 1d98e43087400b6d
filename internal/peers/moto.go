package peers

import (
	"fmt"
	"net/http"
	"os/exec"
	"time"
)

// StartMoto runs moto_server (Python moto: SQS and SNS, among others) on a
// loopback port for the test and returns its URL; a missing moto fails the
// test in CI and skips it elsewhere.
func StartMoto(t TB) string {
	t.Helper()
	bin, err := LookPath("moto_server")
	if err != nil {
		Unavailable(t, err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatalf("%v", err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		Unavailable(t, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Importing moto takes ~3 s on an idle machine and over 15 s on a
	// loaded one (make test runs many packages at once): wait up to 60 s.
	for range 1200 {
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("moto_server did not answer on %s within 60s", url)
	return ""
}
