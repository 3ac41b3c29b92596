package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ccctl/ccctl/internal/sys/smallfile"
)

// tlsConfig returns the client TLS configuration of the PEM files caFile
// (the CAs that verify etcd's certificate; "" for the system's) and
// certFile and keyFile (the client certificate; "" for none). Each file is
// read with smallfile's limit, so a setting naming /dev/zero or a FIFO fails
// at once. The client certificate is read again at each handshake, as
// etcdctl does, so that a renewed certificate is used without a restart.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		data, err := smallfile.Read(caFile, smallfile.DefaultLimit)
		if err != nil {
			return nil, fmt.Errorf("ca cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("ca cert %s: %w", caFile, errNoPEMCert)
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		if _, err := loadKeyPair(certFile, keyFile); err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return loadKeyPair(certFile, keyFile)
		}
	}
	return tc, nil
}

var errNoPEMCert = errors.New("no PEM certificate in it")

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := smallfile.Read(certFile, smallfile.DefaultLimit)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	keyPEM, err := smallfile.Read(keyFile, smallfile.DefaultLimit)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cert %s and key %s: %w", certFile, keyFile, err)
	}
	return &c, nil
}
