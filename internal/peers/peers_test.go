package peers

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestPeersStartAndAnswer starts each peer: it answers on its URL, listens
// on loopback only (kinesalite's CLI and kinesis-mock bind every interface
// unless started as Start does), and Close is idempotent.
func TestPeersStartAndAnswer(t *testing.T) {
	t.Parallel()
	for _, kind := range []Kind{Kinesalite, Dynalite, KinesisMock} {
		t.Run(string(kind), func(t *testing.T) {
			p := StartT(t, kind, Options{})
			target := "Kinesis_20131202.ListStreams"
			if kind == Dynalite {
				target = "DynamoDB_20120810.ListTables"
			}
			req, _ := http.NewRequest("POST", p.URL, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			if kind == Dynalite {
				req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			}
			req.Header.Set("X-Amz-Target", target)
			req.Header.Set("X-Amz-Date", "20260101T000000Z")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s answered %d: %s", kind, resp.StatusCode, body)
			}
			if p.RSS() <= 0 {
				t.Fatalf("no RSS for %s", kind)
			}
			checkLoopbackOnly(t, p)
			p.Close()
			p.Close()
		})
	}
}

// checkLoopbackOnly fails unless every TCP socket the peer's process listens
// on is bound to a loopback address, one of them on the port of its URL.
// It reads the process's socket inodes and /proc/net/tcp{,6} (Linux).
func checkLoopbackOnly(t *testing.T, p *Peer) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Log("listening addresses are checked on Linux only")
		return
	}
	pid := strconv.Itoa(p.proc.Pid())
	fds, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink("/proc/" + pid + "/fd/" + fd.Name())
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		} else if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(p.URL)
	wantPort, _ := strconv.ParseUint(u.Port(), 10, 16)
	onURLPort := false
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			ip, port := procAddr(t, f[1])
			if !ip.IsLoopback() {
				t.Errorf("%s listens on %s:%d, not on loopback only", p.Kind, ip, port)
			}
			onURLPort = onURLPort || uint64(port) == wantPort
		}
	}
	if !onURLPort {
		t.Errorf("%s: no listening socket of process %s on port %d", p.Kind, pid, wantPort)
	}
}

// procAddr decodes /proc/net/tcp's "0100007F:1F90": the address in the
// kernel's byte order, 32 bits at a time, and the port in hex.
func procAddr(t *testing.T, s string) (net.IP, uint16) {
	t.Helper()
	addr, port, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(addr)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		t.Fatalf("bad address %q in /proc/net/tcp", s)
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	n, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		t.Fatalf("bad port in %q", s)
	}
	return net.IP(raw), uint16(n)
}
