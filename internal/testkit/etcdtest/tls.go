package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are the PEM files a client of StartTLS's etcd needs: the test
// certificate authority and a client certificate it signed (etcdctl's
// --cacert, --cert and --key).
type TLSFiles struct {
	CACert, Cert, Key string

	serverCert, serverKey string
}

// StartTLS starts an embedded single-member etcd that serves clients over
// TLS only (https://127.0.0.1:port) and requires a client certificate signed
// by a certificate authority made for the test. The files are in
// tb.TempDir(). It is stopped in tb.Cleanup. Cluster.Client and NewClient do
// not speak TLS: connect with the files.
func StartTLS(tb testing.TB) (*Cluster, TLSFiles) {
	tb.Helper()
	files := writeTestPKI(tb)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := startEmbedded(tb, 1, &files)
		if err == nil {
			return c, files
		}
		lastErr = err
	}
	tb.Fatalf("etcdtest: start embedded etcd with TLS: %v", lastErr)
	return nil, TLSFiles{}
}

// writeTestPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate to tb.TempDir().
func writeTestPKI(tb testing.TB) TLSFiles {
	tb.Helper()
	dir := tb.TempDir()
	now := time.Now()
	caKey := newKey(tb)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "etcdtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatalf("etcdtest: create CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatalf("etcdtest: parse CA: %v", err)
	}
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key := newKey(tb)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			tb.Fatalf("etcdtest: create %s certificate: %v", name, err)
		}
		certFile = filepath.Join(dir, name+".pem")
		keyFile = filepath.Join(dir, name+"-key.pem")
		writePEM(tb, certFile, "CERTIFICATE", der)
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			tb.Fatalf("etcdtest: marshal key: %v", err)
		}
		writePEM(tb, keyFile, "EC PRIVATE KEY", kb)
		return certFile, keyFile
	}
	files := TLSFiles{CACert: filepath.Join(dir, "ca.pem")}
	writePEM(tb, files.CACert, "CERTIFICATE", caDER)
	files.serverCert, files.serverKey = issue(2, "server", x509.ExtKeyUsageServerAuth)
	files.Cert, files.Key = issue(3, "client", x509.ExtKeyUsageClientAuth)
	return files
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("etcdtest: generate key: %v", err)
	}
	return k
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatalf("etcdtest: write %s: %v", path, err)
	}
}

// WritePKI writes a new certificate authority, with a server certificate
// for 127.0.0.1 and a client certificate it signed, to tb.TempDir(): files
// that another etcd of StartTLS does not trust (a wrong CA, a foreign
// client certificate).
func WritePKI(tb testing.TB) TLSFiles {
	tb.Helper()
	return writeTestPKI(tb)
}
