package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// loadTLS loads or generates the certificate the TLS options ask for.
func (s *Server) loadTLS() error {
	switch {
	case s.opts.TLSCertFile != "":
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("server: loading TLS certificate: %w", err)
		}
		s.tlsCert = &cert
		if len(cert.Certificate) > 0 {
			s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		}
	case s.opts.TLSSelfSigned:
		cert, certPEM, err := selfSigned(s.now())
		if err != nil {
			return fmt.Errorf("server: generating TLS certificate: %w", err)
		}
		s.tlsCert, s.certPEM = cert, certPEM
	}
	return nil
}

// selfSigned makes an ECDSA P-256 certificate for the loopback names, valid
// a year. It is its own CA so a client can trust it as a root.
func selfSigned(now time.Time) (*tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"ksp"}, CommonName: "ksp server (self-signed)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CertPEM returns the PEM of the server's TLS certificate (nil without TLS),
// e.g. to write a CA bundle for the AWS CLI (--ca-bundle).
func (s *Server) CertPEM() []byte { return s.certPEM }

// CertPool returns a pool holding the server's TLS certificate, for clients
// to trust (nil without TLS).
func (s *Server) CertPool() *x509.CertPool {
	if s.certPEM == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.certPEM)
	return pool
}
